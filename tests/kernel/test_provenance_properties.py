"""The provenance rules, pure: property tests over what a bundle carries and what the policy module asks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from samantha.core.supply import (
    SLSA_PROVENANCE_V1,
    AttestationFacts,
    ProvenanceFacts,
    SbomComponent,
    SbomFacts,
    SupplyPolicy,
)
from samantha.kernel.supply import RULES, denied_by, judge_provenance

hexd = st.text("0123456789abcdef", min_size=64, max_size=64)
names = st.sampled_from(["model.npz", "config.pbtxt", "tokenizer.json", "extra.bin"])
builders = st.sampled_from(["https://ci.fleet/builder", "https://evil/builder", "urn:samantha:builder:local"])
packages = st.sampled_from(["numpy", "evil", "torch", "left-pad"])


@st.composite
def carried(draw) -> ProvenanceFacts:
    artifacts = draw(st.dictionaries(names, hexd, min_size=1, max_size=3))
    atts = []
    for i in range(draw(st.integers(0, 2))):
        subjects = {}
        for n in draw(st.lists(names, max_size=4, unique=True)):
            # mostly the bundle's own digest, sometimes another one (a statement about other bytes)
            subjects[n] = artifacts.get(n) if n in artifacts and draw(st.booleans()) else draw(hexd)
        if not subjects and artifacts:
            subjects = dict(artifacts)
        atts.append(AttestationFacts(path=f"attestations/a{i}.intoto.json", sha256=draw(hexd),
                                     predicate_type=draw(st.sampled_from([SLSA_PROVENANCE_V1, "https://x/other"])),
                                     subjects=subjects, builder_id=draw(builders)))
    sbom = None
    if draw(st.booleans()):
        comps = [SbomComponent(name=p, version=v, purl=f"pkg:pypi/{p}@{v}")
                 for p, v in draw(st.lists(st.tuples(packages, st.sampled_from(["0.1", "1.26.4"])), max_size=3))]
        sbom = SbomFacts(path="sbom.cdx.json", sha256=draw(hexd), spec_version="1.6", components=comps)
    return ProvenanceFacts(artifacts=artifacts, attestations=atts, sbom=sbom)


policies = st.one_of(st.none(), st.builds(
    SupplyPolicy, require_provenance=st.booleans(), required_builder=st.one_of(st.none(), builders),
    require_sbom=st.booleans(),
    deny_components=st.lists(st.sampled_from(["pkg:pypi/evil", "left-pad", "pkg:pypi/torch@0.1", "PKG:PYPI/EVIL"]),
                             max_size=2)))


def _mismatch(f: ProvenanceFacts) -> bool:
    return any(f.artifacts.get(n) != d for a in f.attestations for n, d in a.subjects.items())


@given(carried(), policies)
def test_a_refusal_names_its_rule(f: ProvenanceFacts, p: SupplyPolicy | None) -> None:
    d = judge_provenance(f, p)
    if not d.allowed:
        assert d.rule in RULES and d.reason.startswith(f"{d.rule}:") and d.kind != "ok"


@given(carried(), policies)
def test_admitted_only_when_every_rule_holds(f: ProvenanceFacts, p: SupplyPolicy | None) -> None:
    d = judge_provenance(f, p)
    prov = [a for a in f.attestations if a.is_provenance]
    pol = p or SupplyPolicy()
    covered = {n for a in prov for n in a.subjects}
    expected = (not (pol.needs_provenance and not prov) and not (pol.require_sbom and f.sbom is None)
                and not _mismatch(f) and (not prov or covered >= set(f.artifacts))
                and all(a.builder_id == pol.required_builder for a in prov if pol.required_builder)
                and not any(denied_by(e, c) for c in (f.sbom.components if f.sbom else []) for e in pol.deny_components))
    assert d.allowed == expected, d


@given(carried(), policies)
def test_a_statement_about_other_bytes_is_never_admitted(f: ProvenanceFacts, p: SupplyPolicy | None) -> None:
    if _mismatch(f):
        d = judge_provenance(f, p)
        assert not d.allowed and d.rule in ("provenance-required", "subject-digest")


@given(carried())
def test_no_policy_and_nothing_carried_is_admitted(f: ProvenanceFacts) -> None:
    bare = f.model_copy(update={"attestations": [], "sbom": None})
    assert judge_provenance(bare, None).allowed
    assert judge_provenance(bare, SupplyPolicy(deny_components=["pkg:pypi/evil"])).allowed


@given(carried(), builders)
def test_required_provenance_missing_is_refused_first(f: ProvenanceFacts, builder: str) -> None:
    bare = f.model_copy(update={"attestations": [a for a in f.attestations if not a.is_provenance]})
    d = judge_provenance(bare, SupplyPolicy(required_builder=builder))
    assert not d.allowed and d.rule == "provenance-required" and d.kind == "unattested"


@given(packages, st.sampled_from(["0.1", "2.0.0", "1.26.4"]), packages)
def test_deny_entries_match_by_name_or_purl_without_version(pkg: str, version: str, other: str) -> None:
    c = SbomComponent(name=pkg, version=version, purl=f"pkg:pypi/{pkg}@{version}?arch=x86#sub")
    assert denied_by(f"pkg:pypi/{pkg}", c) and denied_by(f"PKG:PYPI/{pkg.upper()}", c) and denied_by(pkg, c)
    assert denied_by(f"pkg:pypi/{pkg}@{version}?arch=x86#sub", c)
    assert not denied_by(f"pkg:pypi/{pkg}@9.9.9", c)  # a pinned entry denies that version only
    if other != pkg:
        assert not denied_by(f"pkg:pypi/{other}", c) and not denied_by(other, c)
        assert not denied_by(f"pkg:npm/{pkg}", c)
