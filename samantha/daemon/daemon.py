"""`samantha run`: one process that owns the DuckDB file and governs the Cube.

`Daemon.open` builds the parts (`samantha/daemon/parts.py`: the telemetry store, the only
writer; the steady-state graph, resumed before anything new; the rollout controller; chaos
mode, its ledger recovered before the API serves; the uplink; the operator surfaces), then the
daemon serves the local HTTP API on loopback over its view (`samantha/daemon/view.py`) and runs
its loops: the steady-state cycle (on new telemetry and at least every `sre.eval_interval_s`,
then a rollout tick), alert delivery, the uplink tick, chaos mode's TTL sweeper and the systemd
watchdog. SIGTERM/SIGINT stop it gracefully: the API stops taking requests, the running cycle
finishes, telemetry is flushed and the store closed. Under systemd it sends READY=1, WATCHDOG=1
(only while cycles complete) and STOPPING=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn

from samantha.api.app import make_app
from samantha.api.client import run_file
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.validated_yaml import field_path
from samantha.daemon.parts import Parts, build_parts
from samantha.daemon.sd_notify import Notifier, watchdog_interval_s
from samantha.daemon.view import ApiView, LoopState
from samantha.gates.policy_lint import check_policy
from samantha.playbooks.playbook_set import runner_in_force
from samantha.rollout.controller import gate_judge

if TYPE_CHECKING:
    from samantha.chaos.service import ChaosService  # imported by the parts only when chaos mode is on

log = logging.getLogger("samantha.daemon.daemon")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon owns SIGTERM/SIGINT: uvicorn must not re-raise them after its own shutdown


class Daemon:
    """Lifecycle (`open`, `serve`, `close`) and the loops, over parts built by `build_parts`."""

    def __init__(self, parts: Parts, state: LoopState, *, notifier: Notifier | None = None) -> None:
        self.parts, self.state = parts, state
        self.config, self.clock = parts.config, parts.clock
        self.notifier = notifier or Notifier()
        self.view = ApiView(parts, state, self.on_ingest)
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._closed = False

    @classmethod
    def open(cls, config: SamanthaConfig, clock: Clock = REAL_CLOCK, *, notifier: Notifier | None = None) -> Daemon:
        """Build every part in dependency order. Raises on a locked store or bad playbooks."""
        state = LoopState(started_at=clock.time(), last_cycle_end=time.monotonic())
        parts = build_parts(config, clock, api_url=lambda: state.url)  # the URL is known once the API has bound
        return cls(parts, state, notifier=notifier)

    # ------------------------------------------------------------------ the loops
    def cycle(self) -> dict[str, Any]:
        """One steady-state cycle, then the policy module's Plans and one rollout tick (in a worker thread)."""
        self._adopt_policy()
        out = self.parts.graph.run_cycle()
        self.parts.surfaces.after_cycle(out)
        p = self.parts
        cur = p.uplink.policy.current()
        if cur is not None and cur.module.plans:
            p.plans.tick(cur.module.plans, self.clock.time(), safe_mode=p.uplink.safe.safe)
        self.parts.rollout.tick(self.clock.time())
        return out

    def _adopt_policy(self) -> None:
        """Run the verified policy module's playbooks and rollout policy; the local (built-in) set without one
        or in safe mode. Checked before every cycle, applied between cycles: one set per cycle, atomically."""
        p = self.parts
        cur, safe = p.uplink.policy.current(), p.uplink.safe.safe
        key = cur.sha256 if cur is not None and not safe else None
        if key == self.state.policy_in_force:
            return
        self.state.policy_in_force = key
        module = cur.module if key and cur is not None else None
        source = f"policy module v{module.version}" if module else "local playbooks"
        try:
            runner = runner_in_force(p.playbooks, module.playbooks if module else [],
                                     list(module.gates) if module else [], source)
        except (KeyError, ValueError) as e:  # the set in force stays; the module's refusal is on record
            p.audit.append("policy_refused", {"source": source, "reason": str(e)[:500]})
            p.alerts.fire("samantha_policy_refused", "warning", f"{source}: playbooks not applied: {e}"[:500],
                             {"source": "uplink"}, key="policy-refused")
            return
        p.nodes.adopt(runner)
        self.state.runner = runner
        rollout = module.rollout_policy if module and module.rollout_policy else p.rollout_policy
        bad = check_policy(rollout, runner.registry) if module and module.rollout_policy else []
        if bad:  # the rollout policy in force stays; the playbooks above are independent of it
            why = "; ".join(f"rollout_policy.{field_path(loc)}: {r}" for loc, r in bad)[:500]
            p.audit.append("policy_refused", {"source": source, "reason": why})
            p.alerts.fire("samantha_policy_refused", "warning", f"{source}: rollout policy not applied: {why}"[:500],
                          {"source": "uplink"}, key="policy-refused")
            rollout = p.rollout_policy
        p.rollout.adopt(rollout, gate_judge(p.engine, rollout, runner.registry))
        p.audit.append("policy_adopted", {"source": source, "playbooks": [pb.name for pb in runner.playbooks],
                                          "rollout_policy": rollout.name if rollout else None})

    async def _sre_loop(self) -> None:
        cfg = self.config.sre
        assert self._wake is not None
        last = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, last + cfg.eval_interval_s - time.monotonic()))
            gap = last + cfg.min_eval_gap_s - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            if self._stopping:
                return
            self._wake.clear()
            last = time.monotonic()
            try:
                await asyncio.to_thread(self.cycle)
                self.state.last_cycle_end = time.monotonic()
            except Exception as e:  # a bad cycle is logged and counted; the loop must go on
                self.state.cycle_errors += 1
                self.state.last_error = f"{type(e).__name__}: {e}"[:500]
                log.exception("steady-state cycle failed")

    async def _watchdog_loop(self, interval: float) -> None:
        stale = 2 * self.config.sre.cube_timeout_s + 5 * self.config.sre.eval_interval_s
        while not self._stopping:
            if time.monotonic() - self.state.last_cycle_end < stale:  # a hung loop stops feeding: systemd restarts us
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _alerts_loop(self) -> None:
        while not self._stopping:
            if self.config.alerts.receivers:
                try:
                    await asyncio.to_thread(self.parts.alerts.deliver)
                except Exception:
                    log.exception("alert delivery failed")
            await asyncio.sleep(1.0)

    async def _chaos_sweep_loop(self, chaos: ChaosService) -> None:
        """Revert ledger entries past their TTL and expire undecided approvals, every `chaos.sweep_interval_s`."""
        while not self._stopping:
            try:
                await asyncio.wait_for(asyncio.to_thread(chaos.sweep), 30)
            except Exception:  # the next tick retries; a sweep must never take the daemon down
                log.exception("chaos sweep failed")
            await asyncio.sleep(self.config.chaos.sweep_interval_s)

    async def _uplink_loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.to_thread(self.parts.uplink.tick)
            except Exception:  # offline is normal; a failing tick is logged and the next one retries
                log.exception("uplink tick failed")
            await asyncio.sleep(self.config.uplink.interval_s)

    def on_ingest(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        api, surfaces = self.config.api, self.parts.surfaces
        server = _Server(uvicorn.Config(surfaces.secure(make_app(self.view)), host=api.host, port=api.port,
                                        log_level="warning", access_log=False, lifespan="off", **surfaces.tls))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                self.close()
                print(f"samantha: the API could not listen on {api.host}:{api.port}", flush=True)
                return 1
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = self.state.url = f"{surfaces.scheme}://{api.host}:{port}"  # chaos probes ask the gates here
        self._write_run_file()
        tasks = [asyncio.create_task(self._sre_loop()), asyncio.create_task(self._alerts_loop()),
                 asyncio.create_task(self._uplink_loop())]
        if self.parts.chaos is not None:
            tasks.append(asyncio.create_task(self._chaos_sweep_loop(self.parts.chaos)))
        wd = watchdog_interval_s() if self.config.sre.watchdog else None
        if wd is not None:
            tasks.append(asyncio.create_task(self._watchdog_loop(wd)))
        self.notifier.ready(f"serving {url}; {len(self.parts.playbooks)} playbooks")
        print(f"samantha: serving {url} (pid {os.getpid()}); "
              f"{'resumed an interrupted cycle' if self.parts.recovery.get('resumed') else 'clean start'}",
              flush=True)
        await stop.wait()
        self.notifier.stopping()
        self._stopping = True
        self._wake.set()
        server.should_exit = True
        await asyncio.wait(tasks, timeout=2 * self.config.sre.cube_timeout_s + 5)
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(serving, 10)
        self.close()
        print("samantha: stopped", flush=True)
        return 0

    def _write_run_file(self) -> None:
        p = run_file(self.config)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": self.state.url, "started": self.state.started_at}))
        os.replace(tmp, p)

    def close(self) -> None:
        """Close the parts (reverse order of building), then remove the run file if it is ours."""
        if self._closed:
            return
        self._closed = True
        self.parts.close()
        with contextlib.suppress(OSError):
            p = run_file(self.config)
            if p.exists() and json.loads(p.read_text()).get("pid") == os.getpid():
                p.unlink()


def run(config: SamanthaConfig) -> int:
    """Foreground daemon; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon = Daemon.open(config)
    return asyncio.run(daemon.serve())
