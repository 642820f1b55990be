"""Find and verify a bundle before a rollout: the controller's first check (the Cube checks again).

The bundle format lives with the twin (`samantha/cube/bundle.py`), which is also what
`samantha bundle verify` uses; this module is the one place `sre/` touches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.supply import SupplyPolicy
from samantha.cube.attestations import read_provenance
from samantha.cube.bundle import BundleError, VerifiedBundle, load_trusted_keys, read_manifest, verify_bundle
from samantha.kernel.supply import judge_provenance

_HEX = re.compile(r"^[0-9a-f]{8,64}$")


class BundleRejected(ValueError):
    """The bundle must not be rolled out. `kind`: not_found | ambiguous | malformed | unknown_key |
    bad_signature | tampered | expired | unattested | untrusted_builder | denied_component.
    `rule`: the kernel rule that refused (kernel/supply.py), when one did."""

    def __init__(self, kind: str, reason: str, rule: str | None = None):
        self.kind, self.reason, self.rule = kind, reason, rule
        super().__init__(f"{kind}: {reason}")


@dataclass(frozen=True)
class BundleInfo:
    path: str
    bundle_id: str
    label: str
    expires_at: float
    key_id: str
    attestations: dict[str, str] = field(default_factory=dict)  # carried SBOM/attestation file -> sha256 relied on


class BundleCatalog:
    """Resolves a bundle path, or a bundle id (>= 8 hex digits of its hash) under `bundles_dir`, and
    verifies signature (model-signing), files and expiry against the PEM keys in `trusted_keys`, then the SBOM
    and provenance it carries against `supply()` (the policy module's `supply` section; None: no requirement)."""

    def __init__(self, bundles_dir: str | Path, trusted_keys: str | Path, clock: Clock = REAL_CLOCK,
                 supply: Callable[[], SupplyPolicy | None] = lambda: None):
        self.bundles_dir, self.trusted_keys, self.clock = Path(bundles_dir), Path(trusted_keys), clock
        self.supply = supply

    def resolve(self, ref: str) -> Path:
        p = Path(ref)
        if not p.is_absolute() and not p.exists():
            p = self.bundles_dir / ref
        if p.is_dir():
            return p.absolute()
        if _HEX.match(ref):
            hits = []
            for d in sorted(self.bundles_dir.glob("*/")):
                try:
                    if read_manifest(d).bundle_id.startswith(ref):
                        hits.append(d)
                except BundleError:
                    continue
            if len(hits) == 1:
                return hits[0].absolute()
            if hits:
                raise BundleRejected("ambiguous", f"bundle id prefix {ref} matches {len(hits)} bundles")
        raise BundleRejected("not_found", f"no bundle directory {ref!r} and no bundle with that id under "
                                          f"{self.bundles_dir}")

    def verify(self, ref: str) -> BundleInfo:
        path = self.resolve(ref)
        try:
            vb = verify_bundle(path, load_trusted_keys(self.trusted_keys), clock=self.clock)
        except BundleError as e:
            raise BundleRejected(e.kind, str(e)) from None
        attestations = self.provenance(vb)
        return BundleInfo(path=str(vb.path), bundle_id=vb.bundle_id, label=vb.manifest.label,
                          expires_at=vb.manifest.expires_at.timestamp(), key_id=vb.key_id, attestations=attestations)

    def provenance(self, vb: VerifiedBundle) -> dict[str, str]:
        """The kernel's provenance rules over what the verified bundle carries; the digests it relied on."""
        try:
            facts = read_provenance(vb)
        except BundleError as e:
            raise BundleRejected(e.kind, str(e)) from None
        decision = judge_provenance(facts, self.supply())
        if not decision.allowed:
            raise BundleRejected(decision.kind, decision.reason, decision.rule)
        return facts.digests()
