"""The supply-chain rule: may this bundle enter the Cube? Pure: it judges what the intake found.

Order matters and is the order of the checks: TUF update metadata first (is this the bundle the
fleet currently publishes, from fresh, non-rolled-back metadata?), then the model-signing signature
over the files. Frozen or expired metadata is not just a refusal: it holds the Cube (safe mode, no
new bundles, the active one keeps serving) until fresh metadata verifies.

`judge_provenance` is the second question, asked of a bundle whose signature verified: does what it carries
(SLSA provenance, a CycloneDX SBOM, read by `cube/attestations.py`) satisfy the policy module's `supply`
section? The carried files are inside the signed manifest, so they are the publisher's word about the build.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from samantha.core.supply import IntakeFacts, ProvenanceFacts, SbomComponent, SupplyPolicy, TufFacts

RULES: dict[str, str] = {
    "tuf-required": "a Cube with a pinned TUF root takes only bundles that carry TUF metadata (tuf/)",
    "tuf-fresh": "frozen or expired TUF metadata refuses the bundle and holds the Cube in safe mode",
    "tuf-verified": "rolled-back, under-signed, malformed metadata or a target not listed/not matching is refused",
    "hold": "while held, a bundle is admitted only with fresh metadata (which lifts the hold)",
    "signature": "the model-signing signature must verify with a trusted key over every file",
    "provenance-required": "the policy module's supply section requires SLSA provenance (or an SBOM): it must be carried",
    "subject-digest": "every attestation subject must be a bundle file with the same sha256, and provenance must "
                      "cover every model file",
    "builder": "every provenance attestation must name the builder.id the policy module requires",
    "denied-component": "the SBOM must list no component on the policy module's deny list",
    "tuf-stale": "metadata the Cube trusts that has expired holds the Cube as frozen metadata does, until fresh "
                 "metadata verifies",
    "module-tuf": "on a Cube with a pinned TUF root, a policy module from the hub is applied only when fresh, "
                  "verified metadata lists it with its length and hashes; else the module in force keeps governing",
}

HoldChange = Literal["keep", "set", "clear"]


class IntakeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    rule: str | None = None  # the rule that refused (None: admitted)
    kind: str = "ok"  # machine-readable refusal kind
    reason: str = ""
    hold: HoldChange = "keep"

    @property
    def safe_mode(self) -> bool:
        return self.hold == "set"


def _refuse(rule: str, kind: str, reason: str, hold: HoldChange = "keep") -> IntakeDecision:
    return IntakeDecision(allowed=False, rule=rule, kind=kind, reason=reason, hold=hold)


def judge_intake(f: IntakeFacts) -> IntakeDecision:
    """The first rule that refuses, or admission. `hold` says what happens to the supply hold."""
    tuf = f.tuf
    if f.tuf_required and (tuf is None or tuf.outcome == "absent"):
        return _refuse("tuf-required", "malformed", "tuf: the bundle carries no TUF metadata (tuf/timestamp.json); "
                       "publish it with the fleet's TUF repository and carry tuf/ with the bundle")
    fresh = False
    if tuf is not None and tuf.outcome != "absent":
        if tuf.outcome in ("frozen", "expired"):
            return _refuse("tuf-fresh", tuf.outcome, f"tuf {tuf.role}: {tuf.reason}", "set")
        if tuf.outcome != "ok":
            kind = {"not_listed": "tampered"}.get(tuf.outcome, tuf.outcome)
            return _refuse("tuf-verified", kind, f"tuf {tuf.role}: {tuf.reason}")
        fresh = True
    if f.hold is not None and not fresh:
        return _refuse("hold", "frozen", f"supply hold since {f.hold.since:.0f}: {f.hold.reason}")
    lift: HoldChange = "clear" if f.hold is not None else "keep"
    if f.signature.outcome != "ok":
        return _refuse("signature", f.signature.outcome, f.signature.reason or f"signature: {f.signature.outcome}", lift)
    return IntakeDecision(allowed=True, hold=lift)


def _purl_base(purl: str) -> str:
    """A package URL without version, qualifiers or subpath: `pkg:pypi/numpy@1.2?x=y` -> `pkg:pypi/numpy`."""
    return purl.split("#", 1)[0].split("?", 1)[0].split("@", 1)[0]


def denied_by(entry: str, c: SbomComponent) -> bool:
    """A deny-list entry matches a component by name, by exact purl, or by purl without version (case-insensitive)."""
    e = entry.strip().lower()
    if e == c.name.lower():
        return True
    if c.purl is None:
        return False
    purl = c.purl.lower()
    return e == purl or (e.startswith("pkg:") and "@" not in e and e == _purl_base(purl))


def judge_provenance(f: ProvenanceFacts, policy: SupplyPolicy | None) -> IntakeDecision:
    """The first provenance rule that refuses, or admission. Carried attestations are checked against the
    bundle's files even when no policy asks for them: a statement about other bytes is never ignored."""
    p = policy or SupplyPolicy()
    provenance = [a for a in f.attestations if a.is_provenance]
    if p.needs_provenance and not provenance:
        return _refuse("provenance-required", "unattested", "provenance-required: the bundle carries no SLSA "
                       "provenance attestation (attestations/*.intoto.json) and the policy module requires one")
    if p.require_sbom and f.sbom is None:
        return _refuse("provenance-required", "unattested", "provenance-required: the bundle carries no CycloneDX "
                       "SBOM (sbom.cdx.json) and the policy module requires one")
    for a in f.attestations:
        for name, digest in sorted(a.subjects.items()):
            have = f.artifacts.get(name)
            if have is None:
                return _refuse("subject-digest", "tampered", f"subject-digest: {a.path} names {name!r}, which is "
                               "not a model file of this bundle")
            if have != digest:
                return _refuse("subject-digest", "tampered", f"subject-digest: {a.path} subject {name} sha256 "
                               f"{digest[:16]} does not match the bundle's {have[:16]}")
    if provenance:
        covered = {n for a in provenance for n in a.subjects}
        missing = sorted(set(f.artifacts) - covered)
        if missing:
            return _refuse("subject-digest", "tampered", f"subject-digest: no provenance attestation covers "
                           f"{', '.join(missing)}")
    if p.required_builder is not None:
        for a in provenance:
            if a.builder_id != p.required_builder:
                return _refuse("builder", "untrusted_builder", f"builder: {a.path} was built by {a.builder_id!r}, "
                               f"the policy module requires {p.required_builder!r}")
    if f.sbom is not None:
        for c in f.sbom.components:
            for entry in p.deny_components:
                if denied_by(entry, c):
                    what = c.purl or (f"{c.name}@{c.version}" if c.version else c.name)
                    return _refuse("denied-component", "denied_component", f"denied-component: {f.sbom.path} "
                                   f"lists {what}, denied by {entry!r}")
    return IntakeDecision(allowed=True)


def stale_trust(expires_at: Mapping[str, float | None], now: float) -> str | None:
    """Rule `tuf-stale`: why the supply is held although no bundle was refused (the freeze window passed with no
    fresh metadata), or None. `expires_at`: each trusted role's expiry (None: not trusted yet)."""
    gone = sorted(r for r, e in expires_at.items() if e is not None and now >= e)
    return f"tuf-stale: the Cube's trusted TUF metadata expired ({', '.join(gone)})" if gone else None


def judge_module(tuf_required: bool, tuf: TufFacts | None) -> IntakeDecision:
    """Rule `module-tuf`: may a policy module the hub served go on to the policy store's own checks (signature,
    version, expiry)? A refusal never holds the supply: the module in force keeps governing, and its own expiry
    (safe mode) and `tuf-stale` cover a Cube that stops hearing fresh metadata. `kind` is `tuf_<outcome>`."""
    if not tuf_required:
        return IntakeDecision(allowed=True)
    if tuf is None or tuf.outcome == "absent":
        return _refuse("module-tuf", "tuf_absent", "tuf timestamp: the hub served no TUF metadata with the policy "
                       "module; publish it with the fleet's TUF repository (samantha hub publish --tuf-repo)")
    if tuf.outcome != "ok":
        return _refuse("module-tuf", f"tuf_{tuf.outcome}", f"tuf {tuf.role}: {tuf.reason}")
    return IntakeDecision(allowed=True)
