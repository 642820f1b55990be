"""What the Cube's bundle intake found, as plain records: the facts the kernel's supply-chain rule judges.

The checks themselves run in `cube/` with the maintained libraries (python-tuf for update metadata,
model-signing for the bundle signature); the kernel only sees these outcomes, so its decision is pure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
