"""Property tests for the toxic-attribute validation (a safety limit: pure, exhaustive)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.proxy.toxics import _INT_ATTRS, TOXIC_TYPES, ToxicError, parse_toxic, update_toxic

TYPES = st.sampled_from(TOXIC_TYPES)


@st.composite
def valid_toxic(draw):
    kind = draw(TYPES)
    attrs = {}
    for key, (lo, hi) in _INT_ATTRS[kind].items():
        if draw(st.booleans()) or (kind == "slicer"):
            attrs[key] = draw(st.integers(lo, min(hi, 10**7)))
    if kind == "slicer":
        attrs["size_variation"] = draw(st.integers(0, attrs["average_size"] - 1))
    if kind == "http_error":
        attrs["status_code"] = draw(st.sampled_from([400, 404, 429, 500, 502, 503, 504]))
    body = {"type": kind, "attributes": attrs,
            "toxicity": draw(st.floats(0, 1)), "stream": draw(st.sampled_from(["upstream", "downstream"]))}
    if draw(st.booleans()):
        body["ttl_s"] = draw(st.floats(0.001, 86400))
    return body


@given(valid_toxic())
def test_valid_toxics_are_accepted_and_round_trip(body):
    spec = parse_toxic(body)
    assert spec.type == body["type"] and 0 <= spec.toxicity <= 1
    for k, v in body["attributes"].items():
        assert spec.attributes[k] == v
    assert set(spec.attributes) >= set(_INT_ATTRS[spec.type])
    again = parse_toxic(spec.to_json())  # what GET returns can be POSTed back
    assert again == spec
    same, reset = update_toxic(spec, {})
    assert same == spec and reset is False


BAD_VALUES = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**60), st.text(max_size=5),
                       st.floats(allow_nan=True), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


@given(TYPES, st.data())
@settings(max_examples=300)
def test_bad_attribute_values_are_rejected_naming_the_field(kind, data):
    key = data.draw(st.sampled_from(sorted(_INT_ATTRS[kind])))
    value = data.draw(BAD_VALUES)
    lo, hi = _INT_ATTRS[kind][key]
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return
    with pytest.raises(ToxicError) as ei:
        parse_toxic({"type": kind, "attributes": {key: value}})
    assert ei.value.status == 400
    assert f"attributes.{key}" in ei.value.message


@given(TYPES, st.text(min_size=1, max_size=12).filter(lambda k: k not in {"ttl_s", "body"}))
def test_unknown_attributes_are_rejected(kind, key):
    if key in _INT_ATTRS[kind]:
        return
    with pytest.raises(ToxicError, match="unknown attribute"):
        parse_toxic({"type": kind, "attributes": {key: 1}})


@given(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.booleans()))
def test_toxicity_must_be_a_probability(value):
    ok = not isinstance(value, bool | str) and value == value and 0 <= value <= 1
    if ok:
        assert parse_toxic({"type": "latency", "toxicity": value}).toxicity == float(value)
    else:
        with pytest.raises(ToxicError, match="toxicity"):
            parse_toxic({"type": "latency", "toxicity": value})


@given(st.one_of(st.floats(), st.integers(), st.text(max_size=3)))
def test_ttl_must_be_positive_and_bounded(value):
    ok = not isinstance(value, str) and value == value and 0 < value <= 7 * 86400
    if ok:
        assert parse_toxic({"type": "timeout", "ttl_s": value}).ttl_s == float(value)
    else:
        with pytest.raises(ToxicError, match="ttl_s"):
            parse_toxic({"type": "timeout", "ttl_s": value})
