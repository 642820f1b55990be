"""`samantha bench fleet --json` at a tiny size, as a real CLI process: a 3-node root cluster, a regional
leaf behind fault-proxy links, writer processes, 4 Cubes with a few hours of outbox each. The catch-up
and the fault catch-up (writer SIGKILLed mid-batch and restarted, a root node SIGKILLed, the regional
link cut) leave every generated record in Parquet once: 0 lost, 0 duplicated, nothing extra."""

from __future__ import annotations

import json

import pytest

from tests.uplink.kit import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_fleet_bench_tiny_loses_and_doubles_nothing_under_faults():
    r = cli(["bench", "fleet", "--json", "--cubes", "4", "--days", "0.15", "--writers", "1,2",
             "--catchup-writers", "2", "--link-cut-s", "3", "--link-kbps", "150", "--scale-window-s", "3",
             "--ack-wait-s", "5", "--timeout-s", "60", "--no-daemon"], timeout=140)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    out = json.loads(r.stdout)
    tpl = out["outbox_per_cube"]
    assert tpl["cloned"] is True and tpl["batches"] > 0 and tpl["records"] == tpl["distinct_keys"] > 0
    assert out["topology"]["root_nodes"] == 3 and out["topology"]["stream_replicas"] == 3

    for phase in ("catchup", "faults"):
        p = out[phase]
        assert p["cubes_done"] == 4, p
        assert p["records_generated"] == 4 * tpl["records"], p
        assert p["records_in_parquet"] == p["records_generated"], p
        assert (p["records_lost"], p["duplicates"], p["unexpected_records"]) == (0, 0, 0), p
        assert p["wall_s"] > 0 and p["consumer_backlog_at_end"] == 0, p
        assert sum(p["failed_rounds_by_error"].values()) == p["failed_rounds"], p
    assert out["catchup"]["records_per_s_at_hub"] > 0

    assert out["faults"]["failed_rounds"] > 0  # the cut link failed rounds; they were retried to the end
    faults = {f["fault"]: f for f in out["faults"]["faults"]}
    assert set(faults) == {"sigkill_writer", "writer_restarted", "sigkill_root_node", "regional_link_cut",
                           "regional_link_restored"}, faults
    assert faults["sigkill_writer"]["during_catchup"] and faults["regional_link_cut"]["during_catchup"], faults
    assert faults["sigkill_writer"]["batches_delivered_unacked"] > 0, faults  # killed mid-batch

    w = out["writers"]
    assert set(w) >= {"1", "2"}, w
    for k in ("1", "2"):
        assert "records_per_s" in w[k] or "too small" in w[k].get("error", ""), w[k]
    assert out["targets"]["misses"] == [] or out["targets"]["misses"] == ["writers_4_vs_1_ge_2.5"], out["targets"]
    assert {"catchup_lost_0", "catchup_duplicates_0", "faults_lost_0", "faults_duplicates_0"} <= set(out["targets"])


def test_fleet_bench_refuses_bad_writer_counts():
    r = cli(["bench", "fleet", "--json", "--writers", "1,x"])
    assert r.returncode == 2 and "--writers" in r.stderr, r.stderr + r.stdout
