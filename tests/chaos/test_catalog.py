"""The fault catalog: every kind typed, profiled, bounded; intensities stay inside the ranges."""

from __future__ import annotations

import pytest

from samantha.chaos.fault_kinds import (
    KINDS,
    REGISTRY,
    FaultError,
    blast_radius,
    catalog_table,
    intensity_params,
    parse_fault,
)
from samantha.harness.chaos_oracle import BOUNDS


def test_every_kind_has_a_profile_and_the_oracle_knows_it():
    assert set(KINDS) == {k.model.model_fields["kind"].default for k in REGISTRY} == set(BOUNDS)
    for row in catalog_table():
        assert row["revert"] and row["targets"] and "duration_s" in row["ranges"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("intensity", ["low", "medium", "high"])
def test_llm_intensities_map_inside_the_ranges(kind, intensity):
    f = parse_fault(kind, intensity_params(kind, intensity))
    assert f.kind == kind


def test_bad_parameters_name_every_field():
    with pytest.raises(FaultError) as e:
        parse_fault("memory_hog", {"mb": 10**6, "duration_s": "forever", "evil": 1})
    assert set(e.value.problems) == {"params.mb", "params.duration_s", "params.evil"}


def test_blast_radius_by_role_and_weights():
    f = parse_fault("http_error", {"toxicity": 0.5})
    assert blast_radius(f, "standby", 0).live_share == 0
    assert blast_radius(f, "standby", 20).live_share == pytest.approx(0.1)
    assert blast_radius(f, "active", 20).live_share == pytest.approx(0.4)
    assert blast_radius(parse_fault("kill_slot", {}), "active").path_down
    assert REGISTRY["cpu_burn"].targets == ("host",)
    assert blast_radius(parse_fault("cpu_burn", {"cores": 1.5}), "host").cpu_cores == 1.5
