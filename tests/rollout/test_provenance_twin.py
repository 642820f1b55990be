"""SBOM and provenance end to end on the real twin and a real `samantha run` daemon: a signed policy module's
`supply` section (offered through the daemon's API) decides what a bundle must carry. Refusals through the
rollout path name the kernel rule, are on the signed audit log and alerted, and the daemon keeps serving; an
admitted bundle's load cites the digests of the attestations it relied on (audit log and action ledger)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.signing import KeyPair, sign_document, trust_public_key
from samantha.cube.attestations import PROVENANCE_FILE, SBOM, BuildInfo
from samantha.cube.bundle import SigningKey, sign_bundle
from samantha.twin.toy_bundle import build_bundle, toy_components
from samantha.uplink.policy_module import sign_module
from tests.rollout.kit import rollout_env, short_policy
from tests.rollout.test_rollout_twin import wait_for
from tests.sre.kit import audit_records

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
BUILDER = "https://ci.fleet.example/builder/v1"
REV = "9e1d" * 10


def _info(**kw) -> BuildInfo:
    return BuildInfo(**{"builder_id": BUILDER, "source_uri": "git+https://git.fleet.example/models/sensor",
                        "source_revision": REV, "components": toy_components(), **kw})


def test_policy_module_supply_rules_refuse_by_rule_and_admit_with_attestation_digests(tmp_path: Path) -> None:
    hub = KeyPair.generate()
    trust_public_key(hub.public, tmp_path / "state" / "keys" / "hub")  # the daemon's uplink.hub_keys (default)
    with rollout_env(tmp_path, short_policy(shadow=False, step_s=1.0, soak_s=2.0), rps=150) as env:
        now = time.time()
        module = sign_module({"version": 1, "issued_at": now, "expires_at": now + 3600, "supply": {
            "required_builder": BUILDER, "require_sbom": True, "deny_components": ["pkg:pypi/evil"]}}, hub)
        r = httpx.post(f"{env.url}/v1/uplink/policy", json=module, headers=auth_headers(env.daemon.config), timeout=30)
        assert r.status_code == 200, r.text
        # a supply section with a misspelt field: refused naming it (signed over a raw body: the hub's own
        # `sign_module` validates first and would refuse to sign it)
        bad = sign_document({"kind": "samantha/policy-module", "version": 2, "issued_at": now,
                             "expires_at": now + 3600, "supply": {"required_buildr": "x"}}, hub)
        r = httpx.post(f"{env.url}/v1/uplink/policy", json=bad, headers=auth_headers(env.daemon.config), timeout=30)
        assert r.status_code == 409 and r.json()["field"] == "supply.required_buildr", r.text

        bundles = Path(env.twin.st["bundles_dir"])
        key = SigningKey.load(env.twin.st["signing_key"])

        def build(name: str, info: BuildInfo | None) -> Path:
            build_bundle(bundles / name, name="sensor-mlp", version="2", seed=0, key=key, attest=info)
            return bundles / name

        build("plain", None)  # signed by the trusted publisher, but carries nothing
        d = build("wrong-subject", _info())
        p = d / PROVENANCE_FILE
        doc = json.loads(p.read_text())
        doc["subject"][0]["digest"]["sha256"] = hashlib.sha256(b"other weights").hexdigest()
        p.write_text(json.dumps(doc))
        sign_bundle(d, key)  # re-signed by the publisher: the signature verifies, the statement is about other bytes
        build("denied", _info(components=(*toy_components(), "pkg:pypi/evil@0.1")))
        build("laptop", _info(builder_id="urn:samantha:builder:local"))
        d = build("malformed", _info())
        (d / SBOM).write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": 5}]}')
        sign_bundle(d, key)
        cases = {"plain": ("unattested", "provenance-required:"), "wrong-subject": ("tampered", "subject-digest:"),
                 "denied": ("denied_component", "denied-component: sbom.cdx.json lists pkg:pypi/evil@0.1"),
                 "laptop": ("untrusted_builder", "builder:"),
                 "malformed": ("malformed", "sbom.cdx.json field $.components[0]")}
        for ref, (kind, reason) in cases.items():
            r = env.post("/v1/rollout/start", json={"bundle": ref, "request_id": f"req-{ref}"})
            assert r.status_code == 422, r.text
            err = r.json()["error"]
            assert err["code"] == kind and reason in err["reason"] and err["field"] == "bundle", err
        assert env.status()["phase"] == "idle"  # nothing was loaded for them; the daemon serves on

        good = build("good", _info())
        digests = {n: hashlib.sha256((good / n).read_bytes()).hexdigest() for n in (SBOM, PROVENANCE_FILE)}
        r = env.post("/v1/rollout/start", json={"bundle": "good", "request_id": "req-good"})
        assert r.status_code == 200, r.text
        wait_for(env.status, lambda s: s["phase"] not in ("idle", "loading"), 60)
        r = env.post("/v1/rollout/abort", json={"reason": "the test has seen the load"})
        assert r.status_code == 200, r.text
        db = env.stopped_db()
    audit = audit_records(db)
    refused = {Path(p["bundle"]).name: p for k, p in audit if k == "bundle_refused"}
    assert {b: p["rule"] for b, p in refused.items()} == {
        "plain": "provenance-required", "wrong-subject": "subject-digest", "denied": "denied-component",
        "laptop": "builder", "malformed": None}
    (admitted,) = [p for k, p in audit if k == "bundle_admitted"]
    assert admitted["attestations"] == digests and admitted["label"] == "sensor-mlp@2"
    (load,) = [json.loads(e) for e, in db.execute("SELECT evidence FROM actions WHERE kind = 'load'").fetchall()]
    assert load[0]["args"]["attestations"] == digests, load  # the one load, citing what it relied on
    keys = {k for k, in db.execute("SELECT key FROM alerts WHERE name = 'samantha_bundle_refused'").fetchall()}
    assert keys == {f"supply:refused:{r}" for r in ("provenance-required", "subject-digest", "denied-component",
                                                   "builder", "malformed")}, keys  # each refusal alerted, by rule
