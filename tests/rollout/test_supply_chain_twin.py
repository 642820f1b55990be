"""Supply chain end to end on the real twin and a real `samantha run` daemon: a bundle signed by the
model-signing library's own CLI is rolled out to promotion; tampered and untrusted bundles are refused by
the daemon with a reason, and the daemon keeps serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from samantha.cube.bundle import SIGNATURE, SigningKey
from samantha.twin.toy_bundle import build_bundle
from tests.rollout.kit import rollout_env, short_policy
from tests.rollout.test_rollout_twin import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_cli_signed_bundle_rolled_out_tampered_and_untrusted_refused(tmp_path: Path) -> None:
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=1.0, soak_s=2.0), rps=150) as env:
        bundles = Path(env.twin.st["bundles_dir"])
        key = SigningKey.load(env.twin.st["signing_key"])
        # tampered after signing: one byte of the weights flipped
        env.twin.bundle("tampered", seed=0, version="2")
        w = bundles / "tampered" / "model.npz"
        data = w.read_bytes()
        w.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
        # signed by a key the Cube does not trust
        build_bundle(bundles / "stranger", name="sensor-mlp", version="2",
                     key=SigningKey.generate(tmp_path / "stranger.pem"))
        for ref, kind in (("tampered", "tampered"), ("stranger", "unknown_key")):
            r = env.post("/v1/rollout/start", json={"bundle": ref, "request_id": f"req-{ref}"})
            assert r.status_code == 422 and r.json()["error"]["code"] == kind, r.text
            assert r.json()["error"]["field"] == "bundle" and r.json()["error"]["reason"]
        assert env.status()["phase"] == "idle"

        # signed by the library's own CLI with the publisher's key
        new = build_bundle(bundles / "v2", name="sensor-mlp", version="2", seed=0)
        r = subprocess.run([sys.executable, "-m", "model_signing", "sign", "key", str(bundles / "v2"),
                            "--private_key", str(key.path), "--signature", str(bundles / "v2" / SIGNATURE)],
                           capture_output=True, text=True, timeout=100)
        assert r.returncode == 0, r.stderr
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-cli-signed"})
        assert r.status_code == 200, r.text
        doc = wait_for(env.status, lambda d: d["phase"] in ("promoted", "aborted", "failed"), 150)
        assert doc["phase"] == "promoted", doc["rollout"]["reason"]
        assert env.twin.cube.state().slot("active").bundle_id == new.bundle_id
