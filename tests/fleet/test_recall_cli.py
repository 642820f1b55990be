"""`samantha hub recall` / `recall-status` as a real CLI over real Parquet written by the hub's storage: three
known Cubes (one applied, one blocked, one never reached), and the bad inputs with exit code 2 (1: hub down)."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from samantha.core.ports import free_port
from samantha.core.signing import KeyPair, sha256_hex
from samantha.hub.storage import HubStorage
from tests.uplink.kit import cli

BUNDLE = "ab" * 32


def _batch(hs: HubStorage, cube: str, seq: int, kind: str, docs: list[dict]) -> None:
    tbl = pa.Table.from_pylist([{"ts": d["ts"], "record_key": f"{kind}:{d['id']}", "doc": json.dumps(d)}
                                for d in docs])
    buf = io.BytesIO()
    pq.write_table(tbl, buf)
    body = buf.getvalue()
    hs.put_batch(cube, f"{'0' * 11}{seq % 10}-{seq:010d}", seq=seq, kind=kind, first_ts=docs[0]["ts"],
                 sha256=sha256_hex(body), body=body, now=docs[0]["ts"])


def test_recall_status_reads_who_applied_who_waits_and_who_was_not_reached(tmp_path):
    hs = HubStorage(tmp_path / "hub")
    try:
        t = 1_800_000_000.0
        _batch(hs, "cube-a", 1, "recalls", [
            {"id": "a1", "ts": t, "cube": "cube-a", "bundle_id": BUNDLE, "status": "blocked", "reason": "no lkg"},
            {"id": "a2", "ts": t + 9, "cube": "cube-a", "bundle_id": BUNDLE, "status": "applied", "was_active": True,
             "actions": [{"kind": "flip"}, {"kind": "quarantine"}]}])
        _batch(hs, "cube-b", 2, "recalls", [
            {"id": "b1", "ts": t + 3, "cube": "cube-b", "bundle_id": BUNDLE, "status": "blocked",
             "reason": "the standby slot holds no bundle"},
            {"id": "b2", "ts": t + 4, "cube": "cube-b", "bundle_id": "cd" * 32, "status": "applied"}])
        _batch(hs, "cube-c", 3, "audit", [{"id": "c1", "ts": t}])
    finally:
        hs.close()
    r = cli(["hub", "recall-status", BUNDLE, "--data-dir", str(tmp_path / "hub"), "--json"])
    assert r.returncode == 0, r.stderr + r.stdout
    s = json.loads(r.stdout)
    assert s["applied"] == [{"cube": "cube-a", "applied_at": t + 9, "was_active": True,
                             "actions": ["flip", "quarantine"]}]
    assert s["pending"] == [{"cube": "cube-b", "status": "blocked", "reason": "the standby slot holds no bundle",
                             "at": t + 3}]
    assert [n["cube"] for n in s["not_reached"]] == ["cube-c"]
    assert s["counts"] == {"known": 3, "applied": 1, "pending": 1, "not_reached": 1}
    text = cli(["hub", "recall-status", BUNDLE, "--data-dir", str(tmp_path / "hub")])
    assert text.returncode == 0 and "1/3 Cubes applied" in text.stdout, text.stdout


def test_bad_input_is_exit_2_and_a_dead_hub_exit_1(tmp_path):
    KeyPair.generate().save(key := tmp_path / "hub.key")
    r = cli(["hub", "recall-status", BUNDLE, "--data-dir", str(tmp_path / "nowhere")])
    assert r.returncode == 2 and "--data-dir" in r.stdout + r.stderr
    r = cli(["hub", "recall", "v2", "--key", str(key), "--reason", "x"])
    assert r.returncode == 2 and "bundle_id" in r.stdout + r.stderr
    r = cli(["hub", "recall", BUNDLE, "--key", str(key), "--reason", "x", "--hub", "http://127.0.0.1:1"])
    assert r.returncode == 2 and "NATS" in r.stdout + r.stderr
    r = cli(["hub", "recall", BUNDLE, "--key", str(tmp_path / "missing.key"), "--reason", "x"])
    assert r.returncode == 2 and "cannot read key" in r.stdout + r.stderr
    r = cli(["hub", "recall", BUNDLE, "--key", str(key), "--reason", "x", "--hub", f"nats://127.0.0.1:{free_port()}"])
    assert r.returncode == 1 and "hub unreachable" in r.stdout + r.stderr
