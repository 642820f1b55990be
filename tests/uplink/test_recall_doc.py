"""The Recall document's checks (pure): signed by a trusted hub key, well-formed, not from the future."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from samantha.core.signing import KeyPair
from samantha.uplink.recall import RECALL_KIND, check_recall, sign_recall

NOW = 1_800_000_000.0
BUNDLE = "ab" * 32
HUB, MALLORY = KeyPair.generate(), KeyPair.generate()
TRUSTED = {HUB.public.key_id: HUB.public}


def body(**kw):
    return {"kind": RECALL_KIND, "bundle_id": BUNDLE, "nonce": "n0nce-0001", "issued_at": NOW - 5,
            "operator": "ana", "reason": "NaN outputs", **kw}


def test_a_recall_signed_by_the_hub_key_passes():
    c = check_recall(sign_recall(body(), HUB), keys=TRUSTED, now=NOW)
    assert c.ok and c.signer == HUB.public.key_id and c.doc is not None and c.doc.bundle_id == BUNDLE


@pytest.mark.parametrize("doc, reason", [
    ("not json", "not a JSON object"),
    ({**body()}, "signature: missing 'signature'"),
    (sign_recall(body(), MALLORY), "signature: unknown signing key"),
    ({**sign_recall(body(), HUB), "bundle_id": "cd" * 32}, "signature: signature does not verify"),
    ({**body(), "kind": "samantha/policy-module"}, "kind: expected 'samantha/recall'"),
    (sign_recall(body(issued_at=NOW + 3600), HUB), "issued_at: in the future"),
])
def test_unsigned_forged_or_malformed_recalls_are_refused_with_the_reason(doc, reason):
    c = check_recall(doc, keys=TRUSTED, now=NOW)
    assert not c.ok and c.reason.startswith(reason), c.reason


def test_a_signed_but_malformed_recall_names_the_field():
    from samantha.core.signing import sign_document

    c = check_recall(sign_document(body(bundle_id="v2"), HUB), keys=TRUSTED, now=NOW)
    assert not c.ok and c.reason.startswith("bundle_id:"), c.reason
    with pytest.raises(ValidationError, match="bundle_id"):
        sign_recall(body(bundle_id="v2"), HUB)
