"""Gate specs: the discriminated union, durations, and the rules each kind enforces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from samantha.core.validated_yaml import DocumentError, load_model
from samantha.gates.registry import GATE_ADAPTER, GateRegistry, Provenance, builtin_gates
from samantha.gates.spec import GATE_KINDS, DriftGate, min_samples, parse_duration


@pytest.mark.parametrize("text,seconds", [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800),
                                          ("1.5m", 90), (12, 12), (0.5, 0.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "-3s", "", "1y", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_units_scale(v, unit):
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{v:.6f}{unit}") == pytest.approx(float(f"{v:.6f}") * scale)


def test_every_kind_parses_from_a_dict():
    docs = [
        {"kind": "threshold", "name": "t", "metric": "latency_ms", "aggregate": "p99", "value": 250},
        {"kind": "compare", "name": "c", "metric": "error_rate", "max_increase": 0.01},
        {"kind": "judge", "name": "j", "test": "latency"},
        {"kind": "sequential", "name": "s", "signal": "errors"},
        {"kind": "drift", "name": "d", "metric": "input_feature_mean", "window": "1m", "baseline_offset": "5m"},
        {"kind": "staleness", "name": "x", "signal": "bundle_expiry", "min_remaining": "1h"},
        {"kind": "resource", "name": "r", "signal": "memory_growth", "window": "30s", "min_span": "10s"},
        {"kind": "server", "name": "v", "signal": "failure_ratio", "limit": 0.1, "labels": {"model": "sensor"}},
    ]
    gates = [GATE_ADAPTER.validate_python(d) for d in docs]
    assert [g.kind for g in gates] == list(GATE_KINDS)
    assert gates[4].window == 60 and gates[4].offset == 300 and gates[5].min_remaining == 3600
    assert gates[6].metrics() == ("slot_memory_rss_bytes",) and gates[6].min_span == 10
    with pytest.raises(ValueError, match="min_span"):
        GATE_ADAPTER.validate_python({"kind": "resource", "name": "r", "signal": "memory_growth", "window": 5})


def test_union_errors_name_the_field_and_line():
    text = "kind: threshold\nname: t\nmetric: latency_ms\naggregate: p42\nvalue: 1\n"
    from samantha.gates.spec import ThresholdGate

    with pytest.raises(DocumentError) as e:
        load_model(ThresholdGate, text, "g.yaml")
    (p,) = e.value.problems
    assert (p.line, p.field) == (4, "aggregate")
    with pytest.raises(ValidationError, match="union_tag_invalid|does not match any of the expected tags"):
        GATE_ADAPTER.validate_python({"kind": "nope", "name": "x"})


def test_kind_rules():
    with pytest.raises(ValidationError, match="max_increase and/or max_ratio"):
        GATE_ADAPTER.validate_python({"kind": "compare", "name": "c", "metric": "error_rate"})
    with pytest.raises(ValidationError, match="needs max_age"):
        GATE_ADAPTER.validate_python({"kind": "staleness", "name": "s", "signal": "last_sync"})
    with pytest.raises(ValidationError, match="overlaps"):
        DriftGate(name="d", metric="m", window=600, baseline_offset=60)
    with pytest.raises(ValidationError):
        GATE_ADAPTER.validate_python({"kind": "threshold", "name": "Bad Name", "metric": "m", "value": 1})


def test_default_min_samples_are_never_zero():
    for g in builtin_gates():
        assert min_samples(g) >= 1
    p99 = GATE_ADAPTER.validate_python({"kind": "threshold", "name": "t", "metric": "latency_ms",
                                        "aggregate": "p99", "value": 1})
    assert min_samples(p99) >= 100  # a p99 from fewer than 100 requests is not a p99


def test_learned_gates_carry_provenance():
    reg = GateRegistry.with_builtins()
    g = GATE_ADAPTER.validate_python({"kind": "threshold", "name": "learned-mem", "metric": "host_memory_used_percent",
                                      "value": 0.8})
    with pytest.raises(ValidationError, match="experiment_id, journal_sha256 and version"):
        Provenance(source="learned", experiment_id="exp-1")
    prov = Provenance(source="learned", experiment_id="exp-1", journal_sha256="a" * 64, version=2)
    reg.add(g, prov)
    assert reg.entry("learned-mem").provenance.version == 2
    with pytest.raises(ValueError, match="already registered"):
        reg.add(g, prov)
