"""SAMANTHA_UP as a work queue, against a real nats-server (the pip package) and the real writer process.

- Full: the stream refuses a publish once its bound is reached; the Cube's PubAck fails, so the batch stays in
  its outbox (the watermark does not move); once a writer drains the stream (acked messages leave a work
  queue), the Cube's next rounds deliver the rest, and every batch lands in Parquet exactly once.
- Legacy: a SAMANTHA_UP made with limits retention (JetStream cannot change retention in place) is sealed,
  drained into Parquet and replaced by the work queue when the hub starts; nothing PubAcked is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from samantha.core import fleet
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.nats_process import single
from samantha.hub.streams import ensure_streams
from tests.fleet.kit import add_finding, findings_link
from tests.uplink.kit import cli, hub_view

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

async def _js(url: str, fn):  # noqa: ANN001 - one call on a short-lived connection
    import nats

    nc = await nats.connect(url)
    try:
        return await fn(nc.jetstream(domain=fleet.DOMAIN))
    finally:
        await nc.close()


def _up_info(url: str):  # noqa: ANN202
    return asyncio.run(_js(url, lambda js: js.stream_info(fleet.STREAM_UP)))


def _until(cond, seconds: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if v := cond():
            return v
        time.sleep(0.3)
    raise AssertionError(what)


def _findings(root: Path) -> list[str]:
    return hub_view(root)["keys"].get("findings", []) if (root / "hub.sqlite").exists() else []


def test_a_full_up_stream_refuses_the_cube_keeps_its_batches_and_they_land_once_after_the_writer_drains(tmp_path):
    bound_mb = 0.02  # ~20 KB: a handful of the Cube's 12 batches
    with single(tmp_path / "nats") as srv:
        asyncio.run(_js(srv.url, lambda js: ensure_streams(js, up_max_bytes=int(bound_mb * 1024**2))))
        link, ob, conn = findings_link(tmp_path, srv.url, "cube-f", 12)
        try:
            first = link.run(10.0)["sync"]
            assert not first["ok"] and "maximum bytes exceeded" in first["error"], first  # refused: full
            stored = int(_up_info(srv.url).state.messages)
            assert 0 < stored < 12 and first["sent"] == stored, (first, stored)
            assert first["remaining"] == ob.stats()["pending_batches"] == 12 - stored  # the rest stays in the outbox

            again = link.run(5.0)["sync"]  # still full, nothing written: nothing more leaves the outbox
            assert not again["ok"] and "maximum bytes exceeded" in again["error"], again
            assert again["remaining"] == 12 - stored, again
            assert int(_up_info(srv.url).state.messages) == stored

            hub_root = tmp_path / "hub"
            with spawn_nats_hub(hub_root, [srv.url], up_max_mb=bound_mb):
                def delivered() -> bool:
                    s = link.run(10.0)["sync"]
                    return s["ok"] and s["remaining"] == 0
                _until(delivered, 90, "the Cube's outbox never emptied after the writer started")
                keys = _until(lambda: (k := _findings(hub_root)) and len(k) >= 12 and k, 60, "not all written")
                time.sleep(1.0)  # a late duplicate would land now
                keys = _findings(hub_root)
                assert sorted(keys) == sorted(f"findings:f{i}" for i in range(12)), keys  # each exactly once
                assert hub_view(hub_root)["stats"]["duplicates"] == 0
                _until(lambda: _up_info(srv.url).state.messages == 0, 30, "acked batches stayed in the stream")
        finally:
            link.close()
            conn.close()


async def _legacy_stream(js) -> None:  # noqa: ANN001
    """SAMANTHA_UP and its consumer as the hub declared them before the work queue (limits retention)."""
    from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, StorageType, StreamConfig

    await js.add_stream(StreamConfig(name=fleet.STREAM_UP, subjects=["samantha.up.>"], max_age=7 * 86400.0,
                                     max_bytes=1024**3, discard=DiscardPolicy.NEW, duplicate_window=120.0,
                                     storage=StorageType.FILE))
    await js.add_consumer(fleet.STREAM_UP, ConsumerConfig(durable_name=fleet.WRITER_DURABLE,
                                                          ack_policy=AckPolicy.EXPLICIT, filter_subject="samantha.up.>"))


def test_a_limits_retention_up_stream_is_sealed_drained_and_replaced_by_a_work_queue(tmp_path):
    from nats.js.api import RetentionPolicy

    with single(tmp_path / "nats") as srv:
        asyncio.run(_js(srv.url, _legacy_stream))
        link, ob, conn = findings_link(tmp_path, srv.url, "cube-m", 3, pad=0)
        try:
            s = link.run(10.0)["sync"]
            assert s["ok"] and s["sent"] == 3 and s["remaining"] == 0, s  # PubAcked: gone from the outbox
            assert _up_info(srv.url).config.retention == RetentionPolicy.LIMITS

            hub_root = tmp_path / "hub"
            with spawn_nats_hub(hub_root, [srv.url], up_max_mb=64):
                info = _up_info(srv.url)
                assert info.config.retention == RetentionPolicy.WORK_QUEUE and not info.config.sealed
                assert info.config.max_bytes == 64 * 1024**2 and not info.config.max_age
                assert sorted(_findings(hub_root)) == [f"findings:f{i}" for i in range(3)]  # drained before ready

                for i in range(3, 5):  # the Cube's next batches go to the work queue
                    add_finding(ob, i)
                s = link.run(10.0)["sync"]
                assert s["ok"] and s["sent"] == 2, s
                _until(lambda: len(_findings(hub_root)) >= 5, 30, "new batches not written")
                assert sorted(_findings(hub_root)) == [f"findings:f{i}" for i in range(5)]
                assert hub_view(hub_root)["stats"]["duplicates"] == 0
        finally:
            link.close()
            conn.close()


def test_hub_serve_refuses_an_unbounded_up_stream():
    r = cli(["hub", "serve", "--up-max-mb", "0"])
    assert r.returncode == 2 and "--up-max-mb" in r.stderr, r.stderr + r.stdout


def test_a_bound_the_servers_cannot_reserve_is_a_clear_error(tmp_path):
    from samantha.harness.proxy_process import SpawnError

    with single(tmp_path / "nats") as srv, pytest.raises(SpawnError) as e:  # the server has 2 GB of file storage
        spawn_nats_hub(tmp_path / "hub", [srv.url], up_max_mb=4096, timeout=30)
    assert "rc=1" in str(e.value) and "--up-max-mb 4096" in str(e.value) and "max_file_store" in str(e.value), e.value


def test_a_migration_that_does_not_drain_stays_sealed_the_cube_keeps_its_batch_and_the_next_start_finishes(tmp_path):
    from nats.js.api import RetentionPolicy

    from samantha.hub.storage import HubStorage
    from samantha.hub.up_migration import UpMigrationError, migrate_up_stream

    with single(tmp_path / "nats") as srv:
        asyncio.run(_js(srv.url, _legacy_stream))
        link, ob, conn = findings_link(tmp_path, srv.url, "cube-d", 2, pad=0)
        try:
            assert link.run(10.0)["sync"]["sent"] == 2
            hub_root = tmp_path / "hub"

            async def no_writer() -> None:  # no writer: it cannot drain within the bound
                import nats

                nc = await nats.connect(srv.url)
                storage = HubStorage(hub_root)
                try:
                    await migrate_up_stream(nc.jetstream(domain=fleet.DOMAIN), nc, storage, writers=0, timeout_s=0.5)
                finally:
                    storage.close()
                    await nc.close()

            with pytest.raises(UpMigrationError, match="2 batches still unwritten .* stays sealed"):
                asyncio.run(no_writer())
            info = _up_info(srv.url)
            assert info.config.sealed and info.config.retention == RetentionPolicy.LIMITS and info.state.messages == 2

            add_finding(ob, 2)
            s = link.run(5.0)["sync"]  # sealed: refused, and the batch stays in the outbox
            assert not s["ok"] and "sealed" in s["error"] and s["remaining"] == 1, s

            with spawn_nats_hub(hub_root, [srv.url]):  # the next start drains on and replaces it
                assert _up_info(srv.url).config.retention == RetentionPolicy.WORK_QUEUE
                s = link.run(10.0)["sync"]
                assert s["ok"] and s["remaining"] == 0, s
                _until(lambda: len(_findings(hub_root)) >= 3, 30, "not all written")
                assert sorted(_findings(hub_root)) == [f"findings:f{i}" for i in range(3)]
        finally:
            link.close()
            conn.close()
