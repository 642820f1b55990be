"""The supply-chain rule: may this bundle enter the Cube? Pure: it judges what the intake found.

Order matters and is the order of the checks: TUF update metadata first (is this the bundle the
fleet currently publishes, from fresh, non-rolled-back metadata?), then the model-signing signature
over the files. Frozen or expired metadata is not just a refusal: it holds the Cube (safe mode, no
new bundles, the active one keeps serving) until fresh metadata verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from samantha.core.supply import IntakeFacts

RULES: dict[str, str] = {
    "tuf-required": "a Cube with a pinned TUF root takes only bundles that carry TUF metadata (tuf/)",
    "tuf-fresh": "frozen or expired TUF metadata refuses the bundle and holds the Cube in safe mode",
    "tuf-verified": "rolled-back, under-signed, malformed metadata or a target not listed/not matching is refused",
    "hold": "while held, a bundle is admitted only with fresh metadata (which lifts the hold)",
    "signature": "the model-signing signature must verify with a trusted key over every file",
    "tuf-stale": "metadata the Cube trusts that has expired holds the Cube as frozen metadata does, until fresh "
                 "metadata verifies",
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


def stale_trust(expires_at: Mapping[str, float | None], now: float) -> str | None:
    """Rule `tuf-stale`: why the supply is held although no bundle was refused (the freeze window passed with no
    fresh metadata), or None. `expires_at`: each trusted role's expiry (None: not trusted yet)."""
    gone = sorted(r for r, e in expires_at.items() if e is not None and now >= e)
    return f"tuf-stale: the Cube's trusted TUF metadata expired ({', '.join(gone)})" if gone else None
