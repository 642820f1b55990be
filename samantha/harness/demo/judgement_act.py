"""Act: judgement when the evidence is bad input or not enough.

1. a rollout policy with a typo'd gate and an early-success margin wider than its abort gate is refused
   at lint, every problem at file:line:column (the daemon refuses it the same way at start);
2. a canary on a quiet Cube (1% of 40 rps) never gathers the evidence its step asks for: the rollout holds
   in a grey zone and asks a human through the approval queue; an operator's signed approval advances it.
Real twin, real `samantha run` daemon, real approval queue.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

TITLE = "Judgement: a bad policy refused at lint, a grey-zone canary held for a human"
BAD_POLICIES = {
    "typo-policy.yaml": "name: typo\ngates: [canary-errors, canary-latency, canary-latencyy]\n",
    "margin-policy.yaml": "name: margins\nshadow: {enabled: false}\nearly_success: {enabled: true, margin_odds: 1.5}\n",
}


def grey_policy() -> dict[str, Any]:
    steps = [{"weight": 1, "min_samples": 2000, "min_duration": 2},
             *({"weight": w, "min_samples": 20, "min_duration": 1} for w in (5, 25, 50, 100))]
    return {"name": "demo-grey", "shadow": {"enabled": False}, "steps": steps, "soak": 1,
            "grey_zone": {"after_s": 3}}


def run(ctx: Any) -> None:
    from samantha.chaos.approvals import make_decision
    from samantha.core.operators import add_operator
    from samantha.core.signing import KeyPair
    from samantha.cube.bundle import SigningKey
    from samantha.gates.policy_lint import lint_policy_file
    from samantha.harness.daemon_process import DaemonProcess, write_config
    from samantha.harness.demo.story_act import _wait, story_config
    from samantha.twin import lifecycle
    from samantha.twin.toy_bundle import build_bundle

    con = ctx.console
    base = ctx.workdir / "judgement"
    base.mkdir(parents=True, exist_ok=True)
    con.print(f"[bold]1.[/bold] samantha rollout lint {' '.join(BAD_POLICIES)}")
    for name, text in BAD_POLICIES.items():
        (base / name).write_text(text)
        for p in lint_policy_file(base / name)[1]:
            con.print(f"  {p}", markup=False)

    cfg = story_config(base, ctx.config, rps=40, policy=grey_policy())
    con.print("[bold]2.[/bold] a quiet Cube (40 rps), a 1% step that asks for 2000 canary samples, grey zone "
              "after 3 s: starting the twin and `samantha run` ...")
    st = lifecycle.up(cfg)
    try:
        with DaemonProcess(cfg, write_config(cfg, base / "samantha.yaml"), log=base / "daemon.log") as daemon:
            daemon.start().wait_ready(90)
            client = daemon.client
            key = SigningKey.load(st["signing_key"])
            build_bundle(Path(st["bundles_dir"]) / "v2", name="sensor-mlp", version="2", seed=0, key=key)
            t0 = time.time()
            r = httpx.post(f"{client.base_url}/v1/rollout/start", json={"bundle": "v2", "request_id": "demo-grey"},
                           headers=client.headers(), timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"the daemon refused the rollout: {r.text[:300]}")
            rec = _wait(lambda: (s := client.get("/v1/rollout/status")["rollout"]) and s.get("approval_id") and s, 40)
            if not rec:
                raise RuntimeError("the grey-zone canary was not held for a human within 40 s")
            aid = rec["approval_id"]
            item = client.get(f"/v1/chaos/approvals/{aid}")
            con.print(f"held at step 1 (1%) after {time.time() - t0:.1f} s; approval queue item {aid} "
                      f"[{item['status']}]:", markup=False)
            con.print(f"  {item['proposal']['title']}", markup=False)
            con.print(f"  why: {item['preflight']['reasons'][0]['message'][:120]}", markup=False)
            op = KeyPair.generate()
            add_operator(Path(cfg.data_dir) / "operators.yaml", "alice", "approver", op.public, time.time() + 600)
            doc = make_decision(aid, "approve", item["proposal"]["key"], op, operator="alice", now=time.time())
            r = httpx.post(f"{client.base_url}/v1/chaos/approvals/{aid}/approve", json=doc,
                           headers=client.headers(), timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"the signed approval was refused: {r.text[:300]}")
            moved = _wait(lambda: (s := client.get("/v1/rollout/status")["rollout"]) and (s.get("step") or 0) > 0 and s,
                          20)
            if not moved:
                raise RuntimeError("the approved step did not advance within 20 s")
            con.print(f"alice approved (signed, ed25519): the rollout moved on to {moved['steps'][moved['step']]:g}%; "
                      f"the step's verdict: {moved['step_verdicts'][-1]['reason'][:90]}", markup=False)
            ctx.facts["grey zone: held for a human after s"] = round(rec["decisions"][-1]["ts"] - t0, 1)
            httpx.post(f"{client.base_url}/v1/rollout/abort", json={"reason": "demo over"},
                       headers=client.headers(), timeout=30)
    finally:
        lifecycle.down(cfg)
