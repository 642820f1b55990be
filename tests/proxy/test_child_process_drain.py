"""ChildProcess drains a child's output after its ready line: a chatty child is never blocked on a full pipe."""

from __future__ import annotations

import time

import pytest

from samantha.harness.proxy_process import ChildProcess


@pytest.mark.timeout(60)
def test_a_child_logging_a_megabyte_after_ready_is_not_blocked_and_its_tail_is_kept(tmp_path):
    marker = tmp_path / "through"
    child = ChildProcess("tests.proxy.chatty_child", [str(marker)], "READY:", timeout=30)
    try:
        assert child.value == "1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.05)
        assert marker.exists(), "the child stayed blocked writing to its stderr"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "log line 019999" not in child.tail(1):
            time.sleep(0.05)
        assert child.tail(1).startswith("log line 019999"), child.tail(3)
        assert len(child.tail(10_000).splitlines()) == ChildProcess.TAIL_LINES  # bounded
    finally:
        child.stop()
    assert child.proc.returncode is not None
