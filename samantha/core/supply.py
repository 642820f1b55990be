"""What the Cube's bundle intake found, as plain records: the facts the kernel's supply-chain rule judges.

The checks themselves run in `cube/` with the maintained libraries (python-tuf for update metadata,
model-signing for the bundle signature, cyclonedx-python-lib and in-toto-attestation for the SBOM and
provenance a bundle carries); the kernel only sees these outcomes, so its decision is pure. `SupplyPolicy`
is what the signed policy module requires of a bundle (its `supply` section).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# what the TUF client workflow can conclude about a bundle's carried metadata
TufOutcome = Literal["ok", "absent", "rollback", "frozen", "expired", "below_threshold", "not_listed",
                     "tampered", "malformed"]
SignatureOutcome = Literal["ok", "malformed", "unknown_key", "bad_signature", "tampered", "expired"]


class TufFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: TufOutcome
    role: str | None = Field(None, description="the TUF role (or tuf/ file) the outcome is about")
    reason: str = ""
    target: str | None = Field(None, description="the target path looked up (name-version/model.sig)")
    versions: dict[str, int] = Field(default_factory=dict, description="trusted role versions after the check")
    reference_time: float | None = Field(None, description="the time expiry was judged against")


class SignatureFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: SignatureOutcome
    reason: str = ""
    bundle_id: str | None = None


class SupplyHold(BaseModel):
    """Set when carried metadata was frozen or expired: new bundles wait for fresh metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str
    since: float


class IntakeFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tuf_required: bool = Field(description="the Cube has a pinned TUF root: every bundle must carry metadata")
    tuf: TufFacts | None = None
    signature: SignatureFacts
    hold: SupplyHold | None = None


# -- SBOM and provenance carried in a bundle ------------------------------------------------------
Sha256 = str  # hex digest
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


class AttestationFacts(BaseModel):
    """One in-toto statement the bundle carries (`attestations/*.intoto.json`), as read by `cube/attestations.py`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="the file in the bundle")
    sha256: Sha256 = Field(description="of the attestation file's bytes (what the audit record cites)")
    predicate_type: str
    subjects: dict[str, Sha256] = Field(description="subject name -> sha256 digest")
    builder_id: str | None = Field(None, description="SLSA provenance: runDetails.builder.id")
    source_uri: str | None = Field(None, description="SLSA provenance: the resolved dependency with a git commit")
    source_revision: str | None = None

    @property
    def is_provenance(self) -> bool:
        return self.predicate_type == SLSA_PROVENANCE_V1


class SbomComponent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str | None = None
    purl: str | None = None


class SbomFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: Sha256
    spec_version: str
    components: list[SbomComponent] = Field(default_factory=list, description="every component, nested ones too")


class ProvenanceFacts(BaseModel):
    """What a verified bundle carries about its origin: the facts the kernel's provenance rules judge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifacts: dict[str, Sha256] = Field(description="the bundle's signed model files (not bundle.json, the SBOM "
                                                     "or attestations): what provenance subjects must name")
    attestations: list[AttestationFacts] = Field(default_factory=list)
    sbom: SbomFacts | None = None

    def digests(self) -> dict[str, Sha256]:
        """Every carried attestation file (SBOM included) -> its sha256: what a load relied on."""
        out = {a.path: a.sha256 for a in self.attestations}
        if self.sbom is not None:
            out[self.sbom.path] = self.sbom.sha256
        return out


class SupplyPolicy(BaseModel):
    """What a bundle must carry to be loaded: the `supply` section of the signed policy module."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_provenance: bool = Field(False, description="a SLSA provenance attestation must cover the model files")
    required_builder: str | None = Field(None, min_length=1, max_length=2000,
                                         description="every provenance attestation must name this builder.id "
                                                     "(implies require_provenance)")
    require_sbom: bool = Field(False, description="the bundle must carry a CycloneDX SBOM (sbom.cdx.json)")
    deny_components: list[str] = Field(default_factory=list, max_length=1000,
                                       description="component names or package URLs (with or without @version) "
                                                   "an SBOM must not list")

    @field_validator("deny_components")
    @classmethod
    def _entries(cls, v: list[str]) -> list[str]:
        for i, e in enumerate(v):
            if not e.strip():
                raise ValueError(f"entry {i} is empty")
        return v

    @property
    def needs_provenance(self) -> bool:
        return self.require_provenance or self.required_builder is not None
