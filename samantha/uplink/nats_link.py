"""The uplink over NATS JetStream: outbox batches up, the policy module and operator documents down.

The broker is the link, never the store of record (nats-server #4109, #7530: a leaf link that drops
can lose messages): a batch leaves the outbox only when the stream's PubAck says it is stored, so a
lost message is resent under the same batch id, and the hub's writer drops a batch id it holds.

    up:   samantha.up.<region>.<cube>.<kind>, header Nats-Msg-Id = batch id (the stream's dedup window),
          Samantha-Sha256 etc.; up to `window` publishes in flight, each acked on its own PubAck
    down: last message on samantha.policy.<channel> (and samantha.policy._tuf, the fleet's TUF metadata, on a Cube
          with a pinned root); samantha.down.<cube>.decision after a cursor;
          every Recall on samantha.recall.> (one per bundle: a Cube applies each once, so each round reads all)

All network work runs on one background thread with its own event loop. `kick()` starts a round and
returns at once, so a broker that is down (the normal state for a Cube) never slows the daemon's tick:
every connect, request and publish has a timeout, and a round has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from samantha.core import fleet
from samantha.core.clock import Clock
from samantha.core.signing import sha256_hex
from samantha.uplink.outbox import Outbox
from samantha.uplink.uploader import SyncResult

log = logging.getLogger(__name__)

DocFn = Callable[[Any], Any]  # a decoded document from the hub -> the service's verdict
PolicyFn = Callable[[Any, Any], Any]  # (the module, the fleet's TUF metadata set or None) -> the verdict


def _closed_result() -> dict[str, Any]:
    return {"sync": SyncResult(ok=False, error="the uplink is closed").as_dict()}


async def _quiet(e: Exception) -> None:
    log.debug("nats: %s", e)  # the round's result says it once; the client's own log would say it per try


class NatsLink:
    def __init__(self, outbox: Outbox, servers: list[str], cube_id: str, clock: Clock, *, region: str,
                 channel: str, on_policy: PolicyFn, on_operator_doc: DocFn, on_recall: DocFn | None = None,
                 timeout_s: float = 5.0, tuf: bool = False,
                 window: int = 32, domain: str | None = fleet.DOMAIN) -> None:
        self.outbox, self.clock, self.servers = outbox, clock, servers
        self.cube_id = fleet.token(cube_id, "uplink.cube_id")
        self.region = fleet.token(region, "uplink.region")
        self.channel = fleet.token(channel, "uplink.channel")
        self.on_policy, self.on_operator_doc, self.on_recall = on_policy, on_operator_doc, on_recall
        self.timeout_s, self.window, self.domain = timeout_s, window, domain
        self.tuf = tuf  # the Cube pins a TUF root: read the metadata set beside the module
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="uplink-nats", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._suspect = False
        self._round: Future[dict[str, Any]] | None = None
        self._closed = False
        self._task: asyncio.Task[Any] | None = None  # the round running on the loop, if any
        self.last: dict[str, Any] = {}

    # ---------------- the daemon's side: never blocks ----------------

    def kick(self, max_seconds: float) -> dict[str, Any]:
        """Start a round unless one runs; return the last finished round's result (or that one runs)."""
        if self._closed:
            return _closed_result()
        if self._round is not None and not self._round.done():
            return {"running": True, **self.last}
        if self._round is not None:
            self._collect(self._round)
        self._round = asyncio.run_coroutine_threadsafe(self._exchange(max_seconds), self.loop)
        return dict(self.last)

    def run(self, max_seconds: float | None) -> dict[str, Any]:
        """One round now, waited for (the CLI's `uplink sync`), bounded by max_seconds + a connect."""
        if self._closed:
            return _closed_result()
        if self._round is not None and not self._round.done():
            with contextlib.suppress(Exception):  # its outcome is in self.last
                self._round.result(timeout=(max_seconds or 30.0) + self.timeout_s)
        fut = asyncio.run_coroutine_threadsafe(self._exchange(max_seconds or 3600.0), self.loop)
        self._round = fut
        try:
            fut.result(timeout=(max_seconds or 3600.0) + 2 * self.timeout_s + 5)
        except Exception as e:  # noqa: BLE001
            fut.cancel()
            self.last = {"sync": SyncResult(ok=False, error=f"{type(e).__name__}: {e}"[:300]).as_dict()}
        else:
            self._collect(fut)
        return dict(self.last)

    def _collect(self, fut: Future[dict[str, Any]]) -> None:
        try:
            self.last = fut.result(timeout=0)
        except Exception as e:  # noqa: BLE001 - a round never raises into the daemon
            self.last = {"sync": SyncResult(ok=False, error=f"{type(e).__name__}: {e}"[:300]).as_dict()}

    def close(self) -> None:
        """Cancel a round in flight, close the connection, then stop and close the loop. Every task on the loop
        is finished before it stops: a loop stopped with tasks pending (a round still connecting, the client's
        read and ping loops) leaves "Task was destroyed but it is pending" to the garbage collector."""
        if self._closed:
            return
        self._closed = True

        async def _shutdown() -> None:
            me, task = asyncio.current_task(), self._task
            if task is not None and not task.done():  # the round first: no publish on a connection being closed
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if self._nc is not None and not self._nc.is_closed:
                with contextlib.suppress(Exception):  # closing a dead link
                    await asyncio.wait_for(self._nc.close(), self.timeout_s)
            rest = [t for t in asyncio.all_tasks() if t is not me]  # what the client's close left behind
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):  # bounded: a wedged loop is left to the daemon thread's exit
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(timeout=2 * self.timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=self.timeout_s)
        if not self._thread.is_alive():
            self.loop.close()  # its selector and self-pipe (200 links in the fleet bench: 600 fds)

    # ---------------- the round (on the link's thread) ----------------

    async def _connection(self) -> Any:
        import nats

        if self._nc is not None and self._nc.is_connected and not self._suspect:
            return self._nc
        self._suspect = False
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        # no reconnect inside the client: a dead link fails the round, the next kick connects again
        self._nc = await nats.connect(servers=self.servers, connect_timeout=self.timeout_s, allow_reconnect=False,
                                      max_reconnect_attempts=1, reconnect_time_wait=0.2, name=f"samantha-cube-{self.cube_id}", max_outstanding_pings=2,
                                      ping_interval=10, error_cb=_quiet)
        return self._nc

    async def _exchange(self, max_seconds: float) -> dict[str, Any]:
        self._task = asyncio.current_task()
        t0 = time.monotonic()
        out: dict[str, Any] = {}
        res = SyncResult(ok=False)
        try:
            nc = await asyncio.wait_for(self._connection(), self.timeout_s * 2)
            js = nc.jetstream(domain=self.domain, timeout=self.timeout_s)
            try:
                out["policy"] = await self._pull_policy(js)
                out["decisions"] = await self._pull_decisions(js)
                if self.on_recall is not None:
                    out["recalls"] = await self._pull_recalls(js)
            except Exception as e:  # noqa: BLE001 - a pull failing does not stop the upload
                out["pull_error"] = f"{type(e).__name__}: {e}"[:300]
                self._suspect = True  # a connection that timed out a pull may be half-dead: the next round redials
            await asyncio.wait_for(self._publish(js, res, t0 + max_seconds), max_seconds + self.timeout_s)
        except Exception as e:  # noqa: BLE001 - every failure is this round's result, retried next kick
            res.error = f"{type(e).__name__}: {e}"[:500]
            await asyncio.to_thread(self._mark, False, res.error)
        else:
            res.ok = res.error is None
            await asyncio.to_thread(self._mark, res.ok, res.error or "")
        res.remaining = (await asyncio.to_thread(self.outbox.stats))["pending_batches"]
        res.seconds = round(time.monotonic() - t0, 3)
        out["sync"] = res.as_dict()
        return out

    def _mark(self, ok: bool, error: str) -> None:
        now = self.clock.time()
        state: dict[str, Any] = {"uplink:last_attempt_at": now, "uplink:last_error": error[:500]}
        if ok:
            state.update({"uplink:failures": 0, "uplink:last_sync_ok_at": now})
        else:
            state["uplink:failures"] = int(float(self.outbox.get_state("uplink:failures") or 0)) + 1
        self.outbox.set_state(**state)

    async def _pull_policy(self, js: Any) -> dict[str, Any]:
        from nats.js.errors import NotFoundError

        try:
            msg = await js.get_last_msg(fleet.STREAM_POLICY, fleet.policy_subject(self.channel))
        except NotFoundError:
            return {"status": "none_published", "channel": self.channel}
        try:
            doc = json.loads(msg.data)
        except ValueError:
            doc = None  # refused by the policy store with its reason, like any malformed module
        metadata = None
        if self.tuf:
            try:
                metadata = json.loads((await js.get_last_msg(fleet.STREAM_POLICY, fleet.TUF_SUBJECT)).data)
            except NotFoundError:
                metadata = None  # none published: the service refuses the module (module-tuf)
            except ValueError:
                metadata = {}  # not JSON: refused, naming the field
        offer = await asyncio.to_thread(self.on_policy, doc, metadata)
        return {**offer.as_dict(), "channel": self.channel}

    async def _pull_decisions(self, js: Any, limit: int = 100) -> dict[str, Any]:
        from nats.js.errors import NotFoundError

        after = int(float(await asyncio.to_thread(self.outbox.get_state, "uplink:nats_decisions_after") or 0))
        received = accepted = 0
        for _ in range(limit):
            try:
                msg = await js.get_msg(fleet.STREAM_DOWN, seq=after + 1, subject=fleet.decision_subject(self.cube_id),
                                       next=True)
            except NotFoundError:
                break
            try:
                doc = json.loads(msg.data)
            except ValueError:
                doc = None
            checked = await asyncio.to_thread(self.on_operator_doc, doc)
            received, accepted = received + 1, accepted + int(bool(checked.ok))
            after = int(msg.seq)
            await asyncio.to_thread(self.outbox.set_state, **{"uplink:nats_decisions_after": after})
        return {"received": received, "accepted": accepted}

    async def _pull_recalls(self, js: Any, limit: int = 1000) -> dict[str, Any]:
        """Every Recall in the stream, oldest first: applied ones answer at once (idempotent), and one that was
        blocked (no last-known-good bundle to flip to yet) is tried again."""
        from nats.js.errors import NotFoundError

        seq, statuses = 0, []
        for _ in range(limit):
            try:
                msg = await js.get_msg(fleet.STREAM_RECALL, seq=seq + 1, subject=fleet.RECALL_SUBJECTS, next=True)
            except NotFoundError:
                break
            try:
                doc = json.loads(msg.data)
            except ValueError:
                doc = None  # refused with its reason, like any malformed recall
            statuses.append((await asyncio.to_thread(self.on_recall, doc))["status"])  # type: ignore[misc]
            seq = int(msg.seq)
        return {s: statuses.count(s) for s in sorted(set(statuses))}

    async def _publish(self, js: Any, res: SyncResult, deadline: float) -> None:
        """Pending batches oldest first, `window` in flight; each leaves the outbox on its own PubAck."""
        offered: set[int] = set()
        while time.monotonic() < deadline:
            pending = [b for b in await asyncio.to_thread(self.outbox.pending, self.window * 2)
                       if b["seq"] not in offered][: self.window]
            if not pending:
                return
            sends = []
            for b in pending:
                body = await asyncio.to_thread(self.outbox.offer, b["seq"])  # frozen before it goes on the wire
                offered.add(b["seq"])
                headers = fleet.batch_headers(batch_id=b["batch_id"], seq=b["seq"], kind=b["kind"],
                                              first_ts=b["first_ts"], records=b["records"], sha256=sha256_hex(body),
                                              cube=self.cube_id)
                sends.append((b, body, fleet.up_subject(self.region, self.cube_id, b["kind"]), headers))
            # the publish coroutines are made here, not above: a round cancelled while offering must not leave
            # some made and never awaited
            acks = await asyncio.gather(*(js.publish(subject, body, headers=headers, timeout=self.timeout_s)
                                          for _, body, subject, headers in sends), return_exceptions=True)
            done, first_error = [], None
            for (b, body, _, _), ack in zip(sends, acks, strict=True):
                if isinstance(ack, BaseException):
                    first_error = first_error or f"batch {b['batch_id']}: {type(ack).__name__}: {ack}"
                    continue
                done.append(b["seq"])
                if getattr(ack, "duplicate", False):
                    res.duplicates += 1
                else:
                    res.sent += 1
                    res.bytes += len(body)
                    res.kinds[b["kind"]] = res.kinds.get(b["kind"], 0) + 1
            if done:
                await asyncio.to_thread(self.outbox.ack, None, done)
            if first_error:
                res.error = first_error[:500]
                return
