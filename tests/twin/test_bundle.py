"""Bundles: build, sign, verify; every refusal names its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from samantha.core.clock import SimClock
from samantha.core.signing import KeyPair
from samantha.cube.bundle import (
    BundleError,
    load_trusted_keys,
    sign_bundle,
    trust_key,
    verify_bundle,
)
from samantha.cube.fault_profile import FaultProfile
from samantha.twin.toy_bundle import build_bundle, bundle_model


@pytest.fixture
def key() -> KeyPair:
    return KeyPair.generate()


def trusted(k: KeyPair):
    return {k.public.key_id: k.public}


def test_good_bundle_verifies_and_identity_is_stable(tmp_path: Path, key: KeyPair) -> None:
    m = build_bundle(tmp_path / "b", name="sensor", version="1", key=key, profile=FaultProfile(error_rate=0.2))
    vb = verify_bundle(tmp_path / "b", trusted(key))
    assert vb.bundle_id == m.bundle_id and len(vb.bundle_id) == 64
    assert vb.profile.error_rate == 0.2
    model = bundle_model(vb)
    assert model.predict(model.w1[:, 0] * 0).shape == (4,)
    # re-signing with another key does not change identity (quarantine cannot be laundered)
    other = KeyPair.generate()
    assert sign_bundle(tmp_path / "b", other).bundle_id == m.bundle_id


def _reject(path: Path, keys, kind: str, clock=None) -> str:
    with pytest.raises(BundleError) as e:
        verify_bundle(path, keys, **({"clock": clock} if clock else {}))
    assert e.value.kind == kind, str(e.value)
    return str(e.value)


def test_tampered_weights_refused(tmp_path: Path, key: KeyPair) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    w = tmp_path / "b" / "model.npz"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    assert "model.npz sha256 does not match" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_extra_and_missing_files_refused(tmp_path: Path, key: KeyPair) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    (tmp_path / "b" / "evil.py").write_text("print('hi')")
    assert "evil.py" in _reject(tmp_path / "b", trusted(key), "tampered")
    (tmp_path / "b" / "evil.py").unlink()
    (tmp_path / "b" / "model.npz").unlink()
    assert "cannot be read" in _reject(tmp_path / "b", trusted(key), "tampered")


def test_edited_manifest_breaks_signature(tmp_path: Path, key: KeyPair) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    mf = tmp_path / "b" / "manifest.json"
    doc = json.loads(mf.read_text())
    doc["expires_at"] = "2099-01-01T00:00:00Z"
    mf.write_text(json.dumps(doc))
    assert "signature does not verify" in _reject(tmp_path / "b", trusted(key), "bad_signature")


def test_unknown_key_and_unsigned_refused(tmp_path: Path, key: KeyPair) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    assert "unknown signing key" in _reject(tmp_path / "b", trusted(KeyPair.generate()), "unknown_key")
    build_bundle(tmp_path / "u", name="s", version="1")
    assert "not signed" in _reject(tmp_path / "u", trusted(key), "bad_signature")


def test_expired_refused(tmp_path: Path, key: KeyPair) -> None:
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
def test_malformed_manifest_refused(tmp_path: Path, key: KeyPair, content: str, needle: str) -> None:
    build_bundle(tmp_path / "b", name="s", version="1", key=key)
    (tmp_path / "b" / "manifest.json").write_text(content)
    assert needle in _reject(tmp_path / "b", trusted(key), "malformed")


def test_trusted_keys_dir(tmp_path: Path, key: KeyPair) -> None:
    trust_key(key, tmp_path / "trusted")
    assert set(load_trusted_keys(tmp_path / "trusted")) == {key.public.key_id}
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
