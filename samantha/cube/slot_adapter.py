"""Slot lifecycle adapters: how the cube runtime loads a verified bundle into a slot and checks its health.

The runtime (router + control API) owns quarantine, safe mode, idempotency and persisted state, the
same for every adapter; an adapter only knows its server: verify a bundle for it, load it, report
health. The twin's toy slots are one kind, a Triton repository another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from samantha.cube.bundle import BundleError, VerifiedBundle


class SlotLoadError(Exception):
    """A load that did not take: `code` for the API error, `reason` naming the field or server answer."""

    def __init__(self, code: str, reason: str, *, status: int = 422, field: str = "bundle"):
        self.code, self.reason, self.status, self.field = code, reason, status, field
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Loaded:
    """What the router needs to send traffic to a loaded slot."""

    path: str  # the inference path on the slot's server
    contract: Any  # the declared outputs the answers are checked against (None: not checked)
    detail: str = ""


class SlotAdapter(Protocol):
    def verify(self, path: Path) -> VerifiedBundle: ...

    async def load(self, vb: VerifiedBundle) -> Loaded: ...

    async def health(self) -> tuple[bool, str | None]: ...

    async def close(self) -> None: ...


async def restore_slot(adapter: SlotAdapter, path: Path) -> tuple[VerifiedBundle, Loaded] | None:
    """After a runtime restart, verify and load again what the slot last served (None when nothing usable:
    the slot starts empty rather than serve what no longer verifies)."""
    try:
        vb = adapter.verify(path)
        return vb, await adapter.load(vb)
    except (BundleError, SlotLoadError):
        return None
