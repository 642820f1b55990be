"""Documents operators sign for a Cube: safe-mode overrides and approval decisions (pure checks).

Both are `signing.sign_document` JSON with a kind, the target cube, a nonce (never
accepted twice), `issued_at` and `expires_at`. The keys that may sign them, and for
what, come from the policy module's `operator_keys` (role `override` or `approve`).
They reach the Cube relayed by the hub (`/v1/cubes/{cube}/decisions`), embedded in a
policy module, or handed to the local CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from samantha.core.signing import KeyPair, PublicKey, SignatureError, sign_document, verify_document

OVERRIDE_KIND = "samantha/safe-mode-override"
DECISION_KIND = "samantha/approval-decision"
MAX_SKEW_S = 300.0
M = TypeVar("M", bound=BaseModel)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cube: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=8, max_length=128)
    operator: str = Field(min_length=1, max_length=200)
    issued_at: float = Field(gt=0)
    expires_at: float = Field(gt=0)
    reason: str = Field("", max_length=2000)


class SafeModeOverride(_Doc):
    kind: Literal["samantha/safe-mode-override"] = OVERRIDE_KIND


class ApprovalDecision(_Doc):
    kind: Literal["samantha/approval-decision"] = DECISION_KIND
    request_id: str = Field(min_length=1, max_length=200, description="the approval request it answers")
    decision: Literal["approve", "deny"]
    proposal_key: str | None = Field(None, max_length=200, description="binds it to the exact proposal, when set")


@dataclass(frozen=True)
class Checked:
    ok: bool
    reason: str = ""
    doc: SafeModeOverride | ApprovalDecision | None = None
    signer: str | None = None


def sign_operator_doc(body: dict[str, Any], key: KeyPair) -> dict[str, Any]:
    model = SafeModeOverride if body.get("kind") == OVERRIDE_KIND else ApprovalDecision
    model.model_validate(body)
    return sign_document(body, key)


def read_signed(raw: dict[str, Any], keys: dict[str, PublicKey], model: type[M]) -> tuple[str, M]:
    """The signer's key id and the document as `model`, signature first; ValueError names the field and why."""
    try:
        signer = verify_document(raw, keys)
    except SignatureError as e:
        raise ValueError(f"signature: {e}") from None
    try:
        doc = model.model_validate({k: v for k, v in raw.items() if k != "signature"})
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    return signer, doc


def check_operator_doc(raw: Any, *, cube: str, keys: dict[str, PublicKey], now: float, used_nonces: set[str],
                       max_lifetime_s: float | None = None) -> Checked:
    """Signature by one of `keys`, shape, target cube, nonce unused, within its validity window."""
    if not isinstance(raw, dict):
        return Checked(False, "not a JSON object")
    kind = raw.get("kind")
    model = {OVERRIDE_KIND: SafeModeOverride, DECISION_KIND: ApprovalDecision}.get(kind)  # type: ignore[arg-type]
    if model is None:
        return Checked(False, f"kind: unknown {kind!r}")
    try:
        signer, doc = read_signed(raw, keys, model)
    except ValueError as e:
        return Checked(False, str(e))
    if doc.cube != cube:
        return Checked(False, f"cube: addressed to {doc.cube!r}, this is {cube!r}")
    if doc.nonce in used_nonces:
        return Checked(False, "nonce: already used (replay)")
    if now >= doc.expires_at:
        return Checked(False, "expires_at: expired")
    if doc.issued_at > now + MAX_SKEW_S:
        return Checked(False, "issued_at: in the future")
    if max_lifetime_s is not None and doc.expires_at - doc.issued_at > max_lifetime_s:
        return Checked(False, f"expires_at: lasts more than {max_lifetime_s:.0f}s")
    return Checked(True, "", doc, signer)
