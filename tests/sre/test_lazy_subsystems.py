"""The composition root loads chaos mode and the LLM client only when they are configured (footprint, issue 20).

A real `build_parts` in a fresh interpreter (real DuckDB file, real playbooks), then its `sys.modules`: what a
daemon without chaos mode or LLM triage never imports costs it no memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import json, sys
from samantha.core.config import SamanthaConfig
from samantha.daemon.parts import build_parts
cfg = SamanthaConfig.model_validate(json.loads(sys.argv[1]))
parts = build_parts(cfg)
try:
    print(json.dumps(sorted(m for m in sys.modules if m.startswith(("samantha.chaos", "samantha.llm")))))
finally:
    parts.close()
"""


def _loaded(tmp: Path, chaos: bool, llm: bool) -> set[str]:
    cfg = {"data_dir": str(tmp), "chaos": {"enabled": chaos}, "sre": {"llm_triage": llm},
           "host_collector": {"enabled": False}}
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(cfg)], capture_output=True, text=True, timeout=120,
                       cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 0, p.stderr[-2000:]
    return set(json.loads(p.stdout.strip().splitlines()[-1]))


def test_unconfigured_chaos_and_llm_are_not_imported(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, chaos=False, llm=False)
    assert "samantha.chaos.service" not in loaded and "samantha.chaos.approvals" not in loaded, loaded
    assert "samantha.llm.engine" not in loaded, loaded


def test_configured_chaos_is_imported(tmp_path: Path) -> None:
    """The control: the same probe sees chaos mode's modules once chaos mode is on (the check above can fail)."""
    assert "samantha.chaos.service" in _loaded(tmp_path, chaos=True, llm=False)
