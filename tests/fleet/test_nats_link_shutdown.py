"""The Cube's NatsLink leaves nothing to the garbage collector when it closes: no "coroutine ... was never
awaited" RuntimeWarning and no "Task was destroyed but it is pending" (asyncio's error log), whether it closes
after a round against a real nats-server, with a round still connecting to a broker that never answers, or in
the middle of publishing; a batch cut off by the close is resent once by the next link (nothing lost)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from samantha.core import fleet
from samantha.core.ports import free_port
from samantha.harness.nats_process import single
from samantha.hub.streams import ensure_streams
from tests.fleet.kit import findings_link

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def assert_nothing_left(caplog: pytest.LogCaptureFixture, fn: Callable[[], None]) -> None:
    """`fn` run with every RuntimeWarning recorded and asyncio's log captured, then a full collection (a pending
    task or an unawaited coroutine is reported when it is collected)."""
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        fn()
        gc.collect()
    runtime = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
    assert runtime == [], runtime
    asyncio_errors = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert asyncio_errors == [], asyncio_errors


async def _js(url: str, fn):  # noqa: ANN001, ANN202
    import nats

    nc = await nats.connect(url)
    try:
        return await fn(nc.jetstream(domain=fleet.DOMAIN))
    finally:
        await nc.close()


@contextlib.contextmanager
def silent_broker() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) and never says a word: a connect hangs."""
    s = socket.socket()
    s.bind(("127.0.0.1", free_port()))
    s.listen(16)
    try:
        yield f"nats://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def test_connect_publish_close_against_a_real_server_leaves_nothing(tmp_path, caplog):
    with single(tmp_path / "nats") as srv:
        asyncio.run(_js(srv.url, ensure_streams))

        def run() -> None:
            link, ob, conn = findings_link(tmp_path, srv.url, "cube-c", 20, pad=100)
            try:
                s = link.run(10.0)["sync"]
                assert s["ok"] and s["sent"] == 20 and s["remaining"] == 0, s
                s = link.run(5.0)["sync"]  # a second round on the same connection
                assert s["ok"] and s["remaining"] == 0, s
            finally:
                link.close()
                conn.close()
            assert link.loop.is_closed()
            assert link.kick(1.0)["sync"]["error"] == "the uplink is closed"  # nothing scheduled on a closed loop
            link.close()  # twice is harmless

        assert_nothing_left(caplog, run)


def test_close_with_a_round_still_connecting_leaves_nothing(tmp_path, caplog):
    with silent_broker() as url:
        def run() -> None:
            link, ob, conn = findings_link(tmp_path, url, "cube-s", 3, pad=0, timeout_s=3.0)
            try:
                assert link.kick(5.0) == {}  # the round starts, its connect hangs
                time.sleep(0.3)
                assert link._round is not None and not link._round.done()
                t0 = time.monotonic()
                link.close()
                assert time.monotonic() - t0 < 3.0, "close waited for the connect timeout"
                assert ob.stats()["pending_batches"] == 3  # nothing left the outbox
            finally:
                link.close()
                conn.close()

        assert_nothing_left(caplog, run)


def test_close_mid_publish_leaves_nothing_and_the_next_link_resends_once(tmp_path, caplog):
    n = 400
    with single(tmp_path / "nats") as srv:
        asyncio.run(_js(srv.url, ensure_streams))
        link, ob, conn = findings_link(tmp_path, srv.url, "cube-p", n, pad=2000)
        try:
            def run() -> None:
                link.kick(60.0)
                deadline = time.monotonic() + 30
                while ob.stats()["pending_batches"] == n and time.monotonic() < deadline:
                    time.sleep(0.01)  # the first PubAcks are in: the round is publishing
                link.close()

            assert_nothing_left(caplog, run)
            left = ob.stats()["pending_batches"]
            assert 0 < left < n, left  # closed mid-publish

            from samantha.uplink.nats_link import NatsLink

            again = NatsLink(ob, [srv.url], "cube-p", link.clock, region="eu", channel="fleet",
                             on_policy=link.on_policy, on_operator_doc=link.on_operator_doc, timeout_s=3.0)
            try:
                s = again.run(30.0)["sync"]
                assert s["ok"] and s["remaining"] == 0, s
            finally:
                again.close()
        finally:
            conn.close()
        info = asyncio.run(_js(srv.url, lambda js: js.stream_info(fleet.STREAM_UP)))
        assert info.state.messages == n  # every batch once: a resent batch id is dropped by the stream's dedup
