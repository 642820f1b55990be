"""Act: the Cube's bundle intake under TUF. The fleet's TUF repository (python-tuf) publishes a signed bundle;
the daemon's intake (`BundleCatalog.verify`, the kernel's `judge_intake`) admits it, refuses a bundle without
metadata (with the upgrade path), a replayed older metadata copy (rollback) and a freeze (an expired timestamp,
which also holds the supply: safe mode), and lifts the hold on fresh metadata. Then policy modules under the same
repository: the uplink applies the module the metadata lists and refuses one it does not (the kernel's `module-tuf`),
the listed one keeping governance. In-process, a few seconds."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta

from samantha.core.config import TwinConfig, UplinkConfig
from samantha.core.signing import KeyPair, canonical_json, trust_public_key
from samantha.cube.bundle import SIGNATURE, SigningKey
from samantha.cube.tuf_meta import TufCache, target_path
from samantha.hub.tuf_repo import TufRepository
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
from samantha.twin.toy_bundle import build_bundle
from samantha.uplink.local import local_service
from samantha.uplink.policy_module import sign_module, tuf_target

TITLE = "Supply chain: bundles under TUF metadata (rollback and freeze refused)"


def run(ctx) -> None:
    con, root = ctx.console, ctx.workdir / "supply"
    repo = TufRepository(root / "fleet-tuf")
    repo.init()
    key = SigningKey.generate(root / "keys" / "publisher.pem")
    events: list[str] = []
    cache = TufCache(root / "cube-tuf", repo.root_path)
    intake = BundleCatalog(root / "bundles", f"{key.path}.pub", tuf=cache, on_event=lambda e, r: events.append(e))

    def bundle(name: str, publish: bool = True):
        d = root / "bundles" / name
        build_bundle(d, name="sensor-mlp", version=name, key=key)
        if publish:
            repo.add_target(target_path("sensor-mlp", name), (d / SIGNATURE).read_bytes())
            repo.carry(d)
        return d

    def attempt(what: str, d) -> str:
        try:
            info = intake.verify(str(d))
            con.print(f"  [green]admitted[/green] {what}: {info.label}")
            return "ok"
        except BundleRejected as e:
            con.print(f"  [red]refused[/red]  {what}: [bold]{e.kind}[/bold] ({e.rule}) "
                      f"{e.reason.removesuffix(f' (supply rule {e.rule})')[:170]}", highlight=False)
            return e.kind

    got = [attempt("signed, no TUF metadata", bundle("1", publish=False))]
    v2 = bundle("2")
    shutil.copytree(v2, root / "bundles" / "replay")  # an attacker keeps this metadata
    repo.refresh_timestamp()
    repo.carry(v2)
    got.append(attempt("published and carried (timestamp v3)", v2))
    got.append(attempt("replayed older metadata (timestamp v2)", root / "bundles" / "replay"))
    repo.refresh_timestamp(ttl=timedelta(seconds=1))
    repo.carry(v2)
    time.sleep(1.2)  # the carried timestamp expires: a freeze
    got.append(attempt("frozen metadata (expired timestamp)", v2))
    held = cache.hold() is not None
    con.print(f"  supply hold: {'[red]HELD[/red] (the uplink enters safe mode, last-known-good keeps serving)' if held else 'none'}")
    repo.refresh_timestamp()
    repo.carry(v2)
    got.append(attempt("fresh metadata", v2))
    lifted = cache.hold() is None
    con.print(f"  supply hold: {'lifted' if lifted else 'still held'}; audited events: {', '.join(events)}")
    if got != ["malformed", "ok", "rollback", "frozen", "ok"] or not held or not lifted:
        raise RuntimeError(f"the TUF intake did not behave: {got}, held={held}, lifted={lifted}")
    ctx.facts["tuf_intake"] = "no metadata, rollback and freeze refused; the freeze held the Cube, fresh metadata lifted it"
    _modules(ctx, repo, cache)


def _modules(ctx, repo: TufRepository, cache: TufCache) -> None:
    """The same repository lists the policy module each channel runs; the Cube's uplink (one trusted TUF state with
    the intake above) applies only a listed module, whatever its signature."""
    con, root = ctx.console, ctx.workdir / "supply"
    cfg = ctx.config.model_copy(update={
        "data_dir": str(root / "cube"), "uplink": UplinkConfig(cube_id="cube-demo"),
        "twin": TwinConfig(tuf_root=str(cache.pinned_root), tuf_cache=str(cache.dir))})
    hub_key = KeyPair.generate()
    trust_public_key(hub_key.public, cfg.resolve(cfg.uplink.hub_keys))
    now = time.time()
    v1, v2 = (sign_module({"version": v, "issued_at": now - 60, "expires_at": now + 86400}, hub_key) for v in (1, 2))
    repo.add_target(tuf_target("fleet"), canonical_json(v1))  # what `samantha hub publish --tuf-repo` does
    with local_service(cfg) as svc:
        got = [svc.offer_module(v, "hub", repo.metadata_set()) for v in (v1, v2)]
        for v, o in zip((1, 2), got, strict=True):
            con.print(f"  policy module v{v} from the hub: " + ("[green]applied[/green] (listed as "
                      f"{tuf_target('fleet')})" if o.status == "applied" else f"[red]refused[/red] [bold]{o.code}"
                      f"[/bold] {o.field}: {o.reason[:110]}"), highlight=False)
        in_force = svc.policy.current()
        if [o.status for o in got] != ["applied", "refused"] or got[1].code != "tuf_tampered" or \
                in_force is None or in_force.module.version != 1:
            raise RuntimeError(f"the module intake did not behave: {[o.as_dict() for o in got]}")
    ctx.facts["tuf_modules"] = "a policy module not listed by the fleet's TUF metadata refused; the listed one governs"
