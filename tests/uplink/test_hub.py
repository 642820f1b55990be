"""The hub process: bad uploads are refused naming the field, and it keeps serving; findings queue."""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest

from samantha.core.signing import sha256_hex
from samantha.harness.hub_process import spawn_hub
from samantha.uplink.outbox import to_parquet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]
EPOCH = "0123456789ab"


def _put(hub, batch_id, body, seq="1", kind="findings", sha=None, first_ts="1800000000.0"):
    headers = {"X-Samantha-Seq": seq, "X-Samantha-Kind": kind, "X-Samantha-First-Ts": first_ts,
               "X-Samantha-Sha256": sha or sha256_hex(body)}
    return httpx.put(f"{hub}/v1/cubes/c1/batches/{batch_id}", content=body, headers=headers, timeout=10)


def test_bad_uploads_are_refused_with_the_field_and_good_ones_still_land(tmp_path):
    doc = '{"id": "f1", "text": "fallback did not engage"}'
    good = to_parquet(pa.table({"ts": [1_800_000_000.0], "record_key": ["findings:f1"], "doc": [doc]}))
    with spawn_hub(tmp_path / "hub") as hub:
        h = hub.value
        cases = [
            (_put(h, f"{EPOCH}-0000000001", good, sha="0" * 64), "body", "sha256 mismatch"),
            (_put(h, "not-an-id", good), "batch_id", "epoch"),
            (_put(h, f"{EPOCH}-0000000001", good, seq="2"), "X-Samantha-Seq", "does not match"),
            (_put(h, f"{EPOCH}-0000000001", good, seq="x"), "X-Samantha-Seq", "integer"),
            (_put(h, f"{EPOCH}-0000000001", good, kind="Bad Kind"), "X-Samantha-Kind", "must match"),
            (_put(h, f"{EPOCH}-0000000001", b"not parquet at all"), "body", "not a Parquet file"),
        ]
        for r, field, reason in cases:
            assert r.status_code == 400, r.text
            err = r.json()["error"]
            assert err["field"] == field and reason in err["reason"], err
        r = httpx.put(f"{h}/v1/policy", content=b"{nope", timeout=10)
        assert r.status_code == 400 and r.json()["error"]["field"] == "body"
        r = httpx.put(f"{h}/v1/policy", json={"version": 3}, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["field"] == "signature"
        assert httpx.get(f"{h}/v1/policy", timeout=10).status_code == 404
        # the hub is still up: the good batch lands, once
        r1, r2 = _put(h, f"{EPOCH}-0000000001", good), _put(h, f"{EPOCH}-0000000001", good)
        assert r1.json() == {"status": "stored", "seq": 1, "records": 1, "watermark": 1}
        assert r2.json()["status"] == "duplicate"
        wm = httpx.get(f"{h}/v1/cubes/c1/watermark", params={"epoch": EPOCH}, timeout=10).json()
        assert wm["watermark"] == 1
        # an edge finding queues at the hub; it is never applied fleet-wide by itself
        q = httpx.get(f"{h}/v1/fleet/queue/findings", timeout=10).json()["items"]
        assert [(i["cube"], i["status"], i["doc"]["text"]) for i in q] == [("c1", "queued", "fallback did not engage")]
        r = httpx.get(f"{h}/v1/fleet/queue/incidents", timeout=10)
        assert r.status_code == 400 and r.json()["error"]["field"] == "kind"
    assert (tmp_path / "hub" / "reported" / "findings" / "cube=c1" / "day=2027-01-15" /
            f"{EPOCH}-0000000001.parquet").exists()


def test_fleet_stats_while_the_first_batch_of_a_kind_is_being_written(tmp_path):
    """The kind's directory holds only the writer's temporary file: stats answer, without that kind."""
    from samantha.hub.storage import HubStorage

    part = tmp_path / "reported" / "findings" / "cube=c1" / "day=2027-01-15"
    part.mkdir(parents=True)
    (part / f".{EPOCH}-0000000001.parquet.1.2.tmp").write_bytes(b"PAR1 half written")
    hs = HubStorage(tmp_path)
    try:
        assert hs.kinds() == [] and hs.fleet_stats()["kinds"] == {}
    finally:
        hs.close()
