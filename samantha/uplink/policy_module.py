"""The policy module: the hub's signed desired state, and the Cube's checks before it applies one.

A module carries playbooks, gates, the rollout policy, trusted operator keys (with roles),
approval decisions, the bundle-expiry policy, what a bundle must carry to be loaded (`supply`: required
SLSA builder, denied SBOM components; judged by `kernel/supply.py: judge_provenance`), rollout Plans with
Constraints and, optionally, a fleet baseline. It is
signed (ed25519, `signing.sign_document`) by a hub key the Cube trusts, has a `version`
and an `expires_at`.

`PolicyStore.offer` accepts a module only if all of these hold, and otherwise refuses
it with a reason code and leaves the module in force untouched:
- it is signed by a trusted hub key and the signature verifies (`bad_signature`);
- every field validates (`invalid`, naming the field);
- its version is higher than the one in force (`rollback`); the same version with other
  content is `replay`, the same version with the same content is `unchanged` (no-op);
- it has not expired (`expired`) and was not issued in the future (`not_yet_valid`);
- its signed `channels` include the Cube's release channel (`wrong_channel`): a module copied onto
  another channel's subject by anyone but the root does not apply there (an empty list: any channel).
Applying is atomic: the new file is written under a temporary name, fsynced and renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from samantha.core.fleet import TOKEN_RE
from samantha.core.fsutil import atomic_write
from samantha.core.signing import (
    KeyPair,
    PublicKey,
    SignatureError,
    canonical_json,
    sha256_hex,
    sign_document,
    verify_document,
)
from samantha.core.supply import SupplyPolicy
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.spec import Gate
from samantha.kernel.plans import Plan
from samantha.playbooks import Playbook

MODULE_KIND = "samantha/policy-module"
MAX_CLOCK_SKEW_S = 300.0
Role = Literal["approve", "override"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorKey(_M):
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(description="base64 raw ed25519 public key")
    roles: list[Role] = Field(min_length=1, description="approve: approval decisions; override: leave safe mode")

    @model_validator(mode="after")
    def _key(self) -> OperatorKey:
        try:
            PublicKey.from_b64(self.public_key)
        except SignatureError as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def key(self) -> PublicKey:
        return PublicKey.from_b64(self.public_key)


class BundleExpiryPolicy(_M):
    min_remaining_s: float = Field(86400.0, ge=0, description="a bundle closer than this to expiry is stale")
    refuse_expired: bool = Field(True, description="never load a bundle past its expiry")


class FleetBaseline(_M):
    divergence_mean: float = Field(ge=0, description="the fleet's mean shadow divergence for the active bundle")
    max_divergence: float | None = Field(None, ge=0, description="allowed |local - fleet|; else the Cube's config")


class PolicyModule(_M):
    kind: Literal["samantha/policy-module"] = MODULE_KIND
    version: int = Field(ge=1)
    issued_at: float = Field(gt=0, description="wall time, epoch seconds")
    expires_at: float = Field(gt=0, description="after this the Cube enters safe mode")
    fleet: str = Field("default", min_length=1, max_length=200)
    channels: list[Annotated[str, StringConstraints(pattern=TOKEN_RE.pattern)]] = Field(
        default_factory=list, max_length=32,
        description="the release channels the root released this module to (signed: `samantha hub publish` "
                    "names the first, `hub promote` adds the next); a Cube applies it only on one of them. "
                    "Empty: a module from before channels, applied on any")
    description: str = ""
    playbooks: list[Playbook] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    rollout_policy: RolloutPolicy | None = None
    operator_keys: list[OperatorKey] = Field(default_factory=list)
    approval_decisions: list[dict[str, Any]] = Field(default_factory=list, description="signed decisions")
    bundle_expiry: BundleExpiryPolicy = BundleExpiryPolicy()
    fleet_baseline: FleetBaseline | None = None
    supply: SupplyPolicy | None = Field(None, description="what a bundle must carry (SBOM, provenance) to load")
    plans: list[Plan] = Field(default_factory=list, description="rollouts to start when their constraints hold "
                              "(samantha/kernel/plans.py)")

    @model_validator(mode="after")
    def _times(self) -> PolicyModule:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        ids = [p.id for p in self.plans]
        if len(ids) != len(set(ids)):
            raise ValueError(f"plans: ids must be unique, got {ids}")
        return self

    def operators(self, role: Role) -> dict[str, PublicKey]:
        return {k.key.key_id: k.key for k in self.operator_keys if role in k.roles}


def sign_module(body: dict[str, Any], key: KeyPair) -> dict[str, Any]:
    """Validate a module body, then sign it (the hub side of `samantha hub publish`)."""
    body = {k: v for k, v in body.items() if k != "signature"}
    body.setdefault("kind", MODULE_KIND)
    PolicyModule.model_validate(body)
    return sign_document(body, key)


class PromotionRefused(ValueError):
    """The module cannot be promoted as it stands (another root's signature, not released to the source)."""


def promote_module(doc: dict[str, Any], source: str, target: str, key: KeyPair, now: float) -> dict[str, Any]:
    """The root's act of promotion: the module released to `source`, verified with `key` (only what this root
    signed is promoted), re-signed with `target` added to its signed `channels`."""
    offer, inst = verified(doc, {key.public.key_id: key.public})
    if inst is None:
        raise PromotionRefused(f"the module on {source!r} does not verify with this root key: {offer.reason}")
    m = inst.module
    if m.channels and source not in m.channels:
        raise PromotionRefused(f"the module on {source!r} was not released to it (channels {m.channels})")
    if m.expires_at <= now:
        raise PromotionRefused(f"the module on {source!r} (v{m.version}) has expired; publish a fresh one")
    body = {k: v for k, v in doc.items() if k != "signature"}
    body["channels"] = [*(m.channels or [source]), *([] if target in m.channels else [target])]
    return sign_module(body, key)


@dataclass(frozen=True)
class Installed:
    doc: dict[str, Any]
    module: PolicyModule
    sha256: str
    signer: str


@dataclass(frozen=True)
class Offer:
    status: Literal["applied", "unchanged", "refused"]
    reason: str = ""
    code: str = ""
    version: int | None = None
    field: str | None = None

    @property
    def refused(self) -> bool:
        return self.status == "refused"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def doc_sha(doc: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(doc))


def tuf_target(channel: str) -> str:
    """The TUF target the module released on `channel` is listed as (one per channel: only the module the fleet
    publishes now passes, not an older one still signed). Its bytes are the signed document's canonical JSON,
    on the hub (`samantha hub publish --tuf-repo`) and on the Cube."""
    return f"policy/{channel}.json"


def verified(doc: Any, trusted: dict[str, PublicKey]) -> tuple[Offer, Installed | None]:
    """Signature and schema only: what every installed or offered module must pass."""
    if not isinstance(doc, dict):
        return Offer("refused", "a policy module is a JSON object", "invalid"), None
    version = doc.get("version") if isinstance(doc.get("version"), int) else None
    try:
        signer = verify_document(doc, trusted)
    except SignatureError as e:
        return Offer("refused", f"signature: {e}", "bad_signature", version, "signature"), None
    try:
        module = PolicyModule.model_validate({k: v for k, v in doc.items() if k != "signature"})
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return Offer("refused", f"{where}: {err['msg']}", "invalid", version, where), None
    return Offer("applied", "", "", module.version), Installed(doc, module, doc_sha(doc), signer)


def check(doc: Any, trusted: dict[str, PublicKey], current: Installed | None, now: float,
          channel: str | None = None) -> tuple[Offer, Installed | None]:
    """Pure: the verdict on an offered module (and the module when it would be applied) for a Cube on `channel`."""
    offer, new = verified(doc, trusted)
    if new is None:
        return offer, None
    module = new.module
    if channel is not None and module.channels and channel not in module.channels:
        return Offer("refused", f"released to {module.channels}, not to this Cube's channel {channel!r} "
                     "(promotion is a signed act at the root: samantha hub promote)", "wrong_channel",
                     module.version, "channels"), None
    if current is not None:
        if module.version < current.module.version:
            return Offer("refused", f"version {module.version} is older than {current.module.version} in force",
                         "rollback", module.version, "version"), None
        if module.version == current.module.version:
            if new.sha256 == current.sha256:
                return Offer("unchanged", "already in force", "unchanged", module.version), None
            return Offer("refused", f"version {module.version} is in force with other content",
                         "replay", module.version, "version"), None
    if module.expires_at <= now:
        return Offer("refused", f"expired {now - module.expires_at:.0f}s ago", "expired", module.version,
                     "expires_at"), None
    if module.issued_at > now + MAX_CLOCK_SKEW_S:
        return Offer("refused", f"issued {module.issued_at - now:.0f}s in the future", "not_yet_valid",
                     module.version, "issued_at"), None
    return offer, new


class PolicyStore:
    """The module in force, on disk at `<dir>/policy/current.json` (the last good one until a better)."""

    def __init__(self, directory: str | Path, trusted: dict[str, PublicKey], channel: str | None = None) -> None:
        self.dir = Path(directory) / "policy"
        self.trusted, self.channel = trusted, channel
        self._current = self._load()

    @property
    def path(self) -> Path:
        return self.dir / "current.json"

    def _load(self) -> Installed | None:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        # Re-verified on every start: a file edited on disk is not in force.
        offer, inst = verified(doc, self.trusted)
        if inst is None:
            raise SignatureError(f"{self.path}: the installed policy module no longer verifies: {offer.reason}")
        return inst

    def current(self) -> Installed | None:
        return self._current

    def offer(self, doc: Any, now: float) -> Offer:
        offer, inst = check(doc, self.trusted, self._current, now, self.channel)
        if inst is not None:
            data = json.dumps(inst.doc, sort_keys=True, indent=1).encode()
            atomic_write(self.dir / "history" / f"v{inst.module.version}.json", data)
            atomic_write(self.path, data)
            self._current = inst
        return offer

    def info(self, now: float) -> dict[str, Any]:
        c = self._current
        if c is None:
            return {"installed": False, "path": str(self.path)}
        m = c.module
        return {"installed": True, "version": m.version, "fleet": m.fleet, "channels": m.channels,
                "issued_at": m.issued_at,
                "expires_at": m.expires_at, "age_s": round(now - m.issued_at, 1),
                "expires_in_s": round(m.expires_at - now, 1), "expired": now >= m.expires_at, "sha256": c.sha256,
                "signer": c.signer, "playbooks": [p.name for p in m.playbooks], "gates": [g.name for g in m.gates],
                "rollout_policy": m.rollout_policy.name if m.rollout_policy else None,
                "operator_keys": [{"name": k.name, "key_id": k.key.key_id, "roles": k.roles} for k in m.operator_keys],
                "approval_decisions": len(m.approval_decisions), "bundle_expiry": m.bundle_expiry.model_dump(),
                "fleet_baseline": m.fleet_baseline.model_dump() if m.fleet_baseline else None,
                "supply": m.supply.model_dump() if m.supply else None,
                "path": str(self.path)}
