"""A simulated week offline within the disk budget, then catch-up through a flapping link (the bench's
code path at a low rate: real store, retention, outbox, hub and proxy processes)."""

import pytest

from samantha.harness.bench.offline import run_offline_bench


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_week_offline_stays_within_budget_and_catches_up_exactly_once(tmp_path):
    # 6-hour ticks and batch spans keep it to ~30 ticks and ~200 uploads; the bench runs the fine-grained week
    r = run_offline_bench(days=7, rps=5, budget_mb=16, outbox_fraction=0.05, series=20, module_days=3,
                          full_rate_hours=1, tail_full_hours=1, step_s=21600, batch_span_s=21600, workdir=tmp_path)
    assert r["simulated_days_offline"] == 7
    # what the disk holds (file + WAL, free blocks included) stays within the budget, not only the used blocks
    assert r["disk_mb_peak"] <= 16, r
    ob = r["outbox_at_reconnect"]
    assert ob["pending_bytes"] <= ob["budget_bytes"]
    assert ob["downsampled_batches"] > 0  # the budget bit: rollups were downsampled...
    assert r["records_lost"] == 0 and r["never_drop_records"]["audit"] >= 7 * 24 * 3  # ...never-drop records were not
    assert r["duplicates_at_hub"] == 0 and r["pending_after_catchup"] == 0
    assert r["safe_mode_entered_at_s"] == r["module_expired_at_s"] == 3 * 86400
    assert r["catchup_x_realtime"] >= 100
