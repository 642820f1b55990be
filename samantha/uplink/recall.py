"""The Recall document: the root's signed order that one bundle must not serve anywhere (pure checks).

    {"kind": "samantha/recall", "bundle_id": "<64 hex>", "nonce": "...", "issued_at": 1.7e9,
     "operator": "ana", "reason": "NaN outputs on 3 sites", "signature": {...}}

Signed with `signing.sign_document` by a hub key, the same keys a Cube trusts for policy modules
(`uplink.hub_keys`): a Recall is desired state from the root, like a module. It has no expiry (a bad bundle
stays bad) and is idempotent per bundle: applying it twice changes nothing, so a replayed document is
answered "already applied", never acted on again. Published on `samantha.recall.<bundle id>` (stream
SAMANTHA_RECALL, last value per bundle, no age limit), so a Cube offline for months still gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.signing import KeyPair, PublicKey, sign_document
from samantha.uplink.operator_docs import read_signed

RECALL_KIND = "samantha/recall"
MAX_SKEW_S = 300.0


class Recall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["samantha/recall"] = RECALL_KIND
    bundle_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="the bundle's id (sha256 of its manifest)")
    nonce: str = Field(min_length=8, max_length=128)
    issued_at: float = Field(gt=0)
    operator: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


@dataclass(frozen=True)
class CheckedRecall:
    ok: bool
    reason: str = ""
    doc: Recall | None = None
    signer: str | None = None


def sign_recall(body: dict[str, Any], key: KeyPair) -> dict[str, Any]:
    """Validate then sign (a ValidationError names the field)."""
    Recall.model_validate(body)
    return sign_document(body, key)


def check_recall(raw: Any, *, keys: dict[str, PublicKey], now: float) -> CheckedRecall:
    """Signed by a trusted hub key, well-formed, not issued in the future."""
    if not isinstance(raw, dict):
        return CheckedRecall(False, "not a JSON object")
    if raw.get("kind") != RECALL_KIND:
        return CheckedRecall(False, f"kind: expected {RECALL_KIND!r}, got {raw.get('kind')!r}")
    try:
        signer, doc = read_signed(raw, keys, Recall)
    except ValueError as e:
        return CheckedRecall(False, str(e))
    if doc.issued_at > now + MAX_SKEW_S:
        return CheckedRecall(False, "issued_at: in the future")
    return CheckedRecall(True, "", doc, signer)
