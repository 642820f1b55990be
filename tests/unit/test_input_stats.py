"""Input statistics the router pushes for drift gates: pure logic of the grouping."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from samantha.twin.telemetry_push import INPUT_GROUP, InputStats, samples_url


@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3), max_size=100))
def test_one_mean_per_feature_for_every_full_group(rows: list[list[float]]) -> None:
    s = InputStats()
    for r in rows:
        assert s.observe(r, 1.0)
    full = len(rows) // INPUT_GROUP
    assert len(s.out) == 3 * full
    for g in range(full):
        chunk = rows[g * INPUT_GROUP:(g + 1) * INPUT_GROUP]
        for i in range(3):
            got = s.out[g * 3 + i]
            assert got["metric"] == "input_feature_mean" and got["labels"] == {"feature": str(i)}
            assert abs(got["value"] - sum(c[i] for c in chunk) / INPUT_GROUP) <= 1e-6 * (1 + abs(got["value"]))


def test_bad_inputs_are_ignored() -> None:
    s = InputStats(group=1)
    for bad in (None, "x", [], [1.0] * 17, [1.0, float("nan")], [True, 1.0], [1.0, "2"], {"a": 1}):
        assert not s.observe(bad, 1.0)
    assert not s.out


def test_samples_url_sits_beside_the_requests_url() -> None:
    assert samples_url("http://127.0.0.1:8470/v1/ingest/requests") == "http://127.0.0.1:8470/v1/ingest/samples"
    assert samples_url(None) is None and samples_url("http://h/other") is None
