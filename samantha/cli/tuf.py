"""`samantha tuf ...`: the fleet's TUF repository at the central site, and what a Cube's cache trusts."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json
from samantha.cube.bundle import SIGNATURE, BundleError, read_manifest
from samantha.cube.tuf_meta import TufCache, target_path, tuf_cache
from samantha.hub.tuf_repo import ROLES, TufRepository
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected

app = typer.Typer(no_args_is_help=True, help="TUF update metadata: the fleet repository and the Cube's cache.")

RepoOption = typer.Option(..., "--repo", help="the fleet TUF repository directory (keys/ and metadata/)")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command("status")
def status_cmd(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """What this Cube's TUF cache trusts: each role's version and expiry, the time floor, the supply hold.

    Exits 0, or 2 when no root is pinned (`twin.tuf_root`: TUF is not required on this Cube).
    """
    cfg = get_config(config)
    cache = tuf_cache(cfg)
    if cache is None:
        bad_input("twin.tuf_root is not set: this Cube does not require TUF metadata (signature only)")
    doc = cache.status()
    if json_out:
        print_json(doc)
        return
    console.print(f"TUF cache {doc['cache_dir']} (pinned root {doc['pinned_root']}), judged at "
                  f"{_when(doc['reference_time'])}")
    for role, r in doc["roles"].items():
        console.print(f"  {role:<9} " + ("not trusted yet" if r is None else
                      f"v{r['version']} expires {_when(r['expires_at'])}" + (" [red]EXPIRED[/red]" if r["expired"] else "")))
    hold = doc["hold"]
    console.print("supply hold: " + (f"[red]HELD[/red] since {_when(hold['since'])}: {hold['reason']}" if hold
                                     else "none"), highlight=False)


@app.command("check")
def check_cmd(bundle: Path = typer.Argument(..., help="a bundle directory (with its carried tuf/)"),
              config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """What this Cube's bundle intake would decide (TUF metadata, then the signature), on a scratch copy of the
    cache: nothing the Cube trusts changes. Exits 0 when it would be admitted, 1 naming the rule when refused."""
    cfg = get_config(config)
    cache = tuf_cache(cfg)
    if cache is None:
        bad_input("twin.tuf_root is not set: this Cube does not require TUF metadata (use samantha bundle verify)")
    with tempfile.TemporaryDirectory(prefix="tuf-check-") as tmp:
        scratch = Path(tmp) / "cache"
        if cache.dir.is_dir():
            shutil.copytree(cache.dir, scratch)
        intake = BundleCatalog(bundle.parent, cfg.resolve(cfg.twin.trusted_keys),
                               tuf=TufCache(scratch, cache.pinned_root))
        try:
            info = intake.verify(str(bundle))
        except BundleRejected as e:
            if json_out:
                print_json({"ok": False, "rule": e.rule, "kind": e.kind, "reason": e.reason})
            failure(f"{e.kind}: {e.reason}")
        status = intake.tuf.status() if intake.tuf is not None else {}
    out = {"ok": True, "label": info.label, "bundle_id": info.bundle_id,
           "versions": {r: v["version"] for r, v in status.get("roles", {}).items() if v}}
    print_json(out) if json_out else console.print(f"admitted {info.label} id={info.bundle_id[:16]} (TUF "
                                                   + ", ".join(f"{r} v{v}" for r, v in out["versions"].items()) + ")")


@app.command("init")
def init_cmd(repo: Path = RepoOption) -> None:
    """A new fleet repository: one ECDSA P-256 key per role; prints the root to pin on Cubes (`twin.tuf_root`)."""
    r = TufRepository(repo)
    if (r.meta_dir / "root.json").exists():
        bad_input(f"{repo} already holds a TUF repository")
    r.init()
    console.print(f"TUF repository at {repo}; pin {r.root_path} on each Cube as twin.tuf_root")


@app.command("publish")
def publish_cmd(bundle: Path = typer.Argument(..., help="a signed bundle directory"), repo: Path = RepoOption,
                timestamp_ttl_s: float | None = typer.Option(None, "--timestamp-ttl-s", min=1,
                                                             help="timestamp expiry (default 7 days)")) -> None:
    """List the bundle's model.sig as a target, re-sign targets/snapshot/timestamp, carry the metadata in tuf/."""
    r = open_repo(repo)
    try:
        m = read_manifest(bundle)
        sig = (bundle / SIGNATURE).read_bytes()
    except BundleError as e:
        bad_input(f"{bundle}: {e}")
    except OSError as e:
        bad_input(f"{bundle}: the bundle is not signed ({SIGNATURE}: {e.strerror})")
    r.add_target(target_path(m.name, m.version), sig)
    if timestamp_ttl_s is not None:
        r.refresh_timestamp(ttl=timedelta(seconds=timestamp_ttl_s))
    r.carry(bundle)
    console.print(f"published {target_path(m.name, m.version)}; metadata carried in {bundle / 'tuf'}")


@app.command("timestamp")
def timestamp_cmd(repo: Path = RepoOption, carry: list[Path] = typer.Option([], "--carry", help="bundle to carry "
                  "the fresh metadata into; repeatable"),
                  hub: str | None = typer.Option(None, "--hub", help="also publish the metadata beside the policy "
                                                 "module on this hub (nats://... or http://...)")) -> None:
    """A fresh timestamp (the freeze window restarts); carry it into the given bundles and publish it on the hub."""
    from samantha.cli.hub import push_tuf

    r = open_repo(repo)
    r.refresh_timestamp()
    for b in carry:
        r.carry(b)
    if hub:
        push_tuf(hub, r.metadata_set())
    console.print(f"timestamp v{r.load('timestamp').signed.version}" + (f", carried into {len(carry)} bundle(s)"
                                                                       if carry else "")
                  + (f", published on {hub}" if hub else ""))


@app.command("rotate")
def rotate_cmd(role: str = typer.Argument(..., help="root | targets | snapshot | timestamp"),
               repo: Path = RepoOption) -> None:
    """Replace a role's key in a new root version (signed by the old and new root keys): Cubes follow by
    themselves when the next bundle carries the metadata."""
    if role not in ROLES:
        bad_input(f"role: {role!r} is not one of {', '.join(ROLES)}")
    r = open_repo(repo)
    r.rotate(role)
    console.print(f"{role} key rotated; root is now v{r.load('root').signed.version}")


def open_repo(repo: Path) -> TufRepository:
    try:
        return TufRepository.existing(repo)
    except ValueError as e:
        bad_input(f"--repo: {e}")
