"""`samantha bench fleet`: N Cubes back from a week offline, all at once, through a regional hub.

What runs, all real processes on 127.0.0.1: a 3-node root nats-server cluster (streams R3), one regional
leaf hub that dials the root's leafnode ports through fault-proxy links (so the regional link can be
cut), Parquet writer processes (`python -m samantha.hub.nats_hub --nats ...`) on the one durable
consumer, and N simulated Cubes in this process, each a clone of one generated outbox
(samantha/harness/bench/fleet_outbox.py) uploaded by the product's `NatsLink` on its own connection.

1. catch-up: every Cube reconnects at once through the leaf; wall time until every outbox is empty
   and the writers have drained the consumer; records/s at the hub.
2. writers: SAMANTHA_UP is a work queue (a written batch leaves it), so each writer count gets its own
   backlog: the stream purged, then filled straight from the root with N Cubes' worth of the template's
   frozen batches (fresh batch ids, up to 80 % of the stream's bound) while no writer runs; then 1, 2, 4
   writer processes drain it, with a fresh hub root, for a bounded window each: records/s, ratios to one
   writer, and the CPU the writers and servers used (on a small shared machine the ratio is bounded by cores).
3. faults: the stream purged, fresh clones (new epochs), the catch-up again while a writer is
   SIGKILLed mid-batch (and restarted), a root node is SIGKILLed (and stays down), and the regional
   link is cut for `link_cut_s`.
4. the daemon: two real `samantha run` daemons, one uplinking over NATS through the leaf, one over HTTP:
   RSS and CPU (samantha/harness/bench/fleet_daemon.py).
After 1 and 3 the hub's Parquet is read back with DuckDB and compared with what was generated: every
(cube, kind, record_key) of every Cube's outbox once, none missing, none twice, nothing extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import psutil

from samantha.core import fleet as wire
from samantha.core.ports import free_port
from samantha.core.signing import sha256_hex
from samantha.harness.bench.fleet_outbox import EXPECTED, TEMPLATE, SimCube, build_template
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.nats_process import Fleet
from samantha.harness.proxy_process import ChildProcess, spawn_proxy
from samantha.hub.streams import ACK_WAIT_S, UP_MAX_BYTES

REGION = "eu"
MB = 1024**2
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


async def _js_call(urls: list[str], fn: Callable[[Any], Any]) -> Any:
    import nats

    nc = await nats.connect(servers=urls, connect_timeout=3, max_reconnect_attempts=2, reconnect_time_wait=0.3)
    try:
        return await fn(nc.jetstream(domain=wire.DOMAIN, timeout=5.0))
    finally:
        await nc.close()


def js_call(urls: list[str], fn: Callable[[Any], Any]) -> Any:
    """One JetStream API call on a short-lived connection (bounded: connect 3 s, request 5 s)."""
    return asyncio.run(_js_call(urls, fn))


def consumer_backlog(urls: list[str]) -> int | None:
    """Messages the writers have not acked yet (pending + in flight), or None if the consumer is unreachable."""
    async def q(js: Any) -> int:
        ci = await js.consumer_info(wire.STREAM_UP, wire.WRITER_DURABLE)
        return int(ci.num_pending) + int(ci.num_ack_pending)
    try:
        return js_call(urls, q)
    except Exception:  # noqa: BLE001 - a node down, a leader election: ask again
        return None


def reset_consumer(urls: list[str], purge: bool = False) -> None:
    """Drop the writers' durable (the next writer recreates it from the stream's first message); purge the stream."""
    async def q(js: Any) -> None:
        with contextlib.suppress(Exception):  # not there yet
            await js.delete_consumer(wire.STREAM_UP, wire.WRITER_DURABLE)
        if purge:
            await js.purge_stream(wire.STREAM_UP)
    for attempt in range(10):
        try:
            js_call(urls, q)
            return
        except Exception:  # noqa: BLE001
            if attempt == 9:
                raise
            time.sleep(1.0)


class Writers:
    """Parquet writer processes on one hub root; each writes its counters to its own stats file."""

    def __init__(self, root: Path, urls: list[str], *, ack_wait: float, up_max_mb: float = UP_MAX_BYTES / MB) -> None:
        self.root, self.urls, self.ack_wait, self.up_max_mb = root, urls, ack_wait, up_max_mb
        self.procs: list[ChildProcess] = []
        self.stats_dir = root / "writer-stats"
        self.stats_dir.mkdir(parents=True, exist_ok=True)

    def start(self, n: int) -> Writers:
        for _ in range(n):
            i = len(self.procs)
            self.procs.append(spawn_nats_hub(self.root, self.urls, writers=1, replicas=len(self.urls), name=f"p{i}-",
                                             stats_file=self.stats_dir / f"w{i}.json", ack_wait=self.ack_wait,
                                             up_max_mb=self.up_max_mb, timeout=90.0))
        return self

    def sigkill(self, i: int) -> None:
        p = self.procs[i].proc
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stats(self) -> dict[str, int]:
        total = {"stored": 0, "duplicates": 0, "parked": 0, "records": 0, "errors": 0}
        for f in self.stats_dir.glob("w*.json"):
            with contextlib.suppress(ValueError, OSError):  # being rewritten
                for k, v in json.loads(f.read_text()).items():
                    total[k] = total.get(k, 0) + int(v)
        return total

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.procs if p.proc.poll() is None]

    def stop(self) -> None:
        for p in self.procs:
            p.stop(timeout=10.0)
        self.procs = []


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def runqueue_wait_s(pids: list[int]) -> float:
    """Seconds the processes' threads were runnable but waiting for a core (/proc/<pid>/task/*/schedstat,
    2nd field): high means CPU-starved by the machine, not slow by design."""
    total = 0
    for pid in pids:
        for f in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(f.read_text().split()[1])
    return total / 1e9


def verify(hub_root: Path, expected: Path, cubes: list[str]) -> dict[str, Any]:
    """The hub's Parquet read back with DuckDB against every Cube's generated (kind, record_key)."""
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE cubes AS SELECT unnest(?::VARCHAR[]) AS cube", [cubes])
        con.execute(f"CREATE TABLE exp AS SELECT c.cube, e.kind, e.record_key FROM cubes c, "
                    f"read_parquet('{expected}') e")
        files = list((hub_root / "reported").glob("*/cube=*/day=*/*.parquet"))
        if files:
            con.execute(f"CREATE TABLE got AS SELECT cube, split_part(filename, '/', -4) AS kind, record_key "
                        f"FROM read_parquet('{hub_root}/reported/*/*/*/*.parquet', hive_partitioning = true, "
                        f"union_by_name = true, filename = true)")
        else:
            con.execute("CREATE TABLE got (cube VARCHAR, kind VARCHAR, record_key VARCHAR)")
        exp_n, exp_distinct = con.execute("SELECT count(*), count(DISTINCT (cube, kind, record_key)) FROM exp").fetchone()
        got_n, got_distinct = con.execute("SELECT count(*), count(DISTINCT (cube, kind, record_key)) FROM got").fetchone()
        lost = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM exp) e ANTI JOIN got g "
                           "USING (cube, kind, record_key)").fetchone()[0]
        extra = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM got) g ANTI JOIN exp e "
                            "USING (cube, kind, record_key)").fetchone()[0]
    finally:
        con.close()
    return {"records_generated": int(exp_n), "records_in_parquet": int(got_n), "parquet_files": len(files),
            "records_lost": int(lost), "duplicates": int(got_n - got_distinct) - int(exp_n - exp_distinct),
            "unexpected_records": int(extra)}


@contextlib.contextmanager
def topology(root: Path, max_file: str = "2GB") -> Iterator[tuple[Fleet, Any, list[str]]]:
    """The root cluster, the leaf dialling it through one proxy per root node, the proxy client, the proxies' names."""
    from samantha.cube.proxy_client import ProxyClient

    with spawn_proxy() as pp:
        proxy = ProxyClient(pp.value)
        names: list[str] = []

        def via(port: int) -> int:
            names.append(f"region-link-{len(names) + 1}")
            listen = free_port()
            proxy.create_proxy(names[-1], f"127.0.0.1:{port}", listen=f"127.0.0.1:{listen}")
            return listen

        fl = Fleet(root / "nats", regions=(REGION,), leaf_via=via, max_file=max_file)
        try:
            with fl:
                yield fl, proxy, names
        finally:
            proxy.close()


def catch_up(cubes: list[SimCube], hub_urls: list[str], writers: Writers, *, timeout_s: float,
             on_start: Callable[[float], None] | None = None, log: Log = _quiet) -> dict[str, Any]:
    """Every Cube at once (one thread each, the product's link on its own connection), then the consumer
    drained. Bounded by `timeout_s` in all."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    cpu0 = time.process_time()
    with ThreadPoolExecutor(max_workers=len(cubes), thread_name_prefix="cube") as ex:
        futs = [ex.submit(c.catch_up, deadline) for c in cubes]
        if on_start is not None:
            on_start(t0)
        results = [f.result() for f in futs]
    published = time.monotonic()
    log(f"  outboxes empty after {published - t0:.1f}s; draining the consumer")
    backlog = None
    while time.monotonic() < deadline:
        backlog = consumer_backlog(hub_urls)
        if backlog == 0:
            break
        time.sleep(0.5)
    drained = time.monotonic()
    time.sleep(1.2)  # the writers' stats files are rewritten every second
    st = writers.stats()
    wall = drained - t0
    return {"wall_s": round(wall, 2), "outboxes_empty_s": round(published - t0, 2),
            "cubes_done": sum(r["done"] for r in results), "rounds": sum(r["rounds"] for r in results),
            "failed_rounds": sum(r["failed_rounds"] for r in results),
            "failed_rounds_by_error": _sum_counts(r["error_kinds"] for r in results),
            "errors_seen": sorted({r["last_error"][:120] for r in results if r.get("last_error")})[:5],
            "consumer_backlog_at_end": backlog, "batches_stored_by_writer_counters": st["stored"],
            "duplicate_batches_dropped_by_writer": st["duplicates"], "parked": st["parked"],
            "writer_errors": st["errors"],
            "bench_process_cpu_s": round(time.process_time() - cpu0, 1)}


def _sum_counts(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def fill_backlog(urls: list[str], template: Path, cubes: int, max_bytes: int, tag: str,
                 in_flight: int = 256) -> dict[str, Any]:
    """The stream filled, while no writer runs, with `cubes` Cubes' worth of the template's frozen batches under
    fresh cube ids and batch ids, published straight to the root (`in_flight` at once); fewer Cubes if they would
    pass 80 % of the stream's bound (it discards new). Returns what was published."""
    con = duckdb.connect(str(template), read_only=True)
    try:
        rows = con.execute("SELECT seq, kind, first_ts, records, payload FROM outbox ORDER BY seq").fetchall()
    finally:
        con.close()
    per_cube = sum(len(r[4]) for r in rows) or 1
    n = max(1, min(cubes, int(0.8 * max_bytes // per_cube)))
    shas = [sha256_hex(bytes(r[4])) for r in rows]
    t0 = time.monotonic()
    asyncio.run(_fill(urls, rows, shas, [f"{tag}-{i:04d}" for i in range(n)], in_flight))
    return {"cubes": n, "batches": n * len(rows), "records": n * sum(int(r[3]) for r in rows),
            "bytes": n * per_cube, "publish_s": round(time.monotonic() - t0, 1)}


async def _fill(urls: list[str], rows: list[tuple[Any, ...]], shas: list[str], cubes: list[str],
                in_flight: int = 256) -> None:
    import nats

    nc = await nats.connect(servers=urls, connect_timeout=3, max_reconnect_attempts=-1, reconnect_time_wait=0.3)
    js = nc.jetstream(domain=wire.DOMAIN, timeout=10.0)
    slots = asyncio.Semaphore(in_flight)

    async def one(cube: str, epoch: str, row: tuple[Any, ...], sha: str) -> None:
        seq, kind, first_ts, records, payload = row
        headers = wire.batch_headers(batch_id=f"{epoch}-{int(seq):010d}", seq=int(seq), kind=kind,
                                     first_ts=float(first_ts), records=int(records), sha256=sha, cube=cube)
        try:
            for attempt in range(5):  # a resend under the same Nats-Msg-Id is dropped by the stream's dedup
                try:
                    await js.publish(wire.up_subject(REGION, cube, kind), bytes(payload), headers=headers)
                    return
                except Exception:  # noqa: BLE001 - a slow PubAck under load: again
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            slots.release()

    try:
        tasks = []
        for cube in cubes:
            epoch = secrets.token_hex(6)
            for row, sha in zip(rows, shas, strict=True):
                await slots.acquire()
                tasks.append(asyncio.create_task(one(cube, epoch, row, sha)))
        await asyncio.gather(*tasks)
    finally:
        await nc.close()


def writer_scaling(root: Path, fl: Fleet, counts: tuple[int, ...], *, cubes: int, window_s: float,
                   ack_wait: float, up_max_mb: float = UP_MAX_BYTES / MB, log: Log = _quiet) -> dict[str, Any]:
    """Each count of writer processes drains a backlog of its own (`fill_backlog`, fresh hub root) for at most
    `window_s` after its first stored batch; the rate is taken between the first and the last change of the
    writers' counters (each rewritten every second)."""
    out: dict[str, Any] = {}
    server_pids = [n.proc.pid for n in fl.nodes if n.proc is not None]
    for k in counts:
        reset_consumer(fl.root_urls, purge=True)  # what an earlier window left unwritten is not this one's
        backlog = fill_backlog(fl.root_urls, root / TEMPLATE, cubes, int(up_max_mb * MB), tag=f"scale{k}")
        log(f"  backlog for {k} writer(s): {backlog}")
        w = Writers(root / f"hub-scale-{k}", fl.root_urls, ack_wait=ack_wait, up_max_mb=up_max_mb).start(k)
        try:
            samples: list[tuple[float, int, int, float, float]] = []
            bound = time.monotonic() + window_s + 60.0  # 60 s to store a first batch, then the window
            drained = False
            while time.monotonic() < bound:
                st, now = w.stats(), time.monotonic()
                samples.append((now, st["stored"], st["records"], cpu_seconds(w.pids() + server_pids),
                                runqueue_wait_s(w.pids())))
                first = next((x for x in samples if x[1] > 0), None)
                if first is not None and (now - first[0] >= window_s or drained):
                    break
                if first is not None and consumer_backlog(fl.root_urls) == 0:
                    drained = True  # one more round of stats files, then stop
                time.sleep(1.05 if drained else 0.5)
            first = next((x for x in samples if x[1] > 0), None)
            if first is None:
                out[str(k)] = {"error": "no batch stored within 60 s"}
                continue
            last = next(x for x in samples if x[1] == samples[-1][1])
            dt = last[0] - first[0]
            row: dict[str, Any] = {"backlog": backlog, "window_s": round(dt, 1), "drained_in_window": drained,
                                   "loadavg_1m": round(os.getloadavg()[0], 1)}
            if dt < 1.0:
                row["error"] = "the stream drained within a second: too small to measure"
            else:
                row.update({"batches_per_s": round((last[1] - first[1]) / dt, 1),
                            "records_per_s": round((last[2] - first[2]) / dt, 1),
                            "cpu_cores_writers_and_servers": round((last[3] - first[3]) / dt, 2),
                            # per writer process: the share of the window it was runnable and had no core
                            "writer_runqueue_wait_share": round((last[4] - first[4]) / dt / k, 2)})
            out[str(k)] = row
            log(f"  {k} writer(s): {row}")
        finally:
            w.stop()
    base = (out.get("1") or {}).get("records_per_s")
    for k in counts:
        r = (out.get(str(k)) or {}).get("records_per_s")
        if base and r is not None and k != 1:
            out[f"ratio_{k}_vs_1"] = round(r / base, 2)
    return out


def stream_last_seq(urls: list[str]) -> int:
    """The stream's last sequence: what ever came in (a work queue forgets what was written), 0 if unreachable."""
    async def q(js: Any) -> int:
        return int((await js.stream_info(wire.STREAM_UP)).state.last_seq)
    try:
        return js_call(urls, q)
    except Exception:  # noqa: BLE001 - a node down: count from 0
        return 0


def fault_catch_up(root: Path, fl: Fleet, proxy: Any, links: list[str], cubes: list[SimCube], *, writers_n: int,
                   ack_wait: float, link_cut_s: float, timeout_s: float, expected_batches: int,
                   link_kbps: float = 0.0, up_max_mb: float = UP_MAX_BYTES / MB, log: Log = _quiet) -> dict[str, Any]:
    """The catch-up again while a writer is SIGKILLed and restarted, a root node is SIGKILLed and the
    regional link is cut for `link_cut_s`; each fault is timed from the start and flagged if it landed
    before the hub had written everything. `link_kbps` > 0 throttles the regional link (a bandwidth toxic,
    leaf to root) so that a small fleet's catch-up lasts long enough for the faults to land in it."""
    reset_consumer(fl.root_urls, purge=True)
    base = stream_last_seq(fl.root_urls)
    alive = fl.root_urls[1:]  # node 0 is the one killed
    hub = root / "hub-faults"
    w = Writers(hub, fl.root_urls, ack_wait=ack_wait, up_max_mb=up_max_mb).start(writers_n)
    faults: list[dict[str, Any]] = []
    done = threading.Event()

    def inject(t0: float) -> None:
        asyncio.run(_inject(t0))

    async def _inject(t0: float) -> None:
        """SIGKILL a writer while it holds delivered, unacked batches (restarted beside the others); SIGKILL a
        root node; once a third of the batches are in the stream, cut the regional link for `link_cut_s`.
        Polled on one connection to the surviving nodes, every 20 ms, each wait bounded by the catch-up's."""
        import nats

        def at(name: str, **kw: Any) -> None:
            faults.append({"fault": name, "at_s": round(time.monotonic() - t0, 2), "during_catchup": not done.is_set(),
                           **kw})
            log(f"  fault: {faults[-1]}")

        nc = await nats.connect(servers=alive, connect_timeout=3, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream(domain=wire.DOMAIN, timeout=2.0)

        async def wait(cond: Callable[[], Any]) -> Any:
            while time.monotonic() < t0 + timeout_s and not done.is_set():
                with contextlib.suppress(Exception):  # an election in progress: ask again
                    if v := await cond():
                        return v
                await asyncio.sleep(0.02)
            return None

        async def unacked() -> int:
            return int((await js.consumer_info(wire.STREAM_UP, wire.WRITER_DURABLE)).num_ack_pending)

        async def a_third_in() -> bool:  # a work queue: written batches leave it, so count what came in
            return int((await js.stream_info(wire.STREAM_UP)).state.last_seq) - base >= max(1, expected_batches // 3)

        try:
            held = await wait(unacked)
            w.sigkill(0)
            at("sigkill_writer", pid=w.procs[0].proc.pid, batches_delivered_unacked=held)
            restart = threading.Thread(target=lambda: (w.start(1), at("writer_restarted")), daemon=True)
            restart.start()
            await asyncio.sleep(0.5)
            fl.nodes[0].kill()
            at("sigkill_root_node", node=fl.nodes[0].spec.name)
            await wait(a_third_in)
            for n in links:
                proxy.disable(n)
            at("regional_link_cut", seconds=link_cut_s)
            await asyncio.sleep(link_cut_s)
            for n in links:
                proxy.enable(n)
            at("regional_link_restored")
            await asyncio.to_thread(restart.join, 120)
        finally:
            await nc.close()

    injector: threading.Thread | None = None

    def on_start(t0: float) -> None:
        nonlocal injector
        injector = threading.Thread(target=inject, args=(t0,), daemon=True)
        injector.start()

    if link_kbps > 0:
        for n in links:
            proxy.add_toxic(n, "bandwidth", {"rate": int(link_kbps)}, stream="upstream", name="throttle")
    try:
        res = catch_up(cubes, alive, w, timeout_s=timeout_s,
                       on_start=on_start, log=log)
    finally:
        done.set()
        if injector is not None:
            injector.join(link_cut_s + 30)
        for n in links:
            with contextlib.suppress(Exception):
                proxy.enable(n)
            if link_kbps > 0:
                with contextlib.suppress(Exception):
                    proxy.remove_toxic(n, "throttle")
        w.stop()
    res["link_throttle_kbps"] = link_kbps or None
    res["faults"] = faults
    res["ack_wait_s"] = ack_wait
    res.update(verify(hub, root / EXPECTED, [c.cube_id for c in cubes]))
    return with_rate(res)


def with_rate(res: dict[str, Any]) -> dict[str, Any]:
    """Records/s at the hub from the Parquet read back (a SIGKILLed writer's last counters are lost)."""
    if res.get("wall_s"):
        res["records_per_s_at_hub"] = round(res["records_in_parquet"] / res["wall_s"], 1)
        res["batches_per_s_at_hub"] = round(res["parquet_files"] / res["wall_s"], 1)
    return res


def make_cubes(root: Path, n: int, leaf_url: str, tag: str) -> list[SimCube]:
    d = root / f"cubes-{tag}"
    d.mkdir(parents=True, exist_ok=True)
    return [SimCube(root / TEMPLATE, d / f"cube-{i:04d}.duckdb", f"cube-{i:04d}", [leaf_url], region=REGION)
            for i in range(n)]


def close_cubes(cubes: list[SimCube]) -> None:
    for c in cubes:
        with contextlib.suppress(Exception):
            c.close()


def run_fleet_bench(*, cubes: int = 200, days: float = 7.0, writer_counts: tuple[int, ...] = (1, 2, 4),
                    catchup_writers: int = 2, faults: bool = True, link_cut_s: float = 30.0,
                    scale_window_s: float = 30.0, ack_wait: float = ACK_WAIT_S, series: int = 10,
                    fault_link_kbps: float = 0.0, daemon: bool = True, up_max_mb: float = UP_MAX_BYTES / MB,
                    progress: Callable[[float, float], None] | None = None,
                    timeout_s: float = 900.0, workdir: Path | None = None, log: Log = _quiet) -> dict[str, Any]:
    if threading.current_thread() is threading.main_thread():  # SIGTERM still reaps every child process
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    own = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix="samantha-fleet-bench-"))
    t_all = time.monotonic()
    result: dict[str, Any] = {"cubes": cubes, "days": days, "machine": {"cpus": os.cpu_count(),
                                                                       "loadavg_1m": round(os.getloadavg()[0], 2)}}
    try:
        log(f"generating one Cube's {days:g}-day outbox")
        tpl = build_template(root, days=days, series=series, progress=progress)
        result["outbox_per_cube"] = {**tpl, "cloned": True, "how": (
            "one Cube's outbox generated once by the offline bench's generator (rollup minutes, gauges, the "
            "hourly SRE loop, collected by the real UplinkService), every batch frozen, then cloned per Cube "
            "with its own cube id and outbox epoch (so its own batch ids)")}
        need = cubes * tpl["bytes"]
        # a work queue holds only what the writers have not written: the fleet need not fit, a full stream makes
        # the Cubes' PubAcks fail and they resend once the writers catch up
        result["stream_capacity"] = {
            "retention": "workqueue", "outbox_bytes_all_cubes": need, "stream_max_bytes": int(up_max_mb * MB),
            "all_outboxes_fit_unwritten": need <= up_max_mb * MB,
            "projected_bytes_200_cubes_7_days": int(tpl["bytes"] / days * 7 * 200)}
        with topology(root, max_file=f"{int(up_max_mb + 1024)}MB") as (fl, proxy, links):
            result["topology"] = {"root_nodes": len(fl.nodes), "stream_replicas": len(fl.nodes), "regional_hubs": 1,
                                  "cube_connections": f"{cubes} (one per Cube, to the regional leaf)",
                                  "regional_link": "leaf -> fault proxy -> each root node's leafnode port"}
            log(f"catch-up: {cubes} Cubes through leaf-{REGION}, {catchup_writers} writer process(es)")
            cs = make_cubes(root, cubes, fl.leaf_url(REGION), "a")
            w = Writers(root / "hub", fl.root_urls, ack_wait=ack_wait, up_max_mb=up_max_mb).start(catchup_writers)
            try:
                res = catch_up(cs, fl.root_urls, w, timeout_s=timeout_s, log=log)
            finally:
                w.stop()
                close_cubes(cs)
            res["writers"] = catchup_writers
            res.update(verify(root / "hub", root / EXPECTED, [c.cube_id for c in cs]))
            result["catchup"] = with_rate(res)
            log(f"  {res}")
            log(f"writers {writer_counts}: {scale_window_s:g} s windows on the stream")
            result["writers"] = writer_scaling(root, fl, writer_counts, cubes=cubes, window_s=scale_window_s,
                                               ack_wait=ack_wait, up_max_mb=up_max_mb, log=log)
            if faults:
                log("faults during a second catch-up")
                cs = make_cubes(root, cubes, fl.leaf_url(REGION), "b")
                try:
                    result["faults"] = fault_catch_up(root, fl, proxy, links, cs, writers_n=catchup_writers,
                                                      ack_wait=ack_wait, link_cut_s=link_cut_s,
                                                      timeout_s=timeout_s, log=log,
                                                      expected_batches=cubes * tpl["batches"],
                                                      link_kbps=fault_link_kbps, up_max_mb=up_max_mb)
                finally:
                    close_cubes(cs)
            if daemon:
                from samantha.harness.bench.fleet_daemon import daemon_uplinks

                log("the daemon's footprint: NATS uplink (through the leaf) against the HTTP uplink")
                result["daemon_uplink"] = daemon_uplinks(root / "daemons", fl.leaf_url(REGION), region=REGION)
        result["bench_wall_s"] = round(time.monotonic() - t_all, 1)
        result["targets"] = judge(result)
        return result
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def judge(r: dict[str, Any]) -> dict[str, Any]:
    """Each target with its figure; a miss says why where the bench can tell."""
    c, f, w = r.get("catchup", {}), r.get("faults"), r.get("writers", {})
    ratio = w.get("ratio_4_vs_1")
    out: dict[str, Any] = {
        "catchup_lost_0": c.get("records_lost") == 0, "catchup_duplicates_0": c.get("duplicates") == 0,
        "writers_4_vs_1_ge_2.5": None if ratio is None else ratio >= 2.5,
    }
    if f is not None:
        out["faults_lost_0"] = f.get("records_lost") == 0
        out["faults_duplicates_0"] = f.get("duplicates") == 0
    if ratio is not None and ratio < 2.5:
        four = w.get("4") or {}
        cores, wait = four.get("cpu_cores_writers_and_servers"), four.get("writer_runqueue_wait_share")
        load, cpus = four.get("loadavg_1m"), r["machine"]["cpus"]
        why = (f"CPU-starved: each writer process waited for a core {wait:.0%} of the window (load {load} on "
               f"{cpus} cores), so 4 processes cannot get 4x the CPU of one"
               if wait is not None and wait >= 0.2 else
               f"CPU-bound: the writers and servers used {cores} of {cpus} cores"
               if cores is not None and cores >= 0.8 * (cpus or 1) else
               "neither CPU-bound nor starved: each writer stores its fetched batches one at a time (fsync of the "
               "file and of the SQLite index, then a synchronous ack), so it waits on the disk and the round trip")
        out["writers_miss_reason"] = f"4 writers used {cores} CPU cores with the 3 root servers; {why}"
    out["misses"] = [k for k, v in out.items() if v is False]
    return out
