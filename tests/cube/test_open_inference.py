"""The V2 answer check and the per-tensor divergence (pure logic)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.cube.open_inference import (
    OpenInferenceError,
    TensorSpec,
    divergence,
    parse_answer,
    read_metadata,
    tensor_divergence,
)

SPEC = (TensorSpec("probs", "FP32", (3,)),)


def _answer(data, name="probs", shape=(3,), datatype="FP32") -> bytes:
    return orjson.dumps({"outputs": [{"name": name, "datatype": datatype, "shape": list(shape), "data": data}]})


def test_a_good_answer_is_read_as_tensors():
    t = parse_answer(_answer([0.2, 0.3, 0.5]), SPEC)
    assert t["probs"].shape == (3,) and t["probs"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b"<html>", "body", "not JSON"),
    (_answer([0.1, 0.2, 0.3, 0.4], shape=(4,)), "outputs[0].shape", "declares [3]"),
    (_answer([0.2, 0.3, 0.5], datatype="FP64"), "outputs[0].datatype", "declares FP32"),
    (_answer([0.2, 0.3, 0.5], name="logits"), "outputs[0].name", "not an output"),
    (_answer([0.2, None, 0.5]), "outputs[0].data", "non-finite"),
    (b'{"outputs": [{"name": "probs", "datatype": "FP32", "shape": [3], "data": [NaN, 0.1, 0.2]}]}',
     "outputs[0].data", "non-finite"),
    (_answer([0.2, 0.3]), "outputs[0].data", "2 values for shape [3]"),
])
def test_bad_answers_name_the_field(body, field, reason):
    with pytest.raises(OpenInferenceError) as e:
        parse_answer(body, SPEC)
    assert e.value.field == field and reason in e.value.reason


def test_metadata_without_outputs_or_with_a_string_dtype_is_refused():
    with pytest.raises(OpenInferenceError, match="outputs: model metadata lists no outputs"):
        read_metadata({"name": "m", "outputs": []})
    with pytest.raises(OpenInferenceError, match=r"outputs\[0\]\.datatype"):
        read_metadata({"outputs": [{"name": "t", "datatype": "BYTES", "shape": [1]}]})
    assert read_metadata({"outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, 3]}]})[0].shape == (-1, 3)


def test_probabilities_use_tv_distance_and_other_tensors_argmax_agreement():
    assert tensor_divergence(np.array([0.5, 0.5]), np.array([0.7, 0.3])) == pytest.approx(0.2)
    assert tensor_divergence(np.array([3.0, 1.0]), np.array([3.1, 1.0])) < 0.05  # logits, same argmax
    assert tensor_divergence(np.array([3.0, 1.0]), np.array([1.0, 3.0])) == 1.0  # argmax flipped
    assert tensor_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.3, 0.2])) == 1.0  # shape changed
    assert divergence({"p": np.array([0.5, 0.5])}, {"q": np.array([0.5, 0.5])}) == 1.0  # output renamed


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=16), st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=16))
def test_divergence_is_in_unit_interval_and_zero_on_itself(a, b):
    p, q = np.array(a), np.array(b)
    d = tensor_divergence(p, q)
    assert 0.0 <= d <= 1.0 and tensor_divergence(p, p) == 0.0
