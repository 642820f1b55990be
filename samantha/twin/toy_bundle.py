"""The twin's bundles: the toy numpy model trained from a seed, written in the Cube's bundle format."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.cube.attestations import BuildInfo, attest_bundle
from samantha.cube.bundle import (
    WEIGHTS,
    BundleError,
    Manifest,
    SigningKey,
    TrustedKey,
    VerifiedBundle,
    read_manifest,
    sign_bundle,
    verify_bundle,
    write_bundle,
)
from samantha.cube.fault_profile import FaultProfile
from samantha.twin.model import SensorModel, train_model

__all__ = ["build_bundle", "bundle_model", "toy_components", "verify_toy_bundle"]


def toy_components() -> tuple[str, ...]:
    """What the toy model is built with, as package URLs (its SBOM's components)."""
    import numpy

    return (f"pkg:pypi/numpy@{numpy.__version__}",)


def build_bundle(directory: str | Path, *, name: str, version: str, seed: int = 0,
                 profile: FaultProfile | None = None, ttl: timedelta = timedelta(days=30),
                 key: SigningKey | None = None, clock: Clock = REAL_CLOCK, attest: BuildInfo | None = None) -> Manifest:
    """Train the toy model, write weights and bundle.json (and the SBOM/provenance `attest` asks for, before
    signing, so the signature covers them); sign when `key` is given."""
    meta = write_bundle(directory, {WEIGHTS: train_model(seed).to_npz()}, name=name, version=version,
                        profile=profile, ttl=ttl, key=None if attest else key, clock=clock)
    if attest is None:
        return meta
    attest_bundle(directory, attest, name=name, version=version, now=clock.time())
    return sign_bundle(directory, key) if key else read_manifest(directory)


def bundle_model(bundle: VerifiedBundle) -> SensorModel:
    """The toy model in a verified bundle, from the bytes that were hashed."""
    try:
        return SensorModel.from_npz(bundle.files[WEIGHTS])
    except (KeyError, ValueError, OSError) as e:
        raise BundleError("malformed", f"{WEIGHTS}: {e}") from None


def verify_toy_bundle(directory: str | Path, trusted: dict[str, TrustedKey], *,
                      clock: Clock = REAL_CLOCK) -> VerifiedBundle:
    """`verify_bundle`, then the toy model must load: a malformed bundle is found before any swap."""
    vb = verify_bundle(directory, trusted, clock=clock)
    if WEIGHTS not in vb.files:
        raise BundleError("malformed", f"the manifest lists no {WEIGHTS}")
    bundle_model(vb)
    return vb
