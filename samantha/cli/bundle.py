"""`samantha bundle build|sign|verify` and `samantha keys new`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import typer
from pydantic import ValidationError

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json
from samantha.core.signing import KeyPair
from samantha.core.supply import SupplyPolicy
from samantha.core.validated_yaml import DocumentError, load_model, load_model_file
from samantha.cube.attestations import BuildInfo, read_provenance
from samantha.cube.bundle import (
    BundleError,
    SigningKey,
    load_trusted_keys,
    sign_bundle,
    trust_key,
    verify_bundle,
)
from samantha.cube.fault_profile import FaultProfile
from samantha.kernel.supply import judge_provenance
from samantha.twin.toy_bundle import build_bundle, toy_components

app = typer.Typer(no_args_is_help=True, help="Signed model bundles for the Cube's slots.")
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys: EC P-256 PEM keys for bundles (model-signing), "
                                                   "ed25519 keys for operators.")


def _profile(profile: str | None, profile_file: Path | None) -> FaultProfile | None:
    try:
        if profile_file is not None:
            return load_model_file(FaultProfile, profile_file)
        if profile is not None:
            return load_model(FaultProfile, profile, "--profile")
    except DocumentError as e:
        bad_input(f"bad fault profile:\n{e}")
    return None


def _key(path: Path) -> SigningKey:
    try:
        return SigningKey.load(path)
    except BundleError as e:
        failure(str(e))


def _git(*args: str) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _build_info(sbom: bool, provenance: bool, builder_id: str, source_uri: str | None, source_revision: str | None,
                components: list[str]) -> BuildInfo | None:
    """What `--sbom` / `--provenance` write; the source defaults to the git checkout the command runs in."""
    if not (sbom or provenance):
        return None
    revision = source_revision or _git("rev-parse", "HEAD")
    if provenance and not revision:
        bad_input("--provenance needs --source-revision (not in a git checkout to take HEAD from)")
    remote = _git("config", "--get", "remote.origin.url") or f"file://{_git('rev-parse', '--show-toplevel') or '.'}"
    uri = source_uri or f"git+{remote}"
    return BuildInfo(builder_id=builder_id, source_uri=uri, source_revision=revision or "",
                     components=(*toy_components(), *components), sbom=sbom, provenance=provenance)


@app.command()
def build(directory: Path = typer.Argument(..., help="bundle directory to create"),
          name: str = typer.Option("sensor-mlp", help="bundle name"),
          version: str = typer.Option(..., help="bundle version"),
          seed: int = typer.Option(0, help="training seed (different seeds: slightly different models)"),
          profile: str | None = typer.Option(None, help='fault profile as YAML/JSON, e.g. "{error_rate: 0.2}"'),
          profile_file: Path | None = typer.Option(None, help="fault profile YAML file"),
          ttl_days: float = typer.Option(30.0, min=0.0001, help="expiry, days from now"),
          key: Path | None = typer.Option(None, help="sign with this private key"),
          sbom: bool = typer.Option(False, help="carry a CycloneDX SBOM (sbom.cdx.json) of the model's components"),
          provenance: bool = typer.Option(False, help="carry SLSA provenance (attestations/slsa-provenance.intoto.json)"),
          builder_id: str = typer.Option("urn:samantha:builder:local", help="provenance: the builder.id (CI's own)"),
          source_uri: str | None = typer.Option(None, help="provenance: the source repository (default: git remote)"),
          source_revision: str | None = typer.Option(None, help="provenance: the source commit (default: git HEAD)"),
          component: list[str] = typer.Option([], help="SBOM: one more component, as a package URL (repeatable)"),
          as_json: bool = JsonOption) -> None:
    """Train the model and write a bundle directory (signed when --key is given; the SBOM and provenance are
    written before signing, so the signature covers them)."""
    fp = _profile(profile, profile_file)
    info = _build_info(sbom, provenance, builder_id, source_uri, source_revision, component)
    try:
        m = build_bundle(directory, name=name, version=version, seed=seed, profile=fp,
                         ttl=timedelta(days=ttl_days), key=_key(key) if key else None, attest=info)
    except ValidationError as e:
        bad_input(str(e.errors()[0]["msg"]))
    except ValueError as e:  # a component that is not a package URL
        bad_input(str(e))
    out = {"path": str(directory), "bundle_id": m.bundle_id, "label": m.label, "signed": m.key_id is not None,
           "expires_at": m.expires_at.isoformat(), "sbom": sbom, "provenance": provenance}
    print_json(out) if as_json else console.print(f"built {m.label} id={m.bundle_id[:16]} signed={out['signed']}")


@app.command()
def sign(directory: Path, key: Path = typer.Option(..., help="private key file"), as_json: bool = JsonOption) -> None:
    """Sign (or re-sign) a bundle directory with model-signing (writes model.sig)."""
    try:
        m = sign_bundle(directory, _key(key))
    except BundleError as e:
        failure(str(e))
    out = {"path": str(directory), "bundle_id": m.bundle_id, "key_id": m.key_id}
    print_json(out) if as_json else console.print(f"signed {m.label} with key {out['key_id']}")


@app.command()
def verify(directory: Path, trusted: Path | None = typer.Option(None, help="trusted keys dir/file (default: config)"),
           supply: Path | None = typer.Option(None, help="a policy module's supply section (YAML/JSON) to judge the "
                                                        "SBOM and provenance against, as the daemon would"),
           config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Check a bundle as a Cube would before loading it; exit 1 with the reason (and rule) when it is refused."""
    cfg = get_config(config)
    policy = None
    if supply is not None:
        try:
            policy = load_model_file(SupplyPolicy, supply)
        except DocumentError as e:
            bad_input(f"bad supply policy:\n{e}")
    rule = None
    try:
        keys = load_trusted_keys(trusted or cfg.resolve(cfg.twin.trusted_keys))
        vb = verify_bundle(directory, keys)
        facts = read_provenance(vb)
        decision = judge_provenance(facts, policy)
        if not decision.allowed:
            rule = decision.rule
            raise BundleError(decision.kind, decision.reason)  # type: ignore[arg-type]
    except BundleError as e:
        if as_json:
            print_json({"ok": False, "kind": e.kind, "rule": rule, "reason": str(e)})
        failure(str(e))
    prov = [a for a in facts.attestations if a.is_provenance]
    out = {"ok": True, "bundle_id": vb.bundle_id, "label": vb.manifest.label, "key_id": vb.key_id,
           "expires_at": vb.manifest.expires_at.isoformat(),
           "fault_profile": vb.manifest.fault_profile.model_dump() if vb.manifest.fault_profile else None,
           "attestations": facts.digests(), "builders": sorted({a.builder_id for a in prov if a.builder_id}),
           "source_revisions": sorted({a.source_revision for a in prov if a.source_revision}),
           "components": [c.purl or c.name for c in facts.sbom.components] if facts.sbom else None}
    print_json(out) if as_json else console.print(f"ok {vb.manifest.label} id={vb.bundle_id[:16]} key={vb.key_id}")


@keys_app.command("new")
def keys_new(path: Path = typer.Argument(..., help="private key file to create (public key at PATH.pub)"),
             trust: bool = typer.Option(True, help="also add the public key to the configured trusted keys"),
             force: bool = typer.Option(False, help="overwrite an existing key"),
             config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Create a bundle signing key (EC P-256 PEM, as `model_signing sign key` takes it)."""
    if path.exists() and not force:
        failure(f"{path} exists (use --force to overwrite)")
    kp = SigningKey.generate(path)
    out = {"key_id": kp.key_id, "private": str(path), "public": f"{path}.pub", "trusted": None}
    if trust:
        cfg = get_config(config)
        out["trusted"] = str(trust_key(kp, cfg.resolve(cfg.twin.trusted_keys)))
    print_json(out) if as_json else console.print(json.dumps(out))


@keys_app.command("new-operator")
def new_operator(name: str = typer.Argument(..., help="the operator's name"),
                 out: Path = typer.Option(..., "--out", "-o", help="private key file to write (<out>.pub beside it)"),
                 role: str = typer.Option("approver", help="approver | admin | viewer"),
                 days: float = typer.Option(90, help="the key is trusted for this many days"),
                 trust: bool = typer.Option(True, help="add it to this Cube's trusted-operators file"),
                 config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Create an operator key for signing approval decisions, and (by default) trust it on this Cube."""
    import time

    from samantha.core.operators import add_operator

    if role not in ("approver", "admin", "viewer"):
        from samantha.cli.common import bad_input

        bad_input(f"role must be approver, admin or viewer, not {role!r}")
    if out.exists():
        failure(f"{out} exists; refusing to overwrite a key")
    key = KeyPair.generate()
    key.save(out)
    cfg = get_config(config)
    trusted_file = cfg.resolve(cfg.api.operators_file)
    expires = time.time() + days * 86400
    if trust:
        add_operator(trusted_file, name, role, key.public, expires, with_token=False)  # type: ignore[arg-type]
    info = {"name": name, "role": role, "key_id": key.public.key_id, "private_key": str(out),
            "public_key": key.public.to_b64(), "expires_at": expires,
            "trusted_in": str(trusted_file) if trust else None}
    if as_json:
        print_json(info)
    else:
        console.print(f"operator {name} ({role}) key {info['key_id']} -> {out}"
                      + (f"; trusted in {trusted_file}" if trust else ""), highlight=False)
