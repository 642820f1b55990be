"""Property tests for the pure validation module (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.telemetry import validation as v

LIMITS = v.Limits(ts_min=1_000.0, ts_max=2_000.0, max_labels=4, max_label_chars=8)
REASONS = {v.MISSING, v.WRONG_TYPE, v.NOT_FINITE, v.OUT_OF_RANGE, v.TS_FUTURE, v.TS_PAST, v.BAD_NAME,
           v.TOO_MANY_LABELS, v.LABEL_TOO_LONG, v.UNKNOWN_FIELD, v.TOO_LARGE}

anything = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=12), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=6))
label_sets = st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=10), st.integers()), max_size=6)


@given(st.dictionaries(st.sampled_from(["metric", "labels", "ts", "value", "junk"]), anything, max_size=5),
       st.one_of(st.none(), label_sets))
@settings(max_examples=400)
def test_sample_check_accepts_only_valid_records(d, labels) -> None:
    if labels is not None:
        d = {**d, "labels": labels}
    try:
        metric, labs, ts, value = v.check_sample(d, LIMITS)
    except v.RecordError as e:
        assert e.reason in REASONS and isinstance(e.field, str)
        return
    assert v.METRIC_RE.match(metric)
    assert LIMITS.ts_min <= ts <= LIMITS.ts_max and math.isfinite(value)
    assert len(labs) <= LIMITS.max_labels
    assert all(isinstance(x, str) and len(x) <= LIMITS.max_label_chars for x in labs.values())
    assert "junk" not in d


@given(st.dictionaries(st.sampled_from(["ts", "slot", "bundle", "latency_ms", "ok", "divergence", "shadow"]),
                       st.one_of(anything, st.sampled_from(["active", "standby"]), st.floats(1000, 2000)),
                       max_size=7))
@settings(max_examples=400)
def test_request_check_accepts_only_valid_records(d) -> None:
    try:
        ts, slot, bundle, lat, ok, div, shadow = v.check_request(d, LIMITS)
    except v.RecordError as e:
        assert e.reason in REASONS
        return
    assert slot in v.SLOTS and 1 <= len(bundle) <= v.MAX_NAME_CHARS
    assert lat >= 0 and math.isfinite(lat) and isinstance(ok, bool) and isinstance(shadow, bool)
    assert div is None or (div >= 0 and math.isfinite(div))


safe_labels = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,4}", fullmatch=True),
                              st.text(alphabet=",=\\ab", max_size=4), max_size=4)


@given(safe_labels, safe_labels)
def test_labels_key_is_canonical_and_injective(a, b) -> None:
    assert v.labels_key(a) == v.labels_key(dict(reversed(list(a.items()))))
    assert (v.labels_key(a) == v.labels_key(b)) == (a == b)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=50))
def test_vectorised_ts_check_agrees_with_the_scalar_check(xs) -> None:
    arr = np.asarray(xs, dtype=np.float64)
    flagged = {i: reason for i, _, reason, _ in v.bad_float_rows("ts", arr, ts_limits=LIMITS)}
    for i, x in enumerate(xs):
        try:
            v.check_ts(v._number({"ts": x}, "ts"), LIMITS)
            assert i not in flagged
        except v.RecordError as e:
            assert flagged.get(i) == e.reason


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=True, width=64)), max_size=30))
def test_nullable_divergence_column(xs) -> None:
    arr = np.asarray([math.nan if x is None else x for x in xs], dtype=np.float64)
    flagged = {i for i, *_ in v.bad_float_rows("divergence", arr, lo=0.0, nullable=True)}
    expected = {i for i, x in enumerate(xs) if x is not None and (not math.isfinite(x) or x < 0)}
    assert flagged == expected
