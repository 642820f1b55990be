"""TUF update metadata carried with a bundle (sneakernet), verified by python-tuf's own client.

A bundle may carry `tuf/`: the fleet repository's metadata as the hub published it (every
`N.root.json` since the Cube's root, `timestamp.json`, `snapshot.json`, `targets.json`). The
Cube runs the standard TUF client workflow (`tuf.ngclient.Updater`) against that directory with
a fetcher that reads files instead of URLs, starting from its own trusted cache (the pinned
root, and the newest timestamp/snapshot/targets it has accepted, which is what refuses a
rollback). The target is `<name>-<version>/model.sig`: the signature file whose statement covers
every other file, so TUF pins the exact signed bundle and model-signing then checks the files.
`check_target` runs the same workflow over a metadata set a fleet transport carried beside another target (the
policy module: `uplink/service.py`), against the same trusted state.

Time: expiry is judged at max(the wall clock, the highest wall time this cache has seen). A clock
that falls back (dead RTC, bad NTP) cannot revive expired metadata; one that runs ahead makes
metadata expire early, which fails safe (the Cube holds, keeps serving, and waits for fresh
metadata). See docs/supply-chain.md.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.fsutil import atomic_write
from samantha.core.supply import SupplyHold, TufFacts
from samantha.cube.bundle import SIGNATURE, TUF_DIR

_BASE = "file:///carried-metadata/"
_STATE = "intake.json"  # time floor and supply hold, beside the client's metadata cache


def target_path(name: str, version: str) -> str:
    return f"{name}-{version}/model.sig"


MetadataSet = Mapping[str, bytes]  # a repository's metadata files by name, as a fleet transport carries them


def _fetcher(read: Callable[[str], bytes | None], where: str):
    from tuf.api import exceptions
    from tuf.ngclient import FetcherInterface

    class CarriedFetcher(FetcherInterface):
        """Serves the carried metadata; a file it lacks is a 404 (the end of the root chain)."""

        def _fetch(self, url: str) -> Iterator[bytes]:
            name = url.removeprefix(_BASE)
            data = None if "/" in name else read(name)
            if data is None:
                raise exceptions.DownloadHTTPError(f"{where}/{name} is not carried", 404)
            return iter([data])

    return CarriedFetcher()


def parse_metadata_set(doc: Any) -> dict[str, bytes]:
    """`{"files": {"timestamp.json": "<metadata JSON text>", ...}}` (what the hub serves beside a policy module)
    into a metadata set; a ValueError names the field."""
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        raise ValueError("files: the TUF metadata set must be an object of file name -> metadata text")
    out: dict[str, bytes] = {}
    for name, text in files.items():
        if not isinstance(text, str) or not isinstance(name, str) or "/" in name or not name.endswith(".json"):
            raise ValueError(f"files.{name}: must be a metadata file name (*.json) with its JSON text")
        out[name] = text.encode()
    return out


class TufCache:
    """The Cube's trusted TUF state: a pinned root (provisioned), the client's cache, a time floor."""

    def __init__(self, cache_dir: str | Path, pinned_root: str | Path, clock: Clock = REAL_CLOCK):
        self.dir, self.pinned_root, self.clock = Path(cache_dir), Path(pinned_root), clock
        self._parsed: dict[str, tuple[tuple[str, int, int, int], dict | None]] = {}  # role -> (file stat key, summary)
        self.parses = 0  # metadata files parsed by status(): what the cache saves
        self._lock = threading.Lock()

    # -- persisted intake state -------------------------------------------------------------
    def _state(self) -> dict:
        try:
            doc = json.loads((self.dir / _STATE).read_text())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, doc: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / _STATE, json.dumps(doc, sort_keys=True).encode())

    def reference_time(self) -> float:
        """max(wall clock, the highest wall time seen), and raise the floor to it."""
        doc = self._state()
        ref = max(self.clock.time(), float(doc.get("time_floor", 0.0)))
        if ref != doc.get("time_floor"):
            self._save({**doc, "time_floor": ref})
        return ref

    def hold(self) -> SupplyHold | None:
        h = self._state().get("hold")
        try:
            return SupplyHold.model_validate(h) if h else None
        except ValueError:
            return SupplyHold(reason="unreadable hold record", since=0.0)

    def set_hold(self, hold: SupplyHold | None) -> None:
        self._save({**self._state(), "hold": hold.model_dump() if hold else None})

    def status(self) -> dict:
        """What this cache trusts: each role's version and expiry (as verified when stored), the time floor and
        the hold. A role not yet trusted is null (before the first check only the pinned root is known)."""
        ref = max(self.clock.time(), float(self._state().get("time_floor", 0.0)))
        roles: dict[str, dict | None] = {}
        for role in ("root", "timestamp", "snapshot", "targets"):
            p = self.dir / f"{role}.json"
            if role == "root" and not p.exists():
                p = self.pinned_root
            r = self._role(role, p)
            roles[role] = None if r is None else {**r, "expired": ref >= r["expires_at"]}
        hold = self.hold()
        return {"cache_dir": str(self.dir), "pinned_root": str(self.pinned_root), "reference_time": ref,
                "roles": roles, "hold": hold.model_dump() if hold else None}

    def _role(self, role: str, p: Path) -> dict | None:
        """A role's version, expiry (and targets), parsed again only when the file's (mtime_ns, size, inode) changed:
        the uplink reads the status every tick and the metadata changes only at an intake."""
        from tuf.api.metadata import Metadata

        try:
            st = p.stat()
        except OSError:
            self._parsed.pop(role, None)
            return None
        key = (str(p), st.st_mtime_ns, st.st_size, st.st_ino)  # inode: a rename within one mtime tick
        hit = self._parsed.get(role)
        if hit is not None and hit[0] == key:
            return hit[1]
        self.parses += 1
        try:
            md = Metadata.from_bytes(p.read_bytes())
            r: dict | None = {"version": md.signed.version, "expires_at": md.signed.expires.timestamp(),
                              **({"targets": sorted(md.signed.targets)} if role == "targets" else {})}
        except (OSError, ValueError, KeyError, TypeError):
            r = None
        self._parsed[role] = (key, r)
        return r

    # -- the check ----------------------------------------------------------------------------
    def check(self, bundle_dir: str | Path, name: str, version: str) -> TufFacts:
        """Run the TUF client workflow over the bundle's carried metadata; never raises for bad metadata."""
        carried = Path(bundle_dir) / TUF_DIR
        target = target_path(name, version)
        if not (carried / "timestamp.json").is_file():
            return TufFacts(outcome="absent", role="timestamp", reason=f"no {TUF_DIR}/timestamp.json", target=target)

        def read(n: str) -> bytes | None:
            p = carried / n
            return p.read_bytes() if p.is_file() else None

        return self._verify(read, TUF_DIR, target, lambda: open(Path(bundle_dir) / SIGNATURE, "rb"))

    def check_target(self, metadata: MetadataSet | None, target: str, data: bytes) -> TufFacts:
        """The same workflow over a metadata set a fleet transport carried (e.g. beside a policy module): `data`
        must be the listed target `target`, length and hashes."""
        if not metadata or "timestamp.json" not in metadata:
            return TufFacts(outcome="absent", role="timestamp", target=target,
                            reason="no timestamp.json carried with the metadata")
        return self._verify(metadata.get, "carried", target, lambda: io.BytesIO(data))

    def _verify(self, read: Callable[[str], bytes | None], where: str, target: str,
                open_target: Callable[[], BinaryIO]) -> TufFacts:
        with self._lock:  # the daemon's intake and the uplink share one trusted state
            return self._verify_locked(read, where, target, open_target)

    def _verify_locked(self, read: Callable[[str], bytes | None], where: str, target: str,
                       open_target: Callable[[], BinaryIO]) -> TufFacts:
        from tuf.api import exceptions as tx
        from tuf.ngclient import Updater

        self.dir.mkdir(parents=True, exist_ok=True)
        ref = self.reference_time()
        role = "root"
        try:
            bootstrap = None if (self.dir / "root.json").exists() else self.pinned_root.read_bytes()
            up = Updater(str(self.dir), _BASE, fetcher=_fetcher(read, where), bootstrap=bootstrap)
            # private hooks of tuf==7.0.1 (pinned; these tests break on an upgrade, not silently):
            # python-tuf reads datetime.now(), the Cube judges expiry at its floor; and the steps of
            # refresh() one by one, in refresh()'s order, so a refusal names the role that failed
            up._trusted_set.reference_time = datetime.fromtimestamp(ref, UTC)
            for name, step in (("root", up._load_root), ("timestamp", up._load_timestamp),
                               ("snapshot", up._load_snapshot), ("targets", lambda: up._load_targets("targets", "root"))):
                role = name
                step()
            role = "targets"
            info = up.get_targetinfo(target)
            versions = {r: up._trusted_set[r].version for r in ("root", "timestamp", "snapshot", "targets")}
            if info is None:
                return TufFacts(outcome="not_listed", role="targets", target=target, versions=versions,
                                reason=f"{target} is not a target of the fleet repository", reference_time=ref)
            role = "target"
            with open_target() as fh:
                info.verify_length_and_hashes(fh)
        except tx.ExpiredMetadataError as e:
            role = "root" if str(e).startswith("Final root") else role  # checked while loading the timestamp
            return TufFacts(outcome="frozen" if role == "timestamp" else "expired", role=role, target=target,
                            reason=f"{e} (judged at {datetime.fromtimestamp(ref, UTC).isoformat()})",
                            reference_time=ref)
        except tx.BadVersionNumberError as e:
            return TufFacts(outcome="rollback", role=role, reason=str(e), target=target, reference_time=ref)
        except tx.UnsignedMetadataError as e:
            return TufFacts(outcome="below_threshold", role=role, reason=str(e), target=target, reference_time=ref)
        except tx.LengthOrHashMismatchError as e:
            return TufFacts(outcome="tampered", role=role, reason=str(e), target=target, reference_time=ref)
        except tx.DownloadError as e:
            return TufFacts(outcome="malformed", role=role, reason=str(e), target=target, reference_time=ref)
        except (tx.RepositoryError, ValueError, KeyError, TypeError) as e:
            # a file that is not metadata, a missing field, a wrong type: python-tuf's message names it
            return TufFacts(outcome="malformed", role=role, reason=f"{type(e).__name__}: {e}", target=target,
                            reference_time=ref)
        except OSError as e:
            return TufFacts(outcome="malformed", role=role, reason=f"cannot read: {e.strerror or e}", target=target,
                            reference_time=ref)
        return TufFacts(outcome="ok", role=None, target=target, versions=versions, reference_time=ref,
                        reason=f"{target} listed in targets v{versions['targets']} (timestamp "
                               f"v{versions['timestamp']}, root v{versions['root']})")


def tuf_cache(config: SamanthaConfig, clock: Clock = REAL_CLOCK) -> TufCache | None:
    """The Cube's cache when a root is pinned (`twin.tuf_root`); None: TUF not required (signature only)."""
    t = config.twin
    return TufCache(config.resolve(t.tuf_cache), config.resolve(t.tuf_root), clock) if t.tuf_root else None


def carried_metadata(bundle_dir: str | Path) -> list[str]:
    d = Path(bundle_dir) / TUF_DIR
    return sorted(os.listdir(d)) if d.is_dir() else []
