"""The decision log: real DuckDB files and JSONL files, tampered every way, and the CLI's verdicts."""

import copy
import json
import os
import subprocess
import sys

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from samantha.cli import app
from samantha.core.audit import (
    GENESIS,
    AuditLog,
    DuckDBAuditStore,
    JsonlAuditStore,
    record_hash,
    trusted_keys,
    verify,
    verify_store,
)
from samantha.core.clock import SimClock
from samantha.core.signing import KeyPair, sign_document

KEY = KeyPair.generate()
OTHER = KeyPair.generate()
TRUST = trusted_keys(KEY.public)


class ListStore:
    """In-memory store for the pure verification properties (the real stores are tested below)."""

    def __init__(self):
        self.records, self.head = [], None

    def append(self, record, head):
        self.records.append(copy.deepcopy(record))
        self.head = copy.deepcopy(head)

    def read(self):
        return copy.deepcopy(self.records), copy.deepcopy(self.head)

    def last(self):
        return self.records[-1] if self.records else None


def decision(i):
    return {"verdicts": [{"gate": "canary-errors", "result": "fail", "p": 0.001 * i}],
            "playbook": {"name": "bad-canary", "version": "3"},
            "action": {"kind": "quarantine", "target": f"v{i}"}, "result": "done"}


def fill(store, n, clock=None):
    log = AuditLog(store, KEY, clock or SimClock())
    return [log.append("decision", decision(i)) for i in range(n)]


def test_records_chain_and_sign():
    s = ListStore()
    recs = fill(s, 3)
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert recs[0]["prev_hash"] == GENESIS and recs[1]["prev_hash"] == recs[0]["hash"]
    assert recs[0]["signature"]["key_id"] == KEY.public.key_id
    assert s.head["seq"] == 3 and s.head["hash"] == recs[2]["hash"]
    assert verify_store(s, TRUST).ok


def test_timestamps_come_from_the_injected_clock():
    clock = SimClock(start=1_900_000_000.0)
    s = ListStore()
    log = AuditLog(s, KEY, clock)
    log.append("action", {"a": 1})
    clock.advance(5)
    log.append("action", {"a": 2})
    assert [r["ts"] for r in s.records] == [1_900_000_000.0, 1_900_000_005.0]


def test_bad_kind_and_unserialisable_payload_are_refused_and_nothing_is_written():
    s = ListStore()
    log = AuditLog(s, KEY, SimClock())
    with pytest.raises(ValueError):
        log.append("drop table;", {})
    with pytest.raises(ValueError):
        log.append("decision", {"x": float("nan")})
    assert s.records == []
    log.append("decision", {"ok": True})
    assert verify_store(s, TRUST).ok


def test_a_log_reopened_continues_its_chain(tmp_path):
    path = tmp_path / "audit.duckdb"
    conn = duckdb.connect(str(path))
    fill(DuckDBAuditStore(conn), 3)
    conn.close()
    conn = duckdb.connect(str(path))
    log = AuditLog(DuckDBAuditStore(conn), KEY, SimClock())
    assert log.append("approval", {"by": "op"})["seq"] == 4
    report = verify_store(DuckDBAuditStore(conn), TRUST)
    conn.close()
    assert report.ok and report.count == 4 and report.head_seq == 4


@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_verifying_while_the_daemon_appends_never_reports_a_removed_record(tmp_path, kind):
    """The last CI saw 'records 8..8 were removed' on an intact log: verify read the records, the
    daemon appended, then verify read the newer head. Readers now take the head first."""
    import threading

    if kind == "duckdb":
        conn = duckdb.connect(str(tmp_path / "audit.duckdb"))
        writer_store, reader_store = DuckDBAuditStore(conn.cursor()), DuckDBAuditStore(conn.cursor(), create=False)
    else:
        writer_store = reader_store = JsonlAuditStore(tmp_path / "audit.jsonl")
    log = AuditLog(writer_store, KEY, SimClock())
    log.append("decision", {"i": 0})
    done = threading.Event()

    def write():
        for i in range(1, 400):
            log.append("decision", {"i": i})
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    reports = []
    while not done.is_set() and len(reports) < 2000:
        reports.append(verify_store(reader_store, TRUST))
    writer.join(60)
    bad = [r for r in reports if not r.ok]
    assert reports and not bad, bad[:3]
    final = verify_store(reader_store, TRUST)
    assert final.ok and final.count == 400 and final.head_seq == 400


def bad_at(records, head=None, trust=TRUST):
    r = verify(records, trust, head, require_head=head is not None)
    assert not r.ok and r.reason
    return r.first_bad_seq, r.reason


def test_each_kind_of_tampering_names_the_first_bad_record():
    s = ListStore()
    fill(s, 6)
    recs, head = s.read()

    altered = copy.deepcopy(recs)
    altered[2]["payload"]["result"] = "failed"
    assert bad_at(altered, head) == (3, "record 3: hash does not match the content: the record was altered")

    rehashed = copy.deepcopy(recs)  # an attacker who recomputes the hash still cannot sign
    rehashed[2]["payload"]["result"] = "failed"
    rehashed[2]["hash"] = record_hash(rehashed[2])
    seq, why = bad_at(rehashed, head)
    assert seq == 3 and "bad signature" in why

    resigned = copy.deepcopy(recs)  # ... and re-signing with another key is not trusted
    body = {k: v for k, v in rehashed[2].items() if k != "signature"}
    resigned[2] = sign_document(body, OTHER)
    seq, why = bad_at(resigned, head)
    assert seq == 3 and "unknown signing key" in why

    hash_edit = copy.deepcopy(recs)
    hash_edit[1]["hash"] = "f" * 64
    assert bad_at(hash_edit, head)[0] == 2

    deleted = recs[:3] + recs[4:]
    seq, why = bad_at(deleted, head)
    assert seq == 4 and "found seq 5 where 4 belongs" in why

    swapped = copy.deepcopy(recs)
    swapped[1], swapped[4] = swapped[4], swapped[1]
    assert bad_at(swapped, head)[0] == 2

    first_gone = recs[1:]
    assert bad_at(first_gone, head)[0] == 1

    truncated = recs[:4]
    seq, why = bad_at(truncated, head)
    assert seq == 5 and "records 5..6 were removed" in why
    assert verify(truncated, TRUST).ok  # without the head, truncation is invisible: that is why the head exists

    r = verify(recs, TRUST, None, require_head=True)
    assert not r.ok and "no signed head" in r.reason

    forged_head = sign_document({"seq": 4, "hash": recs[3]["hash"], "ts": 0.0}, OTHER)
    assert "head has a bad signature" in bad_at(truncated, forged_head)[1]

    untrusted = bad_at(recs, head, trust=trusted_keys(OTHER.public))
    assert untrusted[0] == 1 and "unknown signing key" in untrusted[1]

    malformed = copy.deepcopy(recs)
    del malformed[0]["prev_hash"]
    assert bad_at(malformed, head) == (1, "record 1: malformed: missing field(s) prev_hash")


EDITS = ["payload", "ts", "kind", "hash", "prev_hash", "sig", "seq", "delete", "swap", "duplicate", "forge",
         "truncate", "extra_field"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=8) | st.booleans(),
                                max_size=4), min_size=1, max_size=8),
       st.sampled_from(EDITS), st.data())
def test_any_single_edit_of_any_log_is_detected(payloads, edit, data):
    s = ListStore()
    log = AuditLog(s, KEY, SimClock())
    for p in payloads:
        log.append("decision", p)
    recs, head = s.read()
    assert verify(recs, TRUST, head, require_head=True).ok
    n = len(recs)
    i = data.draw(st.integers(0, n - 1))
    r = recs[i]
    expect = i + 1
    if edit == "payload":
        r["payload"] = {**r["payload"], "tampered": True}
    elif edit == "ts":
        r["ts"] += data.draw(st.sampled_from([-1.0, 1e-6, 3600.0]))
    elif edit == "kind":
        r["kind"] = "approval"
    elif edit == "hash":
        r["hash"] = ("0" if r["hash"][0] != "0" else "1") + r["hash"][1:]
    elif edit == "prev_hash":
        r["prev_hash"] = "a" * 64
    elif edit == "sig":
        r["signature"] = {**r["signature"], "sig": sign_document({"x": 1}, KEY)["signature"]["sig"]}
    elif edit == "seq":
        r["seq"] += data.draw(st.sampled_from([-1, 1, 100]))
    elif edit == "delete":
        del recs[i]
    elif edit == "swap":
        if n < 2:
            return
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        recs[i], recs[j] = recs[j], recs[i]
        expect = min(i, j) + 1
    elif edit == "duplicate":
        recs.insert(i + 1, copy.deepcopy(r))
        expect = i + 2
    elif edit == "forge":
        fake = {"seq": n + 1, "ts": 0.0, "kind": "decision", "payload": {}, "prev_hash": recs[-1]["hash"]}
        fake["hash"] = record_hash(fake)
        recs.append(sign_document(fake, OTHER))
        expect = n + 1
    elif edit == "truncate":
        del recs[i:]
    elif edit == "extra_field":
        r["note"] = "harmless?"
    report = verify(recs, TRUST, head, require_head=True)
    assert not report.ok, (edit, i, n)
    assert report.first_bad_seq == expect, (edit, i, n, report)


# --- the real stores and the CLI ---------------------------------------------------------------

def keyfile(tmp_path, key=KEY):
    p = tmp_path / "cube.key"
    key.save(p)
    return tmp_path / "cube.key.pub"


def run_cli(*args):
    return CliRunner().invoke(app, ["audit", "verify", *args])


def test_cli_on_a_real_duckdb_file_intact_then_tampered(tmp_path):
    path = tmp_path / "telemetry.duckdb"
    conn = duckdb.connect(str(path))
    fill(DuckDBAuditStore(conn), 5)
    conn.close()
    pub = keyfile(tmp_path)

    ok = run_cli("--db", str(path), "--key", str(pub), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) | {"source": None} == {"source": None, "ok": True, "count": 5,
                                                         "first_bad_seq": None, "reason": None, "head_seq": 5}

    conn = duckdb.connect(str(path))
    conn.execute("""UPDATE audit SET payload = replace(payload, '"done"', '"skipped"') WHERE seq = 3""")
    conn.close()
    bad = run_cli("--db", str(path), "--key", str(pub), "--json")
    assert bad.exit_code == 1
    out = json.loads(bad.stdout)
    assert out["ok"] is False and out["first_bad_seq"] == 3 and "altered" in out["reason"]

    text = run_cli("--db", str(path), "--key", str(pub))
    assert text.exit_code == 1 and "record 3" in text.stdout


def test_cli_detects_a_deleted_row_and_a_truncated_tail_in_duckdb(tmp_path):
    pub = keyfile(tmp_path)
    for sql, seq in [("DELETE FROM audit WHERE seq = 2", 2), ("DELETE FROM audit WHERE seq >= 4", 4),
                     ("UPDATE audit SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 ELSE seq END", 2)]:
        path = tmp_path / f"t{seq}.duckdb"
        path.unlink(missing_ok=True)
        conn = duckdb.connect(str(path))
        fill(DuckDBAuditStore(conn), 5)
        conn.execute(sql)
        conn.close()
        res = run_cli("--db", str(path), "--key", str(pub), "--json")
        assert res.exit_code == 1, (sql, res.output)
        assert json.loads(res.stdout)["first_bad_seq"] == seq, sql


def test_cli_on_jsonl_and_the_default_key_from_config(tmp_path):
    state = tmp_path / "state"
    KEY.save(state / "keys" / "cube.key")
    cfg = tmp_path / "samantha.yaml"
    cfg.write_text(f"data_dir: {state}\n")
    log = tmp_path / "audit.jsonl"
    fill(JsonlAuditStore(log), 4)
    assert run_cli("-c", str(cfg), "--jsonl", str(log)).exit_code == 0

    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    res = run_cli("-c", str(cfg), "--jsonl", str(log), "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["first_bad_seq"] == 2

    log.write_text("\n".join(lines[:2] + ["{not json"] + lines[3:]) + "\n")
    res = run_cli("-c", str(cfg), "--jsonl", str(log), "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["first_bad_seq"] == 3
    assert "not a JSON object" in json.loads(res.stdout)["reason"]


def test_cli_bad_input_exits_2_with_a_reason(tmp_path):
    pub = keyfile(tmp_path)
    res = run_cli("--db", str(tmp_path / "nope.duckdb"), "--key", str(pub))
    assert res.exit_code == 2 and "no such database" in res.output
    res = run_cli("--jsonl", str(tmp_path / "a"), "--db", str(tmp_path / "b"), "--key", str(pub))
    assert res.exit_code == 2
    bad_key = tmp_path / "bad.pub"
    bad_key.write_text("not base64!!\n")
    log = tmp_path / "a.jsonl"
    fill(JsonlAuditStore(log), 1)
    res = run_cli("--jsonl", str(log), "--key", str(bad_key))
    assert res.exit_code == 2 and "bad.pub" in res.output
    res = run_cli("--jsonl", str(log), "--key", str(tmp_path / "missing.pub"))
    assert res.exit_code == 2 and "cannot read public key" in res.output


def test_a_database_without_audit_tables_is_an_empty_intact_log(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    res = run_cli("--db", str(path), "--key", str(keyfile(tmp_path)), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 0


@pytest.mark.timeout(60)
def test_the_installed_command_in_a_real_process(tmp_path):
    path = tmp_path / "telemetry.duckdb"
    conn = duckdb.connect(str(path))
    fill(DuckDBAuditStore(conn), 3)
    conn.execute("UPDATE audit SET ts = ts + 1 WHERE seq = 2")
    conn.close()
    pub = keyfile(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "samantha", "audit", "verify", "--db", str(path), "--key", str(pub),
                           "--json"], capture_output=True, text=True, env=os.environ, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["first_bad_seq"] == 2


def test_a_record_spliced_from_another_log_with_the_same_key_breaks_the_chain():
    """Same key, same seq, valid hash and signature: only the prev_hash link can tell it does not belong."""
    a, b = ListStore(), ListStore()
    fill(a, 4)
    log_b = AuditLog(b, KEY, SimClock())
    for i in range(4):
        log_b.append("decision", {"other": i})
    spliced, head = a.read()
    spliced[2] = b.read()[0][2]
    assert bad_at(spliced, head) == (3, "record 3: prev_hash does not link to the previous record: "
                                        "the chain is broken here")
