"""Bundles: build, sign, verify; every refusal names its reason."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samantha.core.clock import SimClock
from samantha.cube.bundle import (
    META,
    SIGNATURE,
    BundleError,
    SigningKey,
    key_hint,
    load_trusted_keys,
    sign_bundle,
    trust_key,
    verify_bundle,
)
from samantha.cube.fault_profile import FaultProfile
from samantha.twin.toy_bundle import build_bundle, bundle_model


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return SigningKey.generate(tmp_path / "keys" / "publisher.pem")


def trusted(k: SigningKey):
    return load_trusted_keys(Path(f"{k.path}.pub"))


def test_good_bundle_verifies_and_identity_is_stable(tmp_path: Path, key: SigningKey) -> None:
    m = build_bundle(tmp_path / "b", name="sensor", version="1", key=key, profile=FaultProfile(error_rate=0.2))
    vb = verify_bundle(tmp_path / "b", trusted(key))
    assert vb.bundle_id == m.bundle_id and len(vb.bundle_id) == 64
    assert vb.profile.error_rate == 0.2
    model = bundle_model(vb)
    assert model.predict(model.w1[:, 0] * 0).shape == (4,)
    # re-signing with another key does not change identity (quarantine cannot be laundered)
    other = SigningKey.generate(tmp_path / "keys" / "other.pem")
    assert sign_bundle(tmp_path / "b", other).bundle_id == m.bundle_id


def _library_sign(d: Path, key: SigningKey) -> None:
    import model_signing

    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.path).set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE])).sign(d, d / SIGNATURE)


def _reject(path: Path, keys, kind: str, clock=None) -> str:
    with pytest.raises(BundleError) as e:
        verify_bundle(path, keys, **({"clock": clock} if clock else {}))
    assert e.value.kind == kind, str(e.value)
    return str(e.value)


def test_tampered_weights_refused(tmp_path: Path, key: SigningKey) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    w = tmp_path / "b" / "model.npz"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    assert "model.npz sha256 does not match" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_extra_and_missing_files_refused(tmp_path: Path, key: SigningKey) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    (tmp_path / "b" / "evil.py").write_text("print('hi')")
    assert "evil.py" in _reject(tmp_path / "b", trusted(key), "tampered")
    (tmp_path / "b" / "evil.py").unlink()
    (tmp_path / "b" / "model.npz").unlink()
    assert "cannot be read" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_edited_manifest_breaks_signature(tmp_path: Path, key: SigningKey) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    # the signed manifest (in the DSSE payload) edited to bless other weights
    sig = tmp_path / "b" / SIGNATURE
    doc = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(doc))
    assert "signature does not verify" in _reject(tmp_path / "b", trusted(key), "bad_signature")


def test_edited_metadata_is_a_tampered_file(tmp_path: Path, key: SigningKey) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    mf = tmp_path / "b" / META
    doc = json.loads(mf.read_text())
    doc["expires_at"] = "2099-01-01T00:00:00Z"
    mf.write_text(json.dumps(doc))
    assert f"{META} sha256 does not match" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_unknown_key_and_unsigned_refused(tmp_path: Path, key: SigningKey) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    stranger = SigningKey.generate(tmp_path / "keys" / "stranger.pem")
    assert "unknown signing key" in _reject(tmp_path / "b", trusted(stranger), "unknown_key")
    build_bundle(tmp_path / "u", name="s", version="1")
    assert "not signed" in _reject(tmp_path / "u", trusted(key), "bad_signature")


def test_expired_refused(tmp_path: Path, key: SigningKey) -> None:
    past = SimClock(start=1_600_000_000.0)
    build_bundle(tmp_path / "b", name="s", version="1", key=key, ttl=timedelta(hours=1), clock=past)
    assert "expired at 2020-09-13" in _reject(tmp_path / "b", trusted(key), "expired")
    # the same bundle was fine while it was fresh
    assert verify_bundle(tmp_path / "b", trusted(key), clock=past).manifest.version == "1"


@pytest.mark.parametrize("content,needle", [
    ("not json", "not JSON"),
    ("[1]", "must be a JSON object"),
    ('{"name": "s"}', "field version"),
])
def test_malformed_manifest_refused(tmp_path: Path, key: SigningKey, content: str, needle: str) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    (tmp_path / "b" / META).write_text(content)
    _library_sign(tmp_path / "b", key)  # signed, so the malformed metadata itself is what is refused
    assert needle in _reject(tmp_path / "b", trusted(key), "malformed")


def test_trusted_keys_dir(tmp_path: Path, key: SigningKey) -> None:
    trust_key(key, tmp_path / "trusted")
    assert set(load_trusted_keys(tmp_path / "trusted")) == {key_hint(key.public_pem)}
    assert load_trusted_keys(tmp_path / "absent") == {}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(60)
def test_cli_build_verify_reports_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "samantha.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'state'}\n")
    r = _cli("keys", "new", str(tmp_path / "k.key"), "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    r = _cli("bundle", "build", str(tmp_path / "b"), "--version", "3", "--key", str(tmp_path / "k.key"), "--json")
    assert r.returncode == 0, r.stderr
    verify = ("bundle", "verify", str(tmp_path / "b"), "--config", str(cfg), "--json")
    ok = _cli(*verify)
    assert ok.returncode == 0 and json.loads(ok.stdout)["label"] == "sensor-mlp@3"
    (tmp_path / "b" / "model.npz").write_bytes(b"junk")
    bad = _cli(*verify)
    assert bad.returncode == 1 and json.loads(bad.stdout)["kind"] == "tampered"
    r = _cli("bundle", "build", str(tmp_path / "c"), "--version", "1", "--profile", "{error_rate: 3}")
    assert r.returncode == 2 and "error_rate" in r.stderr


@pytest.mark.timeout(120)
def test_bundle_signed_by_the_model_signing_cli_verifies_on_the_cube(tmp_path: Path, key: SigningKey) -> None:
    """Interoperability: the library's own CLI signs, the Cube's verifier accepts (and still catches tampering)."""
    unsigned = build_bundle(tmp_path / "b", name="sensor", version="7")
    r = subprocess.run([sys.executable, "-m", "model_signing", "sign", "key", str(tmp_path / "b"),
                        "--private_key", str(key.path), "--signature", str(tmp_path / "b" / SIGNATURE)],
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stderr
    vb = verify_bundle(tmp_path / "b", trusted(key))
    assert (vb.manifest.label, vb.bundle_id, vb.key_id) == ("sensor@7", unsigned.bundle_id, key.key_id)
    # and the other way round: the library's CLI verifies what Samantha signed
    sign_bundle(tmp_path / "b", key)
    r = subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(tmp_path / "b"),
                        "--public_key", f"{key.path}.pub", "--signature", str(tmp_path / "b" / SIGNATURE)],
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0 and "Verification succeeded" in r.stdout, r.stdout + r.stderr
    (tmp_path / "b" / "model.npz").write_bytes(b"junk")
    assert "model.npz sha256 does not match" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_old_format_bundle_refused_with_an_upgrade_path(tmp_path: Path, key: SigningKey) -> None:
    d = tmp_path / "old"
    d.mkdir()
    (d / "manifest.json").write_text('{"format": "samantha-bundle/1", "signature": {"alg": "ed25519"}}')
    (d / "model.npz").write_bytes(b"w")
    assert "rebuild it with `samantha bundle build`" in _reject(d, trusted(key), "malformed")


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory) -> tuple[Path, SigningKey]:
    base = tmp_path_factory.mktemp("prop")
    key = SigningKey.generate(base / "k.pem")
    build_bundle(base / "b", name="s", version="1", key=key, profile=FaultProfile(error_rate=0.1))
    return base / "b", key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["model.npz", META, "dsse.sig", "dsse.payload"]), where=st.floats(0, 1),
       bit=st.integers(0, 7))
def test_any_flipped_byte_in_a_file_or_the_signature_is_refused(tmp_path_factory, signed_bundle, target: str,
                                                                 where: float, bit: int) -> None:
    import shutil

    src, key = signed_bundle
    d = tmp_path_factory.mktemp("flip") / "b"
    shutil.copytree(src, d)

    def flip(data: bytes) -> bytes:
        i = min(int(where * len(data)), len(data) - 1)
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]

    if target.startswith("dsse."):  # the signed parts of the envelope: the signature and the statement
        doc = json.loads((d / SIGNATURE).read_text())
        env = doc["dsseEnvelope"]
        if target == "dsse.sig":
            env["signatures"][0]["sig"] = base64.b64encode(flip(base64.b64decode(env["signatures"][0]["sig"]))).decode()
        else:
            env["payload"] = base64.b64encode(flip(base64.b64decode(env["payload"]))).decode()
        (d / SIGNATURE).write_text(json.dumps(doc))
    else:
        (d / target).write_bytes(flip((d / target).read_bytes()))
    with pytest.raises(BundleError) as e:
        verify_bundle(d, trusted(key))
    assert e.value.kind in ("tampered", "bad_signature", "malformed"), str(e.value)


def test_file_size_bound_is_the_callers_and_placed_files_are_the_verified_bytes(tmp_path: Path, key: SigningKey) -> None:
    """A language model's weights exceed the default bound: the caller (cube.command.max_model_mb) raises it; what is
    placed for a server is what was hashed, whatever the disk holds by then."""
    from samantha.cube.bundle import place_files, write_bundle

    write_bundle(tmp_path / "b", {"model.gguf": b"w" * 2048}, name="llm", version="1", key=key)
    with pytest.raises(BundleError, match="model.gguf is larger than 1024 bytes") as ei:
        verify_bundle(tmp_path / "b", trusted(key), max_file_bytes=1024)
    assert ei.value.kind == "tampered"
    vb = verify_bundle(tmp_path / "b", trusted(key), max_file_bytes=4096)
    (tmp_path / "b" / "model.gguf").write_bytes(b"swapped after the check")
    (tmp_path / "slot" / "bundle").mkdir(parents=True)
    (tmp_path / "slot" / "bundle" / "stale.gguf").write_bytes(b"the previous bundle")
    placed = place_files(vb, tmp_path / "slot" / "bundle")
    assert sorted(p.name for p in placed.iterdir()) == ["model.gguf"]  # replaced whole, nothing stale left
    assert (placed / "model.gguf").read_bytes() == b"w" * 2048
