"""`samantha hub ...`: the hub (serve: NATS JetStream + Parquet writer), and the operator tools.

`--hub nats://...` talks to the hub on NATS (docs/hub.md); `--hub http://...` to the HTTP hub."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from samantha.cli.common import JsonOption, bad_input, console, failure, print_json

app = typer.Typer(no_args_is_help=True, help="The hub: fleet Reported State in Parquet, signed policy, decisions.")

HubOption = typer.Option("nats://127.0.0.1:4222", "--hub", help="hub: nats://host:port[,...] or http://...")
ChannelOption = typer.Option("fleet", "--channel", help="release channel (NATS hub; with --tuf-repo on either hub, "
                             "the target policy/<channel>.json the Cubes' uplink.channel looks up)")
TufRepoOption = typer.Option(None, "--tuf-repo", help="the fleet TUF repository: list the module as the channel's "
                             "target and publish the metadata beside it (Cubes with a pinned root require it)")


def _nats(hub: str) -> bool:
    return hub.startswith(("nats://", "tls://"))


def push_tuf(hub: str, metadata: dict[str, Any]) -> Any:
    """The fleet TUF repository's metadata set, published beside the policy module (the hub only carries it)."""
    if _nats(hub):
        from samantha.hub import nats_ops

        return _nats_call(nats_ops.publish_tuf, hub, metadata)
    return _call("PUT", f"{hub.rstrip('/')}/v1/policy/tuf", json=metadata)


def _tuf_repo(repo: Path | None) -> Any:
    if repo is None:
        return None
    from samantha.hub.tuf_repo import TufRepository

    try:
        return TufRepository.existing(repo)
    except ValueError as e:
        bad_input(f"--tuf-repo: {e}")


def _list_module(repo: Any, hub: str, channel: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The module as its channel's TUF target (its canonical JSON), then the re-signed metadata on the hub."""
    from samantha.core.signing import canonical_json
    from samantha.uplink.policy_module import tuf_target

    repo.add_target(tuf_target(channel), canonical_json(doc))
    push_tuf(hub, repo.metadata_set())
    return {"target": tuf_target(channel), "targets_version": repo.load("targets").signed.version}


def _nats_call(fn: Any, *args: Any) -> Any:
    from samantha.hub.nats_ops import HubUnreachable

    try:
        return fn(*args)
    except HubUnreachable as e:
        failure(str(e))
    except ValueError as e:  # a cube id or channel that is not a subject token
        bad_input(str(e))
KeyOption = typer.Option(..., "--key", help="private key file (create one with `samantha keys new`)")


def _key(path: Path) -> Any:
    from samantha.core.signing import KeyPair, SignatureError

    try:
        return KeyPair.load(path)
    except SignatureError as e:
        bad_input(str(e))


def _call(method: str, url: str, **kw: Any) -> Any:
    try:
        r = httpx.request(method, url, timeout=30, **kw)
    except httpx.HTTPError as e:
        failure(f"hub unreachable at {url}: {type(e).__name__}")
    try:
        body = r.json()
    except ValueError:
        body = {"raw": r.text}
    if r.status_code >= 400 and r.status_code != 404:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        (bad_input if r.status_code < 500 else failure)(f"HTTP {r.status_code}: {err.get('field')}: "
                                                        f"{err.get('reason', body)}")
    return body if r.status_code != 404 else None


@app.command()
def serve(root: Path = typer.Option(Path("hub"), help="storage root (Parquet, index, the embedded nats-server)"),
          host: str = typer.Option("127.0.0.1", help="bind address of the HTTP hub (loopback by default)"),
          port: int | None = typer.Option(None, help="NATS client port (default 4222; HTTP: 8490); 0: a free port"),
          writers: int = typer.Option(1, min=1, max=64, help="Parquet writers on the durable consumer"),
          nats: list[str] | None = typer.Option(None, "--nats", help="join this NATS cluster instead of "
                                                "starting one (repeat per server)"),
          replicas: int = typer.Option(1, min=1, max=5, help="stream replicas (3 on a root cluster)"),
          up_max_mb: float = typer.Option(1024.0, min=1.0, help="SAMANTHA_UP's bound in MiB: what the Cubes may "
                                          "push while the writers lag (a work queue; docs/hub.md)"),
          http: bool = typer.Option(False, "--http", help="the legacy HTTP hub instead (see docs/hub.md)")) -> None:
    """Run the hub in the foreground: a local nats-server (from the pip package) and the Parquet writer."""
    import asyncio

    if http:
        from samantha.hub.__main__ import serve as serve_http

        asyncio.run(serve_http(str(root), host, 8490 if port is None else port))
        return
    from samantha.hub.nats_hub import MB, HubConfigError
    from samantha.hub.nats_hub import serve as serve_nats
    from samantha.hub.up_migration import UpMigrationError

    try:
        asyncio.run(serve_nats(str(root), nats or None, writers=writers, replicas=replicas,
                               port=4222 if port is None else port, up_max_bytes=int(up_max_mb * MB)))
    except (HubConfigError, UpMigrationError) as e:
        failure(str(e))


@app.command()
def publish(path: Path = typer.Argument(..., help="policy module body, YAML or JSON (unsigned)"),
            key: Path = KeyOption, hub: str = HubOption, channel: str = ChannelOption,
            valid_for: str = typer.Option("7d", help="expires_at = now + this, when the file has none"),
            force: bool = typer.Option(False, help="publish even if the hub holds a newer version"),
            out: Path | None = typer.Option(None, help="also write the signed module here"),
            tuf_repo: Path | None = TufRepoOption, as_json: bool = JsonOption) -> None:
    """Validate, sign (ed25519) and publish a policy module (with --tuf-repo, as a TUF target too). Cubes verify
    it before applying."""
    from pydantic import ValidationError

    from samantha.core.validated_yaml import DocumentError, parse_yaml, problems_from_validation
    from samantha.gates.spec import parse_duration
    from samantha.uplink.policy_module import PolicyModule, sign_module

    try:
        body, marks = parse_yaml(path.read_text(), str(path))
    except OSError as e:
        bad_input(f"cannot read {path}: {e.strerror}")
    except DocumentError as e:
        bad_input(str(e))
    if not isinstance(body, dict):
        bad_input(f"{path}: a policy module is a mapping")
    now = time.time()
    body.setdefault("issued_at", now)
    try:
        body.setdefault("expires_at", now + parse_duration(valid_for))
    except ValueError as e:
        bad_input(f"--valid-for: {e}")
    if _nats(hub):  # released to the channel it is published on (signed); `hub promote` adds the next one
        body.setdefault("channels", [channel])
        if isinstance(body["channels"], list) and channel not in body["channels"]:
            bad_input(f"{path}: channels {body['channels']} does not include --channel {channel!r}")
    try:
        PolicyModule.model_validate(body)
    except ValidationError as e:  # every problem, with its line and field
        bad_input(str(DocumentError(problems_from_validation(e, str(path), marks))))
    doc = sign_module(body, _key(key))
    repo = _tuf_repo(tuf_repo)
    if _nats(hub):
        from samantha.hub import nats_ops

        current = _nats_call(nats_ops.current_policy, hub, channel)
    else:
        current = _call("GET", f"{hub.rstrip('/')}/v1/policy")
    if current and isinstance(current.get("version"), int) and current["version"] >= doc["version"] and not force:
        bad_input(f"the hub holds version {current['version']}; publish a higher version (or --force)")
    if out is not None:
        out.write_text(json.dumps(doc, indent=1, sort_keys=True))
    res = (_nats_call(nats_ops.publish_policy, hub, channel, doc) if _nats(hub)
           else _call("PUT", f"{hub.rstrip('/')}/v1/policy", json=doc))
    if repo is not None:  # after the module: a Cube that reads the new metadata first finds the module it lists
        res["tuf"] = _list_module(repo, hub, channel, doc)
    print_json(res) if as_json else console.print(f"published policy module v{res['version']} ({res['sha256'][:12]})"
                                                  + (f" as TUF target {res['tuf']['target']}" if repo else ""))


@app.command()
def promote(source: str = typer.Option(..., "--from", help="the release channel whose module is promoted"),
            target: str = typer.Option(..., "--to", help="the release channel it is released to next"),
            key: Path = KeyOption, hub: str = HubOption, force: bool = typer.Option(
                False, help="publish even if the target channel holds the same or a newer version"),
            tuf_repo: Path | None = TufRepoOption, as_json: bool = JsonOption) -> None:
    """Promote the module in force on one release channel to the next (NATS hub): verified, re-signed at the
    root with the target added to its signed `channels`, published there. Cubes on the target apply it."""
    from samantha.hub import nats_ops
    from samantha.uplink.policy_module import PromotionRefused, promote_module

    if not _nats(hub):
        bad_input("--hub: promotion runs on the NATS hub (nats://...)")
    from samantha.core.fleet import token

    signer = _key(key)
    repo = _tuf_repo(tuf_repo)
    try:
        token(target, "--to")
    except ValueError as e:
        bad_input(str(e))
    doc = _nats_call(nats_ops.current_policy, hub, source)
    if doc is None:
        bad_input(f"--from: no module is published on channel {source!r}")
    try:
        promoted = promote_module(doc, source, target, signer, time.time())
    except PromotionRefused as e:
        failure(str(e))
    current = _nats_call(nats_ops.current_policy, hub, target)
    if current and target not in (current.get("channels") or [target]):
        current = None  # a copy that was never released there: no Cube on the target applies it anyway
    if current and isinstance(current.get("version"), int) and current["version"] >= promoted["version"] \
            and not force:
        bad_input(f"--to: channel {target!r} holds version {current['version']} (>= v{promoted['version']}); "
                  "publish a higher version on the source first (or --force)")
    res = {**_nats_call(nats_ops.publish_policy, hub, target, promoted), "channels": promoted["channels"]}
    if repo is not None:
        res["tuf"] = _list_module(repo, hub, target, promoted)
    print_json(res) if as_json else console.print(
        f"promoted policy module v{res['version']} {source} -> {target} ({res['sha256'][:12]}); "
        f"released to {', '.join(res['channels'])}")


def _operator_doc(kind: str, cube: str, operator: str, lifetime: str, reason: str, **extra: Any) -> dict[str, Any]:
    from samantha.gates.spec import parse_duration

    now = time.time()
    try:
        life = parse_duration(lifetime)
    except ValueError as e:
        bad_input(f"--valid-for: {e}")
    return {"kind": kind, "cube": cube, "operator": operator, "nonce": secrets.token_hex(12), "issued_at": now,
            "expires_at": now + life, "reason": reason, **extra}


def _relay(hub: str, cube: str, doc: dict[str, Any]) -> Any:
    if _nats(hub):
        from samantha.hub import nats_ops

        return _nats_call(nats_ops.relay_doc, hub, cube, doc)
    return _call("POST", f"{hub.rstrip('/')}/v1/cubes/{cube}/decisions", json=doc)


@app.command()
def decide(request_id: str = typer.Argument(..., help="the approval request it answers"),
           cube: str = typer.Option(..., help="the Cube's id at the hub"),
           approve: bool = typer.Option(..., "--approve/--deny"), key: Path = KeyOption, hub: str = HubOption,
           operator: str = typer.Option(..., help="your name, as in the module's operator_keys"),
           valid_for: str = typer.Option("1h"), reason: str = typer.Option(""),
           proposal_key: str | None = typer.Option(None, help="the request's proposal key: the Cube then refuses "
                                                   "the decision for any other proposal"),
           as_json: bool = JsonOption) -> None:
    """Sign an approval decision and have the hub relay it to the Cube."""
    from samantha.uplink.operator_docs import DECISION_KIND, sign_operator_doc

    bind = {"proposal_key": proposal_key} if proposal_key else {}
    doc = sign_operator_doc(_operator_doc(DECISION_KIND, cube, operator, valid_for, reason, request_id=request_id,
                                          decision="approve" if approve else "deny", **bind), _key(key))
    res = _relay(hub, cube, doc)
    print_json(res) if as_json else console.print(f"relayed as #{res['seq']}")


@app.command()
def override(cube: str = typer.Option(..., help="the Cube's id at the hub"), key: Path = KeyOption,
             hub: str = HubOption, operator: str = typer.Option(...),
             valid_for: str = typer.Option("4h", help="how long the Cube may leave safe mode"),
             reason: str = typer.Option(..., help="why (recorded in the Cube's audit log)"),
             out: Path | None = typer.Option(None, help="write the signed document here instead of relaying it"),
             as_json: bool = JsonOption) -> None:
    """Sign a safe-mode override (role `override`); relay it, or write it for `samantha uplink operator`."""
    from samantha.uplink.operator_docs import OVERRIDE_KIND, sign_operator_doc

    doc = sign_operator_doc(_operator_doc(OVERRIDE_KIND, cube, operator, valid_for, reason), _key(key))
    if out is not None:
        out.write_text(json.dumps(doc, indent=1))
        console.print(f"wrote {out}")
        return
    res = _relay(hub, cube, doc)
    print_json(res) if as_json else console.print(f"relayed as #{res['seq']}")


@app.command()
def recall(bundle_id: str = typer.Argument(..., help="the bundle's id (64 hex: `samantha bundle inspect`)"),
           key: Path = KeyOption, hub: str = HubOption,
           reason: str = typer.Option(..., help="why (in every Cube's audit log and alert)"),
           operator: str = typer.Option("hub", help="who orders it (recorded)"),
           out: Path | None = typer.Option(None, help="also write the signed document here"),
           as_json: bool = JsonOption) -> None:
    """Sign (hub key) and publish a Recall of one bundle at the root: every Cube quarantines it and, where it
    is active, flips to its last-known-good bundle. Follow it with `samantha hub recall-status`."""
    from pydantic import ValidationError

    from samantha.uplink.recall import RECALL_KIND, sign_recall

    if not _nats(hub):
        bad_input("--hub: a Recall is published on the NATS hub (nats://...); the HTTP hub has none")
    body = {"kind": RECALL_KIND, "bundle_id": bundle_id, "nonce": secrets.token_hex(12), "issued_at": time.time(),
            "operator": operator, "reason": reason}
    try:
        doc = sign_recall(body, _key(key))
    except ValidationError as e:
        err = e.errors()[0]
        bad_input(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
    if out is not None:
        out.write_text(json.dumps(doc, indent=1, sort_keys=True))
    from samantha.hub import nats_ops

    res = _nats_call(nats_ops.publish_recall, hub, doc)
    print_json(res) if as_json else console.print(f"recall of {bundle_id[:16]} published as #{res['stream_seq']}")


@app.command("recall-status")
def recall_status(bundle_id: str = typer.Argument(..., help="the recalled bundle's id"),
                  data_dir: Path = typer.Option(..., "--data-dir", help="the hub's storage root (as given to "
                                                "`hub serve`)"),
                  as_json: bool = JsonOption) -> None:
    """Which Cubes applied a Recall (with the time), which are blocked (why), which it has not reached yet."""
    from samantha.hub.recall_status import recall_status as status_of
    from samantha.hub.storage import HubStorage

    if not (data_dir / "hub.sqlite").exists():
        bad_input(f"--data-dir: no hub data under {data_dir} (expected {data_dir / 'hub.sqlite'})")
    hs = HubStorage(data_dir)
    try:
        res = status_of(hs, bundle_id)
    finally:
        hs.close()
    if as_json:
        print_json(res)
        return
    c = res["counts"]
    console.print(f"recall of {bundle_id[:16]}: {c['applied']}/{c['known']} Cubes applied, {c['pending']} blocked "
                  f"or refused, {c['not_reached']} not reached")
    for a in res["applied"]:
        console.print(f"  applied  {a['cube']} at {a['applied_at']:.0f}{' (was active: flipped)' if a['was_active'] else ''}")
    for p in res["pending"]:
        console.print(f"  {p['status']:8} {p['cube']}: {p['reason']}")
    for n in res["not_reached"]:
        console.print(f"  waiting  {n['cube']} (last seen {n['last_seen']:.0f})")


@app.command()
def stats(hub: str = HubOption,
          data_dir: Path | None = typer.Option(None, "--data-dir", help="read the hub's Parquet directly (the "
                                               "storage root of `hub serve`); needed with a NATS hub"),
          as_json: bool = JsonOption) -> None:
    """Fleet records per kind, with duplicates (which must be 0)."""
    if data_dir is None and _nats(hub):
        bad_input("--data-dir: a NATS hub keeps no query server; give its storage root")
    if data_dir is not None:
        from samantha.hub.storage import HubStorage

        if not (data_dir / "reported").exists() and not (data_dir / "hub.sqlite").exists():
            bad_input(f"--data-dir: no hub data under {data_dir} (expected {data_dir / 'reported'})")
        hs = HubStorage(data_dir)
        try:
            res = hs.fleet_stats()
        finally:
            hs.close()
        print_json(res) if as_json else console.print(res)
        return
    res = _call("GET", f"{hub.rstrip('/')}/v1/fleet/stats")
    print_json(res) if as_json else console.print(res)


@app.command()
def queue(kind: str = typer.Argument(..., help="findings | proposed_gates | approval_requests"),
          hub: str = HubOption, as_json: bool = JsonOption) -> None:
    """Edge findings, proposed gates and approval requests: queued for people, never applied fleet-wide."""
    res = _call("GET", f"{hub.rstrip('/')}/v1/fleet/queue/{kind}")
    print_json(res) if as_json else console.print(res)


@app.command()
def dora(data_dir: Path = typer.Option(..., "--data-dir", help="the hub's storage root (as given to `hub serve`)"),
         since: str = typer.Option("7d", "--since", help="start: 30m, 24h, 7d ago, ISO-8601 or epoch seconds"),
         until: str | None = typer.Option(None, "--until", help="end (default: now); same forms as --since"),
         as_json: bool = JsonOption) -> None:
    """Fleet DORA over the hub's Parquet: per cube and fleet-wide (read directly, no hub process needed)."""
    import duckdb

    from samantha.cli.reporting import parse_window, print_dora
    from samantha.reporting.dora import hub_dora

    s, u = parse_window(since, until)
    if not (data_dir / "reported").is_dir():
        bad_input(f"--data-dir: no hub data under {data_dir} (expected {data_dir / 'reported'})")
    try:
        out = hub_dora(data_dir, s, u)
    except (duckdb.Error, ValueError) as e:
        failure(f"cannot read the fleet's Parquet under {data_dir}: {e}")
    print_json(out) if as_json else print_dora(out)
