"""Bundles that carry a Triton model-repository entry: `config.pbtxt` plus a numeric version directory.

The signed bundle directory *is* the repository entry (bundle.json and model.sig beside it are
Samantha's): loading copies exactly the verified bytes into the slot's repository under the
model name, so Triton runs what was signed. The shipped python-backend model carries the
defective-bundle knobs (`faults.json`, from the bundle's fault profile).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from importlib import resources
from pathlib import Path

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.cube.bundle import (
    BundleError,
    Manifest,
    SigningKey,
    TrustedKey,
    VerifiedBundle,
    place_files,
    sign_bundle,
    verify_bundle,
    write_bundle,
)
from samantha.cube.fault_profile import FaultProfile

CONFIG = "config.pbtxt"
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")


def model_source() -> bytes:
    """The shipped python-backend model with the defective-bundle knobs."""
    return resources.files("samantha.cube.triton_assets").joinpath("model.py").read_bytes()


def config_pbtxt(model: str, *, output: str = "probs", dims: int = 3, datatype: str = "TYPE_FP32") -> str:
    return (f'name: "{model}"\nbackend: "python"\nmax_batch_size: 0\n'
            f'input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 8 ] }} ]\n'
            f'output [ {{ name: "{output}" data_type: {datatype} dims: [ {dims} ] }} ]\n'
            'instance_group [ { count: 1 kind: KIND_CPU } ]\n')


def build_triton_bundle(directory: str | Path, *, name: str, version: str, model: str = "sensor", seed: int = 0,
                        profile: FaultProfile | None = None, output: str = "probs", dims: int = 3,
                        datatype: str = "TYPE_FP32", ttl: timedelta = timedelta(days=30),
                        key: SigningKey | None = None, clock: Clock = REAL_CLOCK) -> Manifest:
    """Write a repository entry for the shipped model (version 1) and sign it when `key` is given."""
    d = Path(directory)
    meta = write_bundle(d, {CONFIG: config_pbtxt(model, output=output, dims=dims, datatype=datatype).encode()},
                        name=name, version=version, profile=profile, ttl=ttl, clock=clock)
    (d / "1").mkdir(exist_ok=True)
    (d / "1" / "model.py").write_bytes(model_source())
    faults = (profile or FaultProfile()).model_dump(exclude_defaults=True)
    (d / "1" / "faults.json").write_text(json.dumps({"seed": seed, "faults": faults}, sort_keys=True))
    return sign_bundle(d, key) if key else meta


def check_repository_entry(vb: VerifiedBundle) -> tuple[str, list[str]]:
    """The model name in config.pbtxt and the version directories; BundleError('malformed') names what is wrong."""
    raw = vb.files.get(CONFIG)
    if raw is None:
        raise BundleError("malformed", f"{CONFIG}: the bundle carries no Triton model configuration")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise BundleError("malformed", f"{CONFIG}: not UTF-8 text") from None
    m = re.search(r'^\s*name\s*:\s*"([A-Za-z0-9][A-Za-z0-9_.-]{0,99})"', text, re.M)
    if m is None:
        raise BundleError("malformed", f'{CONFIG}: no `name: "<model>"` line')
    if not re.search(r'^\s*(backend|platform)\s*:\s*"[^"]+"', text, re.M):
        raise BundleError("malformed", f"{CONFIG}: no backend or platform")
    if text.count("{") != text.count("}") or text.count("[") != text.count("]"):
        raise BundleError("malformed", f"{CONFIG}: unbalanced braces or brackets")
    versions = sorted({f.split("/", 1)[0] for f in vb.files if "/" in f and _VERSION.match(f.split("/", 1)[0])})
    if not versions:
        raise BundleError("malformed", "no version directory (e.g. 1/model.py) in the repository entry")
    return m.group(1), versions


def verify_triton_bundle(directory: str | Path, trusted: dict[str, TrustedKey], *,
                         clock: Clock = REAL_CLOCK) -> VerifiedBundle:
    """`verify_bundle`, then the repository entry must be well-formed, before any slot is touched."""
    vb = verify_bundle(directory, trusted, clock=clock)
    check_repository_entry(vb)
    return vb


def place(vb: VerifiedBundle, repository: Path) -> str:
    """Write the verified bytes as `<repository>/<model>/` (replacing what was there); returns the model name."""
    model, _ = check_repository_entry(vb)
    place_files(vb, Path(repository) / model)
    return model
