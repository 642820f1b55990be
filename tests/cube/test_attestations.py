"""The SBOM and provenance a bundle carries, on real signed bundle directories: written by the build, covered
by the model-signing signature, read with cyclonedx-python-lib and in-toto-attestation, and judged by the
daemon's intake (BundleCatalog). Malformed files are refused naming the file and the field."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.core.supply import SupplyPolicy
from samantha.cube.attestations import (
    PROVENANCE_FILE,
    SBOM,
    BuildInfo,
    read_attestation,
    read_provenance,
    read_sbom,
)
from samantha.cube.bundle import (
    BundleError,
    SigningKey,
    load_trusted_keys,
    sign_bundle,
    trust_key,
    verify_bundle,
)
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
from samantha.twin.toy_bundle import build_bundle

BUILDER = "https://ci.fleet.example/builder/v1"
REV = "3f2c" * 10
INFO = BuildInfo(builder_id=BUILDER, source_uri="git+https://git.fleet.example/models/sensor", source_revision=REV,
                 components=("pkg:pypi/numpy@1.26.4",))


@pytest.fixture()
def env(tmp_path: Path):
    key = SigningKey.generate(tmp_path / "publisher.pem")
    trust_key(key, tmp_path / "trusted")
    return tmp_path, key


def _build(env, name: str, info: BuildInfo | None = INFO) -> Path:
    root, key = env
    build_bundle(root / "bundles" / name, name="sensor-mlp", version="2", key=key, attest=info)
    return root / "bundles" / name


def _catalog(env, policy: SupplyPolicy | None) -> BundleCatalog:
    root, _ = env
    return BundleCatalog(root / "bundles", root / "trusted", supply=lambda: policy)


def _edit(env, d: Path, rel: str, edit) -> None:
    """Change a carried file and re-sign with the trusted key: the signature holds, the content is what is judged."""
    p = d / rel
    doc = json.loads(p.read_text())
    edit(doc)
    p.write_text(json.dumps(doc))
    sign_bundle(d, env[1])


def test_build_carries_signed_sbom_and_provenance_read_into_facts(env) -> None:
    d = _build(env, "good")
    vb = verify_bundle(d, load_trusted_keys(env[0] / "trusted"))
    assert {SBOM, PROVENANCE_FILE} <= set(vb.files)  # inside the signed manifest
    f = read_provenance(vb)
    (att,) = f.attestations
    assert att.is_provenance and att.builder_id == BUILDER and att.source_revision == REV
    assert att.source_uri == INFO.source_uri
    assert att.subjects == f.artifacts and set(f.artifacts) == {"model.npz"}
    assert f.sbom is not None and f.sbom.spec_version == "1.6"
    assert [c.purl for c in f.sbom.components] == ["pkg:pypi/numpy@1.26.4"]
    assert f.digests() == {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in (SBOM, PROVENANCE_FILE)}
    info = _catalog(env, SupplyPolicy(required_builder=BUILDER, require_sbom=True,
                                      deny_components=["pkg:pypi/evil"])).verify("good")
    assert info.attestations == f.digests()


def test_editing_a_carried_file_after_signing_is_tampering(env) -> None:
    d = _build(env, "b")
    p = d / PROVENANCE_FILE
    p.write_text(p.read_text().replace(BUILDER, "https://ci.fleet.example/other"))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, None).verify("b")
    assert e.value.kind == "tampered" and PROVENANCE_FILE in e.value.reason


def test_each_rule_refuses_by_name(env) -> None:
    _build(env, "plain", None)
    with pytest.raises(BundleRejected) as e:
        _catalog(env, SupplyPolicy(require_provenance=True)).verify("plain")
    assert (e.value.rule, e.value.kind) == ("provenance-required", "unattested")
    assert _catalog(env, None).verify("plain").attestations == {}  # nothing required, nothing carried
    _build(env, "nosbom", BuildInfo(BUILDER, "git+x", REV, sbom=False))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, SupplyPolicy(require_sbom=True)).verify("nosbom")
    assert e.value.rule == "provenance-required" and "SBOM" in e.value.reason

    d = _build(env, "wrong-subject")
    _edit(env, d, PROVENANCE_FILE, lambda doc: doc["subject"][0]["digest"].update(sha256="0" * 64))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, None).verify("wrong-subject")  # checked even when no policy asks for provenance
    assert (e.value.rule, e.value.kind) == ("subject-digest", "tampered") and "model.npz" in e.value.reason

    d = _build(env, "other-file")
    _edit(env, d, PROVENANCE_FILE, lambda doc: doc["subject"][0].update(name="weights.bin"))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, None).verify("other-file")
    assert e.value.rule == "subject-digest" and "weights.bin" in e.value.reason

    _build(env, "builder", BuildInfo("https://laptop/builder", "git+x", REV))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, SupplyPolicy(required_builder=BUILDER)).verify("builder")
    assert (e.value.rule, e.value.kind) == ("builder", "untrusted_builder") and "https://laptop/builder" in e.value.reason

    _build(env, "denied", BuildInfo(BUILDER, "git+x", REV, components=("pkg:pypi/evil@0.1",)))
    with pytest.raises(BundleRejected) as e:
        _catalog(env, SupplyPolicy(deny_components=["pkg:pypi/evil"])).verify("denied")
    assert (e.value.rule, e.value.kind) == ("denied-component", "denied_component")
    assert "pkg:pypi/evil@0.1" in e.value.reason


@pytest.mark.parametrize(("rel", "edit", "expect"), [
    (SBOM, None, "sbom.cdx.json is not JSON"),
    (SBOM, lambda d: d["components"][0].update(purl=5), "sbom.cdx.json field $.components[0].purl"),
    (SBOM, lambda d: d.update(specVersion="9.9"), "sbom.cdx.json field specVersion"),
    (SBOM, lambda d: d.pop("bomFormat"), "sbom.cdx.json field $"),
    (PROVENANCE_FILE, None, f"{PROVENANCE_FILE} is not JSON"),
    (PROVENANCE_FILE, lambda d: d["predicate"]["runDetails"]["builder"].update(id=["x"]),
     f"{PROVENANCE_FILE} field predicate.runDetails.builder.id"),
    (PROVENANCE_FILE, lambda d: d["predicate"]["runDetails"]["builder"].pop("id"),
     f"{PROVENANCE_FILE} field predicate.runDetails.builder.id: required"),
    (PROVENANCE_FILE, lambda d: d["subject"][0]["digest"].pop("sha256") and d["subject"][0]["digest"].update(md5="00"),
     f"{PROVENANCE_FILE} field subject[0].digest.sha256"),
    (PROVENANCE_FILE, lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), f"{PROVENANCE_FILE} field _type"),
    (PROVENANCE_FILE, lambda d: d.update(subject="model.npz"), f"{PROVENANCE_FILE} field subject"),
])
def test_malformed_carried_json_is_refused_naming_file_and_field(env, rel, edit, expect) -> None:
    d = _build(env, "m")
    if edit is None:
        (d / rel).write_text("{not json")
        sign_bundle(d, env[1])
    else:
        _edit(env, d, rel, edit)
    with pytest.raises(BundleError) as e:
        read_provenance(verify_bundle(d, load_trusted_keys(env[0] / "trusted")))
    assert e.value.kind == "malformed" and expect in str(e.value), str(e.value)
    with pytest.raises(BundleRejected) as r:
        _catalog(env, None).verify("m")
    assert r.value.kind == "malformed" and expect in r.value.reason


def test_only_statements_under_attestations(env) -> None:
    d = _build(env, "stray")
    (d / "attestations" / "notes.txt").write_text("hello")
    sign_bundle(d, env[1])
    with pytest.raises(BundleRejected) as e:
        _catalog(env, None).verify("stray")
    assert e.value.kind == "malformed" and "attestations/notes.txt" in e.value.reason


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def test_cli_build_with_sbom_and_provenance_then_verify_against_a_supply_policy(env) -> None:
    root, key = env
    r = _cli("bundle", "build", "b", "--version", "3", "--key", str(key.path), "--sbom", "--provenance",
             "--builder-id", BUILDER, "--source-uri", "git+https://git.fleet.example/m", "--source-revision", REV,
             "--component", "pkg:pypi/evil@0.1", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["provenance"] is True
    r = _cli("bundle", "verify", "b", "--trusted", "trusted", "--json", cwd=root)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["builders"] == [BUILDER] and out["source_revisions"] == [REV], r.stdout
    assert "pkg:pypi/evil@0.1" in out["components"] and set(out["attestations"]) == {SBOM, PROVENANCE_FILE}
    (root / "deny.yaml").write_text('deny_components: ["pkg:pypi/evil"]\n')
    r = _cli("bundle", "verify", "b", "--trusted", "trusted", "--supply", "deny.yaml", "--json", cwd=root)
    assert r.returncode == 1 and json.loads(r.stdout)["rule"] == "denied-component", r.stdout
    (root / "bad.yaml").write_text("required_buildr: x\n")
    r = _cli("bundle", "verify", "b", "--trusted", "trusted", "--supply", "bad.yaml", cwd=root)
    assert r.returncode == 2 and "bad.yaml:1:1: required_buildr" in r.stderr, r.stderr
    r = _cli("bundle", "build", "c", "--version", "3", "--sbom", "--component", "left-pad", cwd=root)
    assert r.returncode == 2 and "'left-pad' is not a package URL" in r.stderr, r.stderr


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=12)
_STATEMENT = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "model.npz", "digest": {"sha256": "a" * 64}}],
              "predicateType": "https://slsa.dev/provenance/v1",
              "predicate": {"buildDefinition": {"buildType": "t"}, "runDetails": {"builder": {"id": "b"}}}}
_SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
    {"type": "library", "name": "numpy", "version": "1", "purl": "pkg:pypi/numpy@1"}]}


def _replace(doc, path: list[str], value):
    """`doc` with the value at `path` (dict keys / list indices, as far as they exist) replaced."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


_S_PATHS = [["_type"], ["subject"], ["subject", 0], ["subject", 0, "name"], ["subject", 0, "digest"],
            ["subject", 0, "digest", "sha256"], ["predicateType"], ["predicate"], ["predicate", "runDetails"],
            ["predicate", "runDetails", "builder"], ["predicate", "runDetails", "builder", "id"],
            ["predicate", "buildDefinition", "resolvedDependencies"]]
_B_PATHS = [["specVersion"], ["components"], ["components", 0], ["components", 0, "name"], ["components", 0, "purl"],
            ["components", 0, "type"], ["metadata"], ["version"]]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_S_PATHS), json_values)
def test_any_value_anywhere_in_a_statement_is_read_or_refused_as_malformed(path, value) -> None:
    raw = json.dumps(_replace(_STATEMENT, path, value)).encode()
    try:
        f = read_attestation(PROVENANCE_FILE, raw)
    except BundleError as e:
        assert e.kind == "malformed" and str(e).startswith(f"malformed: {PROVENANCE_FILE}")
    else:
        assert f.subjects and all(len(d) == 64 for d in f.subjects.values())
        assert not f.is_provenance or f.builder_id


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_B_PATHS), json_values)
def test_any_value_anywhere_in_an_sbom_is_read_or_refused_as_malformed(path, value) -> None:
    raw = json.dumps(_replace(_SBOM, path, value)).encode()
    try:
        read_sbom(SBOM, raw)
    except BundleError as e:
        assert e.kind == "malformed" and str(e).startswith(f"malformed: {SBOM}")


def test_a_subject_named_twice_is_refused() -> None:
    doc = json.loads(json.dumps(_STATEMENT))
    doc["subject"].append({"name": "model.npz", "digest": {"sha256": "b" * 64}})
    with pytest.raises(BundleError, match=r"subject\[1\].name: 'model.npz' is named twice"):
        read_attestation(PROVENANCE_FILE, json.dumps(doc).encode())


def test_a_statement_in_a_dsse_envelope_signed_by_securesystemslib_is_read(env) -> None:
    """CI attestation tools write DSSE envelopes: the statement inside is judged like a bare one."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    d = _build(env, "dsse")
    bare = (d / PROVENANCE_FILE).read_bytes()
    envelope = Envelope(bare, "application/vnd.in-toto+json", {})
    envelope.sign(CryptoSigner.generate_ecdsa())
    (d / PROVENANCE_FILE).write_text(json.dumps(envelope.to_dict()))
    sign_bundle(d, env[1])
    info = _catalog(env, SupplyPolicy(required_builder=BUILDER)).verify("dsse")
    assert info.attestations[PROVENANCE_FILE] == hashlib.sha256((d / PROVENANCE_FILE).read_bytes()).hexdigest()
    doc = envelope.to_dict() | {"payloadType": "text/plain"}
    with pytest.raises(BundleError, match=f"{PROVENANCE_FILE} field payloadType: 'text/plain'"):
        read_attestation(PROVENANCE_FILE, json.dumps(doc).encode())


def test_a_sigstore_bundle_made_by_model_signing_is_read_as_a_statement(env) -> None:
    """model.sig is a Sigstore bundle (DSSE over an in-toto statement) written by the model-signing library: the
    reader takes the same shape from any Sigstore tool, and names what it is about."""
    d = _build(env, "sig", None)
    f = read_attestation("attestations/model.intoto.json", (d / "model.sig").read_bytes())
    assert f.predicate_type.startswith("https://model_signing/") and not f.is_provenance
    assert len(f.subjects) == 1 and all(len(h) == 64 for h in f.subjects.values())
    doc = json.loads((d / "model.sig").read_text())
    doc.pop("dsseEnvelope")
    with pytest.raises(BundleError, match="attestations/x.intoto.json field"):
        read_attestation("attestations/x.intoto.json", json.dumps(doc).encode())
