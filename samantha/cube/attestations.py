"""The SBOM and provenance a bundle carries: read into facts for the kernel, and written at build time.

A bundle may carry a CycloneDX SBOM (`sbom.cdx.json`, read and schema-validated by `cyclonedx-python-lib`)
and in-toto attestations (`attestations/*.intoto.json`: in-toto Statement v1, parsed with the
`in-toto-attestation` protobuf bindings; a SLSA provenance v1 predicate names `runDetails.builder.id` and the
source revision as a resolved dependency with a `gitCommit` digest). Both are ordinary files of the
model directory, so the model-signing manifest covers them: they are read from the verified bytes
(`VerifiedBundle.files`), never from the disk again. Signing them with the bundle (rather than as separate
DSSE envelopes from the builder) means the publisher vouches for them with its key; no second trust root.

Subjects name the bundle's model files (every signed file except `bundle.json`, the SBOM and the attestations)
with their sha256: the attestation cannot name the bundle id, which is a hash over it. The kernel
(`kernel/supply.py: judge_provenance`) compares them; this module only reads, and refuses what it cannot read
as `malformed`, naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samantha.core.supply import (
    SLSA_PROVENANCE_V1,
    AttestationFacts,
    ProvenanceFacts,
    SbomComponent,
    SbomFacts,
)
from samantha.cube.bundle import META, SIGNATURE, TUF_DIR, BundleError, VerifiedBundle, json_object

SBOM = "sbom.cdx.json"
ATTESTATIONS = "attestations"
ATTESTATION_SUFFIX = ".intoto.json"
PROVENANCE_FILE = f"{ATTESTATIONS}/slsa-provenance{ATTESTATION_SUFFIX}"
BUILD_TYPE = "urn:samantha:build-type:bundle-build:v1"  # what `samantha bundle build` ran
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"  # DSSE payloadType of an in-toto statement
_NESTED = re.compile(r"Failed to parse (\w+) field: ")


def _carried(name: str) -> bool:
    return name == SBOM or name.startswith(f"{ATTESTATIONS}/")


def artifacts_of(files: Mapping[str, bytes]) -> dict[str, str]:
    """The model files among a bundle's files (name -> sha256): what provenance subjects name."""
    return {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items()) if n != META and not _carried(n)}


# -- read ---------------------------------------------------------------------------------------
def _proto_error(path: str, prefix: str, e: Exception) -> BundleError:
    """protobuf's 'Failed to parse a field: Failed to parse b field: why' as 'path field prefix.a.b: why'."""
    msg = str(e).split("\n")[0]
    parts = _NESTED.findall(msg)
    why = _NESTED.sub("", msg).rstrip(".")
    where = ".".join([p for p in (prefix, *parts) if p]) or "(root)"
    return BundleError("malformed", f"{path} field {where}: {why}")


def _unwrap(path: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The statement inside a DSSE envelope or a Sigstore bundle (what CI attestation tools write), or `doc`.
    The envelope's own signature is not checked here: the bundle's model-signing signature covers the file."""
    from pydantic import ValidationError
    from sigstore_models.bundle.v1 import Bundle
    from sigstore_models.intoto import Envelope

    if "payloadType" not in doc and "dsseEnvelope" not in doc and "mediaType" not in doc:
        return doc
    try:
        env = Envelope.model_validate(doc) if "payloadType" in doc else Bundle.model_validate(doc).dsse_envelope
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise BundleError("malformed", f"{path} field {where}: {err['msg']}") from None
    if env is None:
        raise BundleError("malformed", f"{path} field dsseEnvelope: required (a Sigstore bundle carrying a statement)")
    if env.payload_type != IN_TOTO_PAYLOAD:
        raise BundleError("malformed", f"{path} field payloadType: {env.payload_type!r}, not {IN_TOTO_PAYLOAD}")
    return json_object(f"{path} payload", env.payload)


def read_attestation(path: str, raw: bytes) -> AttestationFacts:
    """One in-toto Statement v1, bare or in a DSSE envelope / Sigstore bundle (unknown fields ignored, as the
    in-toto spec asks of consumers). `sha256` is of the file as carried."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    doc = _unwrap(path, json_object(path, raw))
    try:
        pb = json_format.ParseDict(doc, statement_pb2.Statement(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise _proto_error(path, "", e) from None
    try:
        Statement.copy_from_pb(pb).validate()
    except ValueError as e:
        m = str(e)
        where = ("_type" if "statement type" in m else "predicateType" if "Predicate type" in m else
                 "predicate" if "Predicate object" in m else "subject")
        raise BundleError("malformed", f"{path} field {where}: {m}") from None
    subjects: dict[str, str] = {}
    for i, s in enumerate(pb.subject):
        if not s.name:
            raise BundleError("malformed", f"{path} field subject[{i}].name: required (the bundle file it is about)")
        digest = dict(s.digest).get("sha256", "")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise BundleError("malformed", f"{path} field subject[{i}].digest.sha256: required, 64 lowercase hex digits")
        if s.name in subjects:  # two digests for one file: one of them is about other bytes
            raise BundleError("malformed", f"{path} field subject[{i}].name: {s.name!r} is named twice")
        subjects[s.name] = digest
    facts: dict[str, Any] = {}
    if pb.predicate_type == SLSA_PROVENANCE_V1:
        try:
            prov = json_format.ParseDict(doc.get("predicate") or {}, provenance_pb2.Provenance(),
                                         ignore_unknown_fields=True)
        except json_format.ParseError as e:
            raise _proto_error(path, "predicate", e) from None
        if not prov.build_definition.build_type:
            raise BundleError("malformed", f"{path} field predicate.buildDefinition.buildType: required")
        if not prov.run_details.builder.id:
            raise BundleError("malformed", f"{path} field predicate.runDetails.builder.id: required")
        facts["builder_id"] = prov.run_details.builder.id
        for dep in prov.build_definition.resolved_dependencies:
            if "gitCommit" in dep.digest:
                facts |= {"source_uri": dep.uri or None, "source_revision": dep.digest["gitCommit"]}
                break
    return AttestationFacts(path=path, sha256=hashlib.sha256(raw).hexdigest(), predicate_type=pb.predicate_type,
                            subjects=subjects, **facts)


def _walk(components: Iterable[Any]) -> Iterable[Any]:
    for c in components:
        yield c
        yield from _walk(c.components)


def read_sbom(path: str, raw: bytes) -> SbomFacts:
    """A CycloneDX JSON SBOM, validated against its declared specVersion's schema (strict: no unknown fields)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    doc = json_object(path, raw)
    spec = doc.get("specVersion")
    readable = [v for v in SchemaVersion if v >= SchemaVersion.V1_2]  # CycloneDX JSON starts at 1.2
    version = next((v for v in readable if v.to_version() == spec), None)
    if version is None:
        raise BundleError("malformed", f"{path} field specVersion: {spec!r} is not a CycloneDX JSON version this "
                                       f"Cube reads ({', '.join(v.to_version() for v in readable)})")
    err = JsonStrictValidator(version).validate_str(raw.decode())
    if err is not None:
        e = err.data
        where = getattr(e, "json_path", "$") if e is not None else "$"
        raise BundleError("malformed", f"{path} field {where}: {getattr(e, 'message', err)}")
    try:
        with warnings.catch_warnings():  # an incomplete dependency graph is the SBOM author's business
            warnings.simplefilter("ignore")
            bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    except Exception as e:  # the library's own deserialisation errors have no common base
        raise BundleError("malformed", f"{path}: not a CycloneDX BOM: {type(e).__name__} {e}") from None
    comps = [SbomComponent(name=c.name, version=c.version, purl=str(c.purl) if c.purl else None)
             for c in _walk(bom.components)]
    return SbomFacts(path=path, sha256=hashlib.sha256(raw).hexdigest(), spec_version=version.to_version(),
                     components=comps)


def read_provenance(bundle: VerifiedBundle) -> ProvenanceFacts:
    """The SBOM and attestations among a verified bundle's files, as facts. Raises BundleError(malformed)."""
    files = bundle.files
    attestations = []
    for name in sorted(files):
        if not name.startswith(f"{ATTESTATIONS}/"):
            continue
        if not name.endswith(ATTESTATION_SUFFIX) or name.count("/") != 1:
            raise BundleError("malformed", f"{name}: {ATTESTATIONS}/ holds only *{ATTESTATION_SUFFIX} statements")
        attestations.append(read_attestation(name, files[name]))
    sbom = read_sbom(SBOM, files[SBOM]) if SBOM in files else None
    return ProvenanceFacts(artifacts=artifacts_of(files), attestations=attestations, sbom=sbom)


# -- write (the build side) ---------------------------------------------------------------------
@dataclass(frozen=True)
class BuildInfo:
    """What the build knows about itself: written as SLSA provenance and a CycloneDX SBOM."""

    builder_id: str
    source_uri: str
    source_revision: str
    components: tuple[str, ...] = field(default_factory=tuple)  # package URLs the model was built with
    sbom: bool = True
    provenance: bool = True


def _directory_files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != SIGNATURE and p.relative_to(d).parts[0] != TUF_DIR}


def provenance_statement(artifacts: Mapping[str, str], info: BuildInfo, *, now: float) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA provenance v1 predicate over `artifacts` (name -> sha256)."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    prov = provenance_pb2.Provenance()
    prov.build_definition.build_type = BUILD_TYPE
    prov.build_definition.external_parameters.update({"source": info.source_uri, "revision": info.source_revision})
    prov.build_definition.resolved_dependencies.append(
        ResourceDescriptor(uri=info.source_uri, digest={"gitCommit": info.source_revision}).pb)
    prov.run_details.builder.id = info.builder_id
    prov.run_details.metadata.started_on.FromDatetime(datetime.fromtimestamp(now, UTC).replace(tzinfo=None))
    subjects = [ResourceDescriptor(name=n, digest={"sha256": h}).pb for n, h in sorted(artifacts.items())]
    stmt = Statement(subjects, SLSA_PROVENANCE_V1, json_format.MessageToDict(prov))
    stmt.validate()
    return json_format.MessageToDict(stmt.pb)


def sbom_document(name: str, version: str, components: Iterable[str]) -> str:
    """A CycloneDX 1.6 JSON SBOM: the model as the described component, `components` (purls) as libraries."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.component = Component(name=name, version=version, type=ComponentType.MACHINE_LEARNING_MODEL,
                                       bom_ref=f"{name}@{version}")
    for p in components:
        try:
            purl = PackageURL.from_string(p)
        except ValueError as e:
            raise ValueError(f"component {p!r} is not a package URL: {e}") from None
        bom.components.add(Component(name=purl.name, version=purl.version, purl=purl, bom_ref=purl.to_string()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return JsonV1Dot6(bom).output_as_string(indent=2)


def attest_bundle(directory: str | Path, info: BuildInfo, *, name: str, version: str, now: float) -> dict[str, str]:
    """Write the SBOM and/or the provenance statement into an (unsigned) bundle directory, before it is signed.
    Returns the written files -> sha256."""
    d = Path(directory)
    written: dict[str, bytes] = {}
    if info.sbom:
        written[SBOM] = sbom_document(name, version, info.components).encode()
    if info.provenance:
        artifacts = artifacts_of(_directory_files(d))
        written[PROVENANCE_FILE] = (json.dumps(provenance_statement(artifacts, info, now=now), indent=2,
                                               sort_keys=True) + "\n").encode()
    for n, data in written.items():
        (d / n).parent.mkdir(parents=True, exist_ok=True)
        (d / n).write_bytes(data)
    return {n: hashlib.sha256(b).hexdigest() for n, b in written.items()}
