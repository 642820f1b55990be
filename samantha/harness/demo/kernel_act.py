"""Act: the safety kernel judges proposed actions, every decision goes into the signed log, and an
alert waits out a receiver outage; the kernel's provenance rules judge what a bundle carries (SBOM, SLSA)."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
from rich.markup import escape
from rich.table import Table

from samantha.core.audit import AuditLog, DuckDBAuditStore, trusted_keys, verify_store
from samantha.core.clock import SimClock
from samantha.core.config import AlertsConfig
from samantha.core.signing import KeyPair
from samantha.kernel.policy import ActionRecord, CubeSnapshot, ProposedAction, SlotState, decide
from samantha.uplink.alerts import AlertManager

TITLE = "Safety kernel, signed decision log, alerts"

GOOD = SlotState(bundle="v1", healthy=True, loaded=True, verified=True)


def _proposals() -> list[tuple[str, ProposedAction, CubeSnapshot]]:
    canary = CubeSnapshot(active=GOOD, standby=SlotState(bundle="v2", healthy=True, loaded=True, verified=False),
                          rollout_in_progress=True, known_good=frozenset({"v1"}))
    lkg = CubeSnapshot(active=SlotState(bundle="v1", healthy=False, loaded=True, verified=True),
                       standby=GOOD.model_copy(update={"bundle": "v0"}), known_good=frozenset({"v0", "v1"}))
    pb = {"requested_by": "playbook", "reason": "gate breach"}
    return [
        ("LLM suggests a flip", ProposedAction(kind="flip", scope="active", requested_by="llm",
                                               reason="looks bad"), lkg),
        ("flip to an unverified canary", ProposedAction(kind="flip", scope="active", playbook="active-slot", **pb),
         canary),
        ("quarantine the bad canary", ProposedAction(kind="quarantine", scope="canary", playbook="bad-canary",
                                                     target_bundle="v2", **pb), canary),
        ("quarantine the last healthy bundle", ProposedAction(kind="quarantine", scope="active", playbook="x",
                                                              target_bundle="v0", **pb), lkg),
        ("flip to last-known-good", ProposedAction(kind="flip", scope="active", playbook="active-slot", **pb), lkg),
    ]


class _Receiver(BaseHTTPRequestHandler):
    got: list[dict] = []

    def do_POST(self) -> None:
        _Receiver.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(ctx) -> None:
    clock = SimClock()
    key = KeyPair.load_or_create(ctx.config.cube_key_path)
    db_path = ctx.workdir / "kernel.duckdb"
    conn = duckdb.connect(str(db_path))
    try:
        log = AuditLog(DuckDBAuditStore(conn), key, clock)
        table = Table("proposal", "verdict", "rule: reason")
        history: list[ActionRecord] = []
        refused = 0
        for title, action, state in _proposals():
            d = decide(action, state, history, clock.time(), ctx.config.policy)
            log.append("decision", {"action": action.model_dump(mode="json"), "allowed": d.allowed,
                                    "violated": d.violated, "reasons": d.reasons})
            if d.allowed:
                history.append(ActionRecord.of(action, clock.time()))
            refused += not d.allowed
            verdict = "[green]allowed" if d.allowed else "[red]refused"
            table.add_row(title, verdict,
                          escape("; ".join(f"{r}: {w}" for r, w in zip(d.violated, d.reasons, strict=True))))
            clock.advance(60)
        ctx.console.print(table)

        # Anti-flap: an operator flipping back and forth meets the hourly flip limit.
        lkg = _proposals()[-1][2]
        op = ProposedAction(kind="flip", scope="operator", requested_by="operator", reason="manual")
        for _ in range(20):
            if not decide(op, lkg, history, clock.time(), ctx.config.policy).allowed:
                break
            history.append(ActionRecord.of(op, clock.time()))
            clock.advance(120)
        refusal = decide(op, lkg, history, clock.time(), ctx.config.policy)
        flips = sum(r.kind == "flip" for r in history)
        ctx.console.print(f"{flips} flips in the last hour, then the next one is {escape(refusal.explain())}")

        report = verify_store(DuckDBAuditStore(conn, create=False), trusted_keys(key.public))
        ctx.console.print(f"audit verify: ok={report.ok}, {report.count} signed records, head at {report.head_seq}")
    finally:
        conn.close()

    tampered = ctx.workdir / "kernel-tampered.duckdb"
    shutil.copy(db_path, tampered)
    with duckdb.connect(str(tampered)) as t:
        t.execute("UPDATE audit SET payload = replace(payload, 'false', 'true') WHERE seq = 2")
        bad = verify_store(DuckDBAuditStore(t, create=False), trusted_keys(key.public))
    ctx.console.print(f"after editing record 2 of a copy: ok={bad.ok}, {escape(bad.reason or '')}")

    _alerts(ctx, clock)
    _provenance(ctx)
    if not report.ok or bad.ok:
        raise RuntimeError("audit verification did not behave: intact log must pass, tampered copy must fail")
    ctx.facts["kernel_refusals"] = refused
    ctx.facts["audit_verify"] = f"intact ({report.count} records); tampering detected at record {bad.first_bad_seq}"


def _alerts(ctx, clock: SimClock) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    port = server.server_address[1]
    server.server_close()  # the receiver is down: nothing listens on the port yet
    conn = duckdb.connect(str(ctx.workdir / "kernel.duckdb"))
    am = AlertManager(conn, AlertsConfig(receivers=[f"http://127.0.0.1:{port}/hook"], timeout_s=0.5), clock)
    try:
        am.fire("CanaryQuarantined", "critical", "v2 quarantined at step 1%", {"bundle": "v2"})
        am.fire("CanaryQuarantined", "critical", "v2 quarantined at step 1%", {"bundle": "v2"})  # dedup
        first = am.deliver()
        ctx.console.print(f"receiver down: delivered {first['sent']}, queued {len(am.pending())} (durably, in DuckDB)")
        server = ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        clock.advance(5)
        second = am.deliver()
        ctx.console.print(f"receiver up: delivered {second['sent']} Alertmanager v4 notification(s), "
                          f"status {_Receiver.got[-1]['status']}, queue now {len(am.pending())}")
        server.shutdown()
        server.server_close()
        thread.join(5)
    finally:
        am.close()
        conn.close()


def _provenance(ctx) -> None:
    """The daemon's bundle intake under a policy module's supply section: a signed bundle whose SBOM lists a denied
    component is refused by rule; a clean one is admitted, citing the digests of what it carries."""
    from samantha.core.supply import SupplyPolicy
    from samantha.cube.attestations import BuildInfo
    from samantha.cube.bundle import SigningKey, trust_key
    from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
    from samantha.twin.toy_bundle import build_bundle, toy_components

    root = ctx.workdir / "supply"
    key = SigningKey.generate(root / "publisher.pem")
    trust_key(key, root / "trusted")
    builder = "https://ci.fleet.example/builder/v1"
    policy = SupplyPolicy(required_builder=builder, require_sbom=True, deny_components=["pkg:pypi/evil"])
    catalog = BundleCatalog(root / "bundles", root / "trusted", supply=lambda: policy)
    for name, extra in (("with-evil", ("pkg:pypi/evil@0.1",)), ("clean", ())):
        build_bundle(root / "bundles" / name, name="sensor-mlp", version="2", key=key,
                     attest=BuildInfo(builder, "git+https://git.fleet.example/models/sensor", "9e1d" * 10,
                                      components=(*toy_components(), *extra)))
    try:
        catalog.verify("with-evil")
        raise RuntimeError("a bundle whose SBOM lists a denied component was admitted")
    except BundleRejected as e:
        ctx.console.print(f"supply: bundle with-evil refused by rule {e.rule}: {escape(e.reason)}", highlight=False)
    info = catalog.verify("clean")
    cited = ", ".join(f"{n} {h[:12]}" for n, h in info.attestations.items())
    ctx.console.print(f"supply: bundle clean admitted (builder {builder}); its load cites {cited}", highlight=False)
    ctx.facts["provenance"] = f"denied-component refused; admitted citing {len(info.attestations)} attestation digests"
