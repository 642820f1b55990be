"""The `command` slot adapter on real processes (Python's own http.server as the slot's server, so no model is
needed): what a load starts, what health reports, and the refusals of a server that never gets ready, cannot start
or exits; a leftover server is stopped only when its pid file's start time matches."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from samantha.core.config import CubeCommandConfig
from samantha.core.ports import free_port
from samantha.cube.bundle import SigningKey, trust_key, write_bundle
from samantha.cube.command_slot import CommandSlot
from samantha.cube.slot_adapter import SlotLoadError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
HTTP_SERVER = [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", "{bundle_dir}"]


@pytest.fixture
def env(tmp_path):
    key = SigningKey.generate(tmp_path / "k.pem")
    trust_key(key, tmp_path / "trusted")
    write_bundle(tmp_path / "b1", {"model.bin": b"weights v1"}, name="m", version="1", key=key)
    return tmp_path


def _slot(root, argv, **kw) -> CommandSlot:
    spec = CubeCommandConfig(argv=argv, ready_url="http://{host}:{port}/", health_url="http://{host}:{port}/model.bin",
                             warmup_path=None)
    return CommandSlot("A", spec, root / "trusted", port=free_port(), work_dir=root / "slots", **kw)


def test_load_starts_the_command_on_the_verified_copy_and_health_follows_the_process(env):
    async def run():
        slot = _slot(env, HTTP_SERVER, ready_timeout_s=30)
        try:
            loaded = await slot.load(slot.verify(env / "b1"))
            assert loaded.contract is None and f"on port {slot.port}" in loaded.detail
            # the server serves the copy in the slot's directory, not the bundle directory
            (env / "b1" / "model.bin").write_bytes(b"changed on disk")
            r = httpx.get(f"http://127.0.0.1:{slot.port}/model.bin", timeout=5)
            assert r.content == b"weights v1"
            assert await slot.health() == (True, None)
            assert json.loads(slot.pid_path.read_text())["pid"] == slot.proc.pid
            slot.proc.kill()
            slot.proc.wait(5)
            healthy, detail = await slot.health()
            assert not healthy and "exited with -9" in detail
        finally:
            await slot.close()
        assert not slot.pid_path.exists()

    asyncio.run(run())


def test_a_server_that_never_gets_ready_is_stopped_and_refused_within_the_bound(env):
    async def run():
        slot = _slot(env, [sys.executable, "-c", "import time; time.sleep(60)", "{model_path}"], ready_timeout_s=1.5)
        t0 = time.monotonic()
        with pytest.raises(SlotLoadError) as ei:
            await slot.load(slot.verify(env / "b1"))
        assert time.monotonic() - t0 < 10
        assert (ei.value.code, ei.value.status) == ("never_ready", 503) and "within 1.5 s" in ei.value.reason
        assert slot.proc is None and await slot.health() == (False, "no server started")
        await slot.close()

    asyncio.run(run())


def test_a_command_that_cannot_start_or_exits_at_once_is_refused_naming_why(env):
    async def run():
        missing = _slot(env, ["/nonexistent/server", "{model_path}"])
        with pytest.raises(SlotLoadError) as ei:
            await missing.load(missing.verify(env / "b1"))
        assert ei.value.code == "start_failed" and ei.value.field == "cube.command.argv"
        assert "/nonexistent/server" in ei.value.reason
        await missing.close()
        crash = _slot(env, [sys.executable, "-c", "import sys; print('cannot read {model_path}'); sys.exit(3)"])
        with pytest.raises(SlotLoadError) as ei:
            await crash.load(crash.verify(env / "b1"))
        assert ei.value.code == "start_failed" and "exited with 3" in ei.value.reason
        assert "cannot read" in ei.value.reason and "model.bin" in ei.value.reason  # the log's last lines
        await crash.close()

    asyncio.run(run())


def test_a_leftover_server_is_stopped_but_a_reused_pid_never_signalled(env):
    async def run():
        first = _slot(env, HTTP_SERVER, ready_timeout_s=30)
        await first.load(first.verify(env / "b1"))
        leftover = psutil.Process(first.proc.pid)
        first.proc = None  # the runtime died here: nobody stops it
        await first.http.aclose()

        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        try:
            again = _slot(env, HTTP_SERVER, ready_timeout_s=30)
            again.port = first.port
            # a pid file naming a live process that started at another time: a reused pid, left alone
            again.pid_path.write_text(json.dumps({"pid": other.pid, "create_time": 1.0}))
            await again._stop()
            assert other.poll() is None
            # the real leftover, by its recorded start time: stopped, so the slot's port is free again
            again.pid_path.write_text(json.dumps({"pid": leftover.pid, "create_time": leftover.create_time()}))
            await again.load(again.verify(env / "b1"))
            assert not leftover.is_running() and await again.health() == (True, None)
            await again.close()
        finally:
            other.kill()
            other.wait(5)

    asyncio.run(run())
