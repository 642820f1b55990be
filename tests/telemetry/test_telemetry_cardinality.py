"""The cardinality guard: per-metric budgets fold into one __overflow__ series, with an event and a count."""

from __future__ import annotations

import time

from samantha.core.config import SamanthaConfig, StoreConfig
from samantha.telemetry import TelemetryStore
from samantha.telemetry.cardinality import OVERFLOW_KEY, SeriesRegistry


def test_guard_folds_past_budget_and_emits_one_event(config: SamanthaConfig) -> None:
    cfg = config.model_copy(update={"store": StoreConfig(series_budget=10)})
    now = time.time()
    with TelemetryStore.open(cfg) as s:
        r = s.ingest_samples([{"metric": "req_by_user", "labels": {"user": f"u{i}"}, "ts": now, "value": float(i)}
                              for i in range(5000)])
        assert r.accepted == 5000  # folded, not rejected: the values still count
        s.ingest_samples([{"metric": "other", "labels": {"k": str(i)}, "ts": now, "value": 1.0} for i in range(5)])
        s.flush()
        series = s.read_arrow("SELECT metric, labels_key FROM series ORDER BY id").to_pylist()
        mine = [x for x in series if x["metric"] == "req_by_user"]
        assert len(mine) == 11 and mine[-1]["labels_key"] == OVERFLOW_KEY
        assert sum(x["metric"] == "other" for x in series) == 5  # other metrics keep their own budget
        overflow = s.read_arrow("SELECT count(*) AS n, sum(value) AS v FROM samples s JOIN series r ON r.id = "
                                "s.series_id WHERE r.labels_key = ?", [OVERFLOW_KEY]).to_pylist()[0]
        assert overflow == {"n": 4990, "v": float(sum(range(10, 5000)))}
        st = s.stats()
        assert st["folds"] == 4990 and st["folds_by_metric"] == {"req_by_user": 4990}
        ev = s.read_arrow("SELECT kind, severity, attrs->>'metric' AS m FROM events").to_pylist()
        assert ev == [{"kind": "cardinality_overflow", "severity": "warning", "m": "req_by_user"}]
    # after a restart the budget is still spent: known label sets keep ids, new ones still fold
    with TelemetryStore.open(cfg) as s:
        s.ingest_samples([{"metric": "req_by_user", "labels": {"user": "u3"}, "ts": now, "value": 1.0},
                          {"metric": "req_by_user", "labels": {"user": "new"}, "ts": now, "value": 1.0}])
        s.flush()
        assert s.query_scalar("SELECT count(*) FROM series WHERE metric = 'req_by_user'") == 11
        assert s.stats()["folds"] == 1


def test_registry_memory_is_bounded_under_a_label_attack() -> None:
    reg = SeriesRegistry(series_budget=100, metric_budget=5)
    for i in range(200_000):
        reg.resolve("attack", {"id": str(i)})
    for m in range(50):
        reg.resolve(f"metric_{m}", {})
    assert reg.size() <= 5 * 100 + 6  # budgets plus one overflow series per folding metric
    pending, first = reg.take_pending()
    assert len(pending) == reg.size() and set(first) == {"attack", "__overflow__"}
    assert reg.folds == (200_000 - 100) + (50 - 4)  # "attack" plus metric_0..3 fill the metric budget
