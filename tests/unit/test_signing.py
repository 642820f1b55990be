import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.core.signing import KeyPair, SignatureError, canonical_json, sign_document, verify_document

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)

KEY = KeyPair.generate()
OTHER = KeyPair.generate()


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "signature"), json_values, max_size=6))
def test_sign_then_verify_roundtrips(doc):
    signed = sign_document(doc, KEY)
    assert verify_document(signed, {KEY.public.key_id: KEY.public}) == KEY.public.key_id


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "signature"), json_values,
                       min_size=1, max_size=6), st.data())
def test_any_change_breaks_the_signature(doc, data):
    signed = sign_document(doc, KEY)
    k = data.draw(st.sampled_from(sorted(doc)))
    tampered = {**signed, k: ["tampered", signed[k]]}
    with pytest.raises(SignatureError):
        verify_document(tampered, {KEY.public.key_id: KEY.public})


def test_unknown_key_and_missing_signature_are_refused():
    signed = sign_document({"a": 1}, OTHER)
    with pytest.raises(SignatureError, match="unknown signing key"):
        verify_document(signed, {KEY.public.key_id: KEY.public})
    with pytest.raises(SignatureError, match="missing"):
        verify_document({"a": 1}, {KEY.public.key_id: KEY.public})


def test_canonical_json_is_order_independent_and_refuses_nan():
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_key_files_roundtrip(tmp_path):
    p = tmp_path / "k" / "cube.key"
    kp = KeyPair.load_or_create(p)
    assert (p.stat().st_mode & 0o777) == 0o600
    assert KeyPair.load(p).public.key_id == kp.public.key_id
    assert (tmp_path / "k" / "cube.key.pub").read_text().strip() == kp.public.to_b64()
