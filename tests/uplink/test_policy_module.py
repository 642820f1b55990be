"""Policy module verification and atomic apply (pure checks + a real directory)."""

from __future__ import annotations

import json

import pytest

from samantha.core.signing import KeyPair, SignatureError, sign_document
from samantha.uplink.policy_module import PolicyStore, sign_module

NOW = 1_800_000_000.0


def body(version: int, **kw):
    return {"version": version, "issued_at": NOW - 60, "expires_at": NOW + 86400, **kw}


@pytest.fixture
def hub():
    return KeyPair.generate()


@pytest.fixture
def ps(tmp_path, hub):
    return PolicyStore(tmp_path, {hub.public.key_id: hub.public})


def test_applies_newer_and_refuses_rollback_replay_and_expired(ps, hub):
    assert ps.offer(sign_module(body(2), hub), NOW).status == "applied"
    assert ps.offer(sign_module(body(2), hub), NOW).status == "unchanged"
    r = ps.offer(sign_module(body(1), hub), NOW)
    assert (r.status, r.code, r.field) == ("refused", "rollback", "version")
    r = ps.offer(sign_module(body(2, description="other"), hub), NOW)
    assert r.code == "replay"
    r = ps.offer(sign_module(body(3, issued_at=NOW - 7200, expires_at=NOW - 1), hub), NOW)
    assert r.code == "expired"
    r = ps.offer(sign_module(body(3, issued_at=NOW + 3600, expires_at=NOW + 7200), hub), NOW)
    assert r.code == "not_yet_valid"
    assert ps.current().module.version == 2


def test_tampered_unknown_key_and_invalid_fields_are_refused_and_last_good_stays(ps, hub, tmp_path):
    assert ps.offer(sign_module(body(1), hub), NOW).status == "applied"
    on_disk = ps.path.read_bytes()
    tampered = sign_module(body(2), hub)
    tampered["expires_at"] += 365 * 86400
    r = ps.offer(tampered, NOW)
    assert (r.code, r.field) == ("bad_signature", "signature") and "does not verify" in r.reason
    r = ps.offer(sign_module(body(2), KeyPair.generate()), NOW)
    assert r.code == "bad_signature" and "unknown signing key" in r.reason
    r = ps.offer({k: v for k, v in sign_module(body(2), hub).items() if k != "signature"}, NOW)
    assert r.code == "bad_signature" and "missing" in r.reason
    bad = sign_document({**body(2), "gates": [{"name": "x", "kind": "staleness", "signal": "last_sync"}]}, hub)
    r = ps.offer(bad, NOW)
    assert r.code == "invalid" and r.field.startswith("gates.0")
    assert ps.offer("not a module", NOW).code == "invalid"
    assert ps.path.read_bytes() == on_disk and ps.current().module.version == 1


def test_a_module_edited_on_disk_is_not_trusted_at_start(ps, hub, tmp_path):
    ps.offer(sign_module(body(1), hub), NOW)
    doc = json.loads(ps.path.read_text())
    doc["expires_at"] = NOW + 10 * 365 * 86400
    ps.path.write_text(json.dumps(doc))
    with pytest.raises(SignatureError, match="no longer verifies"):
        PolicyStore(tmp_path, {hub.public.key_id: hub.public})


def test_module_carries_playbooks_gates_rollout_operators(ps, hub):
    op = KeyPair.generate()
    doc = sign_module(body(1, playbooks=[{
        "name": "p1", "version": 1, "owner": "sre", "gates": [{"name": "g1", "kind": "threshold",
                                                               "metric": "error_rate", "value": 0.05}],
        "when": {"any": ["g1"]}, "then": [{"action": "alert", "severity": "warning"}]}],
        rollout_policy={"name": "careful", "steps": [{"weight": 5}, {"weight": 100}]},
        operator_keys=[{"name": "ana", "public_key": op.public.to_b64(), "roles": ["override"]}],
        fleet_baseline={"divergence_mean": 0.01}), hub)
    assert ps.offer(doc, NOW).status == "applied"
    info = ps.info(NOW)
    assert info["playbooks"] == ["p1"] and info["rollout_policy"] == "careful"
    assert ps.current().module.operators("override") == {op.public.key_id: op.public}
    assert ps.current().module.operators("approve") == {}


def test_a_module_applies_only_on_the_channels_it_was_signed_for():
    from samantha.uplink.policy_module import check

    key = KeyPair.generate()
    trusted = {key.public.key_id: key.public}
    now = 1_800_000_000.0
    body = {"version": 1, "issued_at": now - 10, "expires_at": now + 3600}
    staged = sign_module({**body, "channels": ["staging"]}, key)
    offer, inst = check(staged, trusted, None, now, "fleet")
    assert inst is None and offer.code == "wrong_channel" and offer.field == "channels", offer
    assert check(staged, trusted, None, now, "staging")[1] is not None
    legacy = sign_module(body, key)  # no channels: a module from before channels applies on any channel
    assert check(legacy, trusted, None, now, "fleet")[1] is not None
    with pytest.raises(ValueError, match="channels"):
        sign_module({**body, "channels": ["no.dots"]}, key)
