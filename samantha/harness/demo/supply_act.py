"""Act: the Cube's bundle intake under TUF. The fleet's TUF repository (python-tuf) publishes a signed bundle;
the daemon's intake (`BundleCatalog.verify`, the kernel's `judge_intake`) admits it, refuses a bundle without
metadata (with the upgrade path), a replayed older metadata copy (rollback) and a freeze (an expired timestamp,
which also holds the supply: safe mode), and lifts the hold on fresh metadata. In-process, a few seconds."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta

from samantha.cube.bundle import SIGNATURE, SigningKey
from samantha.cube.tuf_meta import TufCache, target_path
from samantha.hub.tuf_repo import TufRepository
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
from samantha.twin.toy_bundle import build_bundle

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
