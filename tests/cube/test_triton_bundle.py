"""Triton bundles: the repository entry is checked before a slot is touched, and a real tritonserver
(explicit model control, loopback) loads the verified bytes and serves them with the bundle's knobs."""

from __future__ import annotations

import math
import shutil

import httpx
import pytest

from samantha.cube.bundle import BundleError, SigningKey, load_trusted_keys, sign_bundle, trust_key
from samantha.cube.fault_profile import FaultProfile
from samantha.cube.triton_bundle import build_triton_bundle, place, verify_triton_bundle
from samantha.harness.triton_process import TritonServer, TritonUnavailable, find_triton

X = {"inputs": [{"name": "x", "shape": [8], "datatype": "FP32", "data": [0.5, -0.2, 0.1, 0.9, 0.0, 0.3, -0.7, 0.4]}]}


@pytest.fixture
def keys(tmp_path):
    key = SigningKey.generate(tmp_path / "k.pem")
    trust_key(key, tmp_path / "trusted")
    return key, load_trusted_keys(tmp_path / "trusted")


def test_a_bundle_without_a_version_directory_is_malformed(tmp_path, keys):
    key, trusted = keys
    build_triton_bundle(tmp_path / "b", name="sensor", version="1")
    shutil.rmtree(tmp_path / "b" / "1")
    sign_bundle(tmp_path / "b", key)
    with pytest.raises(BundleError, match="malformed: no version directory"):
        verify_triton_bundle(tmp_path / "b", trusted)


def test_a_bad_config_pbtxt_is_malformed_and_named(tmp_path, keys):
    key, trusted = keys
    build_triton_bundle(tmp_path / "b", name="sensor", version="1")
    (tmp_path / "b" / "config.pbtxt").write_text('backend: "python"\noutput [ { name: "probs" ')
    sign_bundle(tmp_path / "b", key)
    with pytest.raises(BundleError, match=r"malformed: config\.pbtxt: no `name"):
        verify_triton_bundle(tmp_path / "b", trusted)


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    try:
        find_triton()
        server = TritonServer(tmp_path_factory.mktemp("triton"), "A").start()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    yield server
    server.stop()


def _load(triton, vb):
    model = place(vb, triton.repository)
    r = httpx.post(f"{triton.url}/v2/repository/models/{model}/load", timeout=60)
    assert r.status_code == 200, r.text
    return model


@pytest.mark.slow
def test_real_triton_serves_the_verified_bundle_and_its_knobs(tmp_path, keys, triton):
    key, trusted = keys
    build_triton_bundle(tmp_path / "good", name="sensor", version="1", key=key)
    model = _load(triton, verify_triton_bundle(tmp_path / "good", trusted))
    meta = httpx.get(f"{triton.url}/v2/models/{model}").json()
    assert meta["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [3]}]
    out = httpx.post(f"{triton.url}/v2/models/{model}/infer", json=X).json()["outputs"][0]
    assert out["shape"] == [3] and math.isclose(sum(out["data"]), 1.0, rel_tol=1e-5)

    # the same model name, now a defective bundle: NaN outputs and a changed output shape
    build_triton_bundle(tmp_path / "bad", name="sensor", version="2", key=key, dims=4,
                        profile=FaultProfile(nan_rate=1.0))
    _load(triton, verify_triton_bundle(tmp_path / "bad", trusted))
    assert httpx.get(f"{triton.url}/v2/models/{model}").json()["outputs"][0]["shape"] == [4]
    out = httpx.post(f"{triton.url}/v2/models/{model}/infer", json=X).json()["outputs"][0]
    assert out["shape"] == [4] and all(v is None or (isinstance(v, float) and math.isnan(v)) for v in out["data"])

    build_triton_bundle(tmp_path / "err", name="sensor", version="3", key=key, profile=FaultProfile(error_rate=1.0))
    _load(triton, verify_triton_bundle(tmp_path / "err", trusted))
    r = httpx.post(f"{triton.url}/v2/models/{model}/infer", json=X)
    assert r.status_code >= 400 and "injected inference failure" in r.text
