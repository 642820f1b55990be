"""Find and verify a bundle before a rollout: the controller's first check (the Cube checks again).

The bundle format lives with the twin (`samantha/cube/bundle.py`), which is also what
`samantha bundle verify` uses; this module is the one place `sre/` touches it. It gathers the intake's
facts (TUF metadata through the Cube's `TufCache` when a root is pinned, the model-signing signature) and
the kernel's `judge_intake` decides, then the kernel's `judge_provenance` over the SBOM and attestations the
bundle carries. Every refusal and change of the supply hold is reported here (`on_event`: audited and alerted
by the daemon), once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.supply import IntakeFacts, SignatureFacts, SupplyHold, SupplyPolicy, TufFacts
from samantha.cube.attestations import read_provenance
from samantha.cube.bundle import (
    MAX_FILE_BYTES,
    TUF_DIR,
    BundleError,
    VerifiedBundle,
    load_trusted_keys,
    read_manifest,
    verify_bundle,
)
from samantha.cube.tuf_meta import TufCache
from samantha.kernel.supply import IntakeDecision, judge_intake, judge_provenance, stale_trust

# what the intake reports: ("bundle_refused" | "supply_hold_set" | "supply_hold_cleared" | "tuf_verified", record)
IntakeEvent = Callable[[str, dict[str, Any]], None]

_HEX = re.compile(r"^[0-9a-f]{8,64}$")


class BundleRejected(ValueError):
    """The bundle must not be rolled out. `kind`: not_found | ambiguous | malformed | unknown_key |
    bad_signature | tampered | expired | rollback | frozen | below_threshold | unattested | untrusted_builder |
    denied_component. `rule`: the kernel's supply rule that refused (samantha/kernel/supply.py), None for a bundle
    not found or an unreadable SBOM/attestation. `reported`: the intake already audited and alerted it."""

    def __init__(self, kind: str, reason: str, rule: str | None = None, *, reported: bool = False):
        self.kind, self.reason, self.rule, self.reported = kind, reason, rule, reported
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
    verifies signature (model-signing), files and expiry against the PEM keys in `trusted_keys`, and the
    carried TUF metadata against the Cube's `tuf` cache (None: no pinned root, signature only), then the SBOM
    and provenance it carries against `supply()` (the policy module's `supply` section; None: no requirement)."""

    def __init__(self, bundles_dir: str | Path, trusted_keys: str | Path, clock: Clock = REAL_CLOCK, *,
                 tuf: TufCache | None = None, on_event: IntakeEvent | None = None,
                 supply: Callable[[], SupplyPolicy | None] = lambda: None, max_file_bytes: int = MAX_FILE_BYTES):
        self.bundles_dir, self.trusted_keys, self.clock = Path(bundles_dir), Path(trusted_keys), clock
        self.max_file_bytes = max_file_bytes
        self.tuf, self.on_event, self.supply = tuf, on_event, supply

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

    def _tuf_facts(self, path: Path) -> TufFacts | None:
        if self.tuf is None:
            return None
        try:
            m = read_manifest(path)
        except BundleError as e:
            if (path / TUF_DIR / "timestamp.json").is_file():  # metadata carried, but no target to look up
                return TufFacts(outcome="malformed", role="target", reason=f"cannot name the target: {e}")
            return self.tuf.check(path, "?", "?")  # absent: the name is not needed
        return self.tuf.check(path, m.name, m.version)

    def verify(self, ref: str) -> BundleInfo:
        path = self.resolve(ref)
        tuf = self._tuf_facts(path)
        vb: VerifiedBundle | None = None
        try:
            vb = verify_bundle(path, load_trusted_keys(self.trusted_keys), clock=self.clock,
                               max_file_bytes=self.max_file_bytes)
            sig = SignatureFacts(outcome="ok", bundle_id=vb.bundle_id)
        except BundleError as e:
            kind = e.kind if e.kind in ("malformed", "unknown_key", "bad_signature", "tampered", "expired") \
                else "malformed"
            sig = SignatureFacts(outcome=kind, reason=str(e))
        hold = self.tuf.hold() if self.tuf is not None else None
        d = judge_intake(IntakeFacts(tuf_required=self.tuf is not None, tuf=tuf, signature=sig, hold=hold))
        self._apply_hold(d, path, hold)
        if tuf is not None and tuf.outcome == "ok":  # what the admission relied on; the trusted state is fresh now
            self._report("tuf_verified", {"bundle": str(path), "target": tuf.target, "versions": tuf.versions})
        if not d.allowed:
            raise self._refused(path, d.kind, f"{d.reason} (supply rule {d.rule})", d.rule,
                                tuf=tuf.model_dump() if tuf else None)
        assert vb is not None  # admitted only with a verified signature
        attestations = self._provenance(path, vb)
        return BundleInfo(path=str(vb.path), bundle_id=vb.bundle_id, label=vb.manifest.label,
                          expires_at=vb.manifest.expires_at.timestamp(), key_id=vb.key_id, attestations=attestations)

    def _provenance(self, path: Path, vb: VerifiedBundle) -> dict[str, str]:
        """The kernel's provenance rules over what the verified bundle carries; the digests it relied on."""
        try:
            facts = read_provenance(vb)
        except BundleError as e:
            raise self._refused(path, e.kind, str(e), None) from None
        d = judge_provenance(facts, self.supply())
        if not d.allowed:
            raise self._refused(path, d.kind, d.reason, d.rule)
        return facts.digests()

    def _refused(self, path: Path, kind: str, reason: str, rule: str | None, **extra: Any) -> BundleRejected:
        self._report("bundle_refused", {"bundle": str(path), "rule": rule, "kind": kind, "reason": reason, **extra})
        return BundleRejected(kind, reason, rule, reported=self.on_event is not None)

    def supply_hold(self) -> str | None:
        """Why the Cube's supply is held (the uplink's safe mode reads it), or None: the kernel's hold set at the
        intake, else the kernel's `tuf-stale` rule over what the cache trusts."""
        if self.tuf is None:
            return None
        hold = self.tuf.hold()
        if hold is not None:
            return hold.reason
        st = self.tuf.status()
        return stale_trust({r: v["expires_at"] if v else None for r, v in st["roles"].items()}, st["reference_time"])

    def _apply_hold(self, d: IntakeDecision, path: Path, prev: SupplyHold | None) -> None:
        if self.tuf is None or d.hold == "keep":
            return
        if d.hold == "set":
            new = SupplyHold(reason=d.reason, since=prev.since if prev else self.clock.time())
            self.tuf.set_hold(new)
            self._report("supply_hold_set", {"bundle": str(path), **new.model_dump()})
        else:
            self.tuf.set_hold(None)
            self._report("supply_hold_cleared", {"bundle": str(path), "held_since": prev.since if prev else None,
                                                 "because": "fresh TUF metadata verified"})

    def _report(self, event: str, record: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event, record)
