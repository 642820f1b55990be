"""Safe mode transitions (pure) and operator documents: properties over generated histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.core.signing import KeyPair
from samantha.uplink.operator_docs import OVERRIDE_KIND, check_operator_doc, sign_operator_doc
from samantha.uplink.safe_mode import SafeModeState, next_state, with_override

T0 = 1_800_000_000.0

step = st.one_of(
    st.tuples(st.just("wait"), st.floats(0, 5 * 86400)),
    st.tuples(st.just("module"), st.integers(1, 6), st.floats(-86400, 10 * 86400)),  # version, expires_at - now
    st.tuples(st.just("override"), st.floats(0, 86400)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=30), st.booleans())
def test_expired_means_safe_unless_override_and_leaving_needs_newer_or_override(steps, require):
    now, version, expires = T0, None, None
    s = SafeModeState()
    for ev in steps:
        if ev[0] == "wait":
            now += ev[1]
        elif ev[0] == "module":
            if version is None or ev[1] > version:  # the store only ever installs newer versions
                version, expires = ev[1], now + ev[2] if ev[2] > 0 else now + 1
        else:
            s = with_override(s, until=now + ev[1], by="ana", nonce=f"n{now}")
        prev = s
        s = next_state(prev, now=now, module_version=version, module_expires_at=expires, require_module=require)
        override = s.override_until is not None and now < s.override_until
        expired = expires is not None and now >= expires
        if (expired or (version is None and require)) and not override:
            assert s.safe, (ev, s)
        if prev.safe and not s.safe:
            assert override or (version is not None and not expired
                                and (prev.entered_version is None or version > prev.entered_version))


def test_the_same_module_never_ends_safe_mode_even_if_the_clock_goes_back():
    s = next_state(SafeModeState(), now=T0 + 10, module_version=3, module_expires_at=T0 + 5)
    assert s.safe and s.entered_version == 3
    assert next_state(s, now=T0, module_version=3, module_expires_at=T0 + 5).safe
    back = next_state(s, now=T0 + 20, module_version=4, module_expires_at=T0 + 999)
    assert not back.safe and "v4" in back.left_because


def test_override_checks():
    op, other = KeyPair.generate(), KeyPair.generate()
    keys = {op.public.key_id: op.public}
    body = {"kind": OVERRIDE_KIND, "cube": "c1", "operator": "ana", "nonce": "nonce-0001", "issued_at": T0,
            "expires_at": T0 + 3600, "reason": "site visit"}
    doc = sign_operator_doc(body, op)
    ok = check_operator_doc(doc, cube="c1", keys=keys, now=T0 + 1, used_nonces=set(), max_lifetime_s=86400)
    assert ok.ok and ok.signer == op.public.key_id
    cases = {
        "signature": (sign_operator_doc(body, other), {}),
        "cube": (doc, {"cube": "c2"}),
        "nonce": (doc, {"used_nonces": {"nonce-0001"}}),
        "expires_at: expired": (doc, {"now": T0 + 3601}),
        "lasts more": (doc, {"max_lifetime_s": 60}),
    }
    for want, (d, kw) in cases.items():
        args = {"cube": "c1", "keys": keys, "now": T0 + 1, "used_nonces": set(), "max_lifetime_s": 86400, **kw}
        got = check_operator_doc(d, **args)
        assert not got.ok and want in got.reason, (want, got.reason)
    tampered = {**doc, "expires_at": T0 + 10 * 86400}
    assert "does not verify" in check_operator_doc(tampered, cube="c1", keys=keys, now=T0, used_nonces=set()).reason


held_step = st.one_of(step, st.tuples(st.just("hold")), st.tuples(st.just("lift")))


@settings(max_examples=400, deadline=None)
@given(st.lists(held_step, max_size=30))
def test_a_supply_hold_means_safe_and_only_fresh_metadata_or_an_override_leaves(steps):
    now, version, expires, hold = T0, 1, T0 + 30 * 86400, None
    s = SafeModeState()
    for ev in steps:
        if ev[0] == "wait":
            now += ev[1]
        elif ev[0] == "module":
            if ev[1] > version:
                version, expires = ev[1], now + ev[2] if ev[2] > 0 else now + 1
        elif ev[0] == "hold":
            hold = "tuf timestamp: expired"
        elif ev[0] == "lift":
            hold = None
        else:
            s = with_override(s, until=now + ev[1], by="ana", nonce=f"n{now}")
        prev = s
        s = next_state(prev, now=now, module_version=version, module_expires_at=expires, supply_hold=hold)
        override = s.override_until is not None and now < s.override_until
        expired = now >= expires
        if (hold or expired) and not override:
            assert s.safe, (ev, s)
        if prev.safe and not s.safe:
            assert override or (hold is None and not expired), (ev, prev, s)


def test_fresh_metadata_lifts_a_supply_hold_but_not_an_expired_module():
    s = next_state(SafeModeState(), now=T0, module_version=2, module_expires_at=T0 + 100, supply_hold="frozen")
    assert s.safe and s.cause == "supply" and "supply hold: frozen" in s.reason
    assert next_state(s, now=T0 + 1, module_version=2, module_expires_at=T0 + 100, supply_hold="frozen").safe
    left = next_state(s, now=T0 + 2, module_version=2, module_expires_at=T0 + 100)
    assert not left.safe and "fresh TUF metadata" in left.left_because
    # lifted after the module expired: the module's rule takes over (a newer module is needed)
    stuck = next_state(s, now=T0 + 200, module_version=2, module_expires_at=T0 + 100)
    assert stuck.safe and stuck.cause == "module"
    assert not next_state(stuck, now=T0 + 201, module_version=3, module_expires_at=T0 + 999).safe
