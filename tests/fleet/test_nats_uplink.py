"""Cube -> JetStream -> Parquet writer, all real processes (nats-server from the pip package).

The embedded hub (`samantha hub serve`'s default): outbox batches arrive once each in the Hive
layout; a batch re-sent long after the stream's dedup window is dropped by the writer; a poison
batch is parked with its reason and does not block the next one; a dead broker costs a tick nothing.
"""

from __future__ import annotations

import asyncio
import time

import pyarrow as pa
import pytest

from samantha.core import fleet
from samantha.core.ports import free_port
from samantha.harness.hub_process import spawn_nats_hub
from samantha.uplink.local import local_service
from samantha.uplink.outbox import to_parquet
from tests.uplink.kit import cube_config, cube_keys, hub_view, seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _sync_all(svc, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    out: dict = {}
    while time.monotonic() < deadline:
        out = svc.force_sync(max_seconds=20)["sync"]
        if out["ok"] and out["remaining"] == 0:
            return out
        time.sleep(0.2)
    raise AssertionError(out)


def _wait_written(root, kind: str, n: int, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = hub_view(root)
        if len(view["keys"].get(kind, [])) >= n:
            return view
        time.sleep(0.3)
    raise AssertionError(f"{kind}: fewer than {n} records written: {hub_view(root)['stats']}")


async def _publish_raw(url: str, subject: str, body: bytes, headers: dict) -> object:
    import nats

    nc = await nats.connect(url)
    try:
        return await nc.jetstream(domain=fleet.DOMAIN).publish(subject, body, headers=headers)
    finally:
        await nc.close()


async def _parked(url: str) -> list[dict]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    out = []
    try:
        js = nc.jetstream(domain=fleet.DOMAIN)
        seq = 0
        for _ in range(100):
            try:
                m = await js.get_msg(fleet.STREAM_PARKED, seq=seq + 1, subject="samantha.parked.>", next=True)
            except NotFoundError:
                break
            out.append(dict(m.headers or {}))
            seq = m.seq
    finally:
        await nc.close()
    return out


def test_outbox_over_jetstream_lands_once_in_parquet_and_poison_is_parked(tmp_path):
    with spawn_nats_hub(tmp_path / "hub") as hub:
        cfg = cube_config(tmp_path, hub.value, batch_span_s=600, cube_id="cube-n", region="eu")
        seed(cfg, hours=3)
        with local_service(cfg) as svc:
            svc.tick(sync=False)
            queued = {k: v["records"] for k, v in svc.outbox.stats()["pending_by_kind"].items()}
            first = svc.outbox.pending(limit=1)[0]
            body = svc.outbox.offer(first["seq"])  # keep one batch's bytes to re-send "days later"
            out = _sync_all(svc)
            assert out["sent"] >= 1 and svc.status()["outbox"]["pending_batches"] == 0
        view = _wait_written(tmp_path / "hub", "audit", queued["audit"])
        for kind in queued:
            _wait_written(tmp_path / "hub", kind, queued[kind])
        assert set(hub_view(tmp_path / "hub")["keys"]["audit"]) == cube_keys(cfg, "audit")
        files = list((tmp_path / "hub" / "reported" / "audit" / "cube=cube-n").glob("day=*/*.parquet"))
        assert files, "Hive layout kind/cube=/day="

        # the same batch again, under a new message id (past the stream's dedup window): the writer drops it
        from samantha.core.signing import sha256_hex
        headers = {"Nats-Msg-Id": "resent-days-later", fleet.H_BATCH: first["batch_id"], fleet.H_SEQ: str(first["seq"]),
                   fleet.H_KIND: first["kind"], fleet.H_FIRST_TS: repr(first["first_ts"]),
                   fleet.H_SHA256: sha256_hex(body), fleet.H_CUBE: "cube-n"}
        ack = asyncio.run(_publish_raw(hub.value, fleet.up_subject("eu", "cube-n", first["kind"]), body, headers))
        assert not getattr(ack, "duplicate", False)  # the stream stored it again; only the writer can dedup
        # a poison batch (bad sha256), then a good one behind it
        asyncio.run(_publish_raw(hub.value, fleet.up_subject("eu", "cube-x", "findings"), b"garbage",
                                 {"Nats-Msg-Id": "0123456789ab-0000000001", fleet.H_SEQ: "1",
                                  fleet.H_KIND: "findings", fleet.H_FIRST_TS: "1800000000.0",
                                  fleet.H_SHA256: "0" * 64}))
        good = to_parquet(pa.table({"ts": [1_800_000_000.0], "record_key": ["findings:f1"], "doc": ['{"id": "f1"}']}))
        asyncio.run(_publish_raw(hub.value, fleet.up_subject("eu", "cube-x", "findings"), good,
                                 {"Nats-Msg-Id": "0123456789ab-0000000002", fleet.H_SEQ: "2",
                                  fleet.H_KIND: "findings", fleet.H_FIRST_TS: "1800000000.0",
                                  fleet.H_SHA256: sha256_hex(good)}))
        _wait_written(tmp_path / "hub", "findings", 1)
        parked = asyncio.run(_parked(hub.value))
        assert [p[fleet.H_REASON][:22] for p in parked] == ["body: sha256 mismatch "], parked
        view = hub_view(tmp_path / "hub")
        assert view["stats"]["duplicates"] == 0, view["stats"]  # the late resend did not land twice
        assert set(view["keys"]["audit"]) == cube_keys(cfg, "audit")


def test_a_dead_broker_costs_the_tick_nothing(tmp_path):
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = cube_config(tmp_path, dead, timeout_s=2.0)
    seed(cfg, hours=1)
    with local_service(cfg) as svc:
        svc.tick(sync=False)
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            svc.tick()
            times.append(time.monotonic() - t0)
        deadline, out = time.monotonic() + 20, {}
        while time.monotonic() < deadline and "sync" not in out.get("link", {}):
            time.sleep(0.5)
            out = svc.tick()
        assert out["link"]["sync"]["ok"] is False and "Error" in out["link"]["sync"]["error"]
        assert svc.status()["outbox"]["pending_batches"] > 0  # nothing acked without a PubAck
    assert max(times) < 1.0, times  # the link's timeout is 2 s: none of it was spent in a tick
