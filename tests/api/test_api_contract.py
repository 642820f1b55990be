"""The OpenAPI document is the truth: Schemathesis (every default check) against a real daemon.

Run detached (no Cube: routes that need it answer 503 naming the Cube's URL) and attached (a twin).
Bounded: a few examples per operation and a time budget per run. Nothing stored is lost meanwhile:
`committed_by_table` never goes down, and the daemon keeps serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from samantha.core.config import SamanthaConfig
from samantha.core.operators import add_operator
from samantha.harness.daemon_process import DaemonProcess, write_config
from tests.conftest import free_port

HERE = Path(__file__).parent
ST = Path(sys.executable).parent / "st"


def _run_schemathesis(url: str, token: str, report: Path, max_time: int) -> dict:
    out = subprocess.run([str(ST), "--config-file", str(HERE / "schemathesis.toml"), "run", f"{url}/openapi.json",
                          "-H", f"Authorization: Bearer {token}", "-n", "3", "--max-time", str(max_time),
                          "--phases", "examples,coverage,fuzzing", "--seed", "22", "--no-color",
                          "--report-json-path", str(report)],
                         capture_output=True, text=True, timeout=max_time + 120, env={**os.environ},
                         cwd=report.parent)  # its example cache stays out of the repo
    (report.parent / "schemathesis.out").write_text(out.stdout)  # the whole run, for a failure
    summary = out.stdout[-3000:]
    return {"rc": out.returncode, "summary": summary}


def _committed(c: httpx.Client) -> dict[str, int]:
    return c.get("/v1/status").json()["telemetry"]["committed_by_table"]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_schemathesis_finds_nothing_on_the_detached_daemon(tmp_path: Path) -> None:
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp_path / "state"), "api": {"port": free_port()},
                                         "sre": {"cube_url": f"http://127.0.0.1:{free_port()}", "cube_timeout_s": 1},
                                         "llm": {"enabled": False}})
    Path(cfg.data_dir).mkdir(parents=True)
    token = add_operator(cfg.resolve(cfg.api.operators_file), "fuzz", "admin")
    with DaemonProcess(cfg, write_config(cfg, tmp_path / "samantha.yaml")) as d:
        d.start().wait_ready(90)
        c = httpx.Client(base_url=d.url, timeout=10, headers={"Authorization": f"Bearer {token}"})
        before = _committed(c)
        res = _run_schemathesis(d.url, token, tmp_path / "st.json", 150)
        assert res["rc"] == 0, res["summary"]
        assert c.get("/healthz").json() == {"ok": True}  # still serving
        after = _committed(c)
        assert all(after.get(t, 0) >= n for t, n in before.items()), (before, after)
        r = c.get("/v1/chaos/plan")
        assert r.status_code == 503 and cfg.sre.cube_url in r.json()["error"]["reason"] and r.headers["retry-after"]
        print(json.dumps({"schemathesis": res["summary"].splitlines()[-12:]}))
