"""The fleet's wire names, shared by the Cube's uplink and the hub: NATS subjects, streams, the KV bucket.

    samantha.up.<region>.<cube>.<kind>     Reported State: one outbox batch per message (stream UP)
    samantha.down.<cube>.decision          signed operator documents for one Cube (stream DOWN)
    samantha.policy.<channel>              the signed policy modules of a release channel (stream POLICY:
                                           last value per subject, a short history)
    samantha.policy._tuf                   the fleet TUF repository's metadata set (not a channel: `_` is no token
                                           start), which lists each channel's module as a target
    samantha.parked.<cube>.<kind>          batches the writer refused, with the reason (stream PARKED)
    samantha.recall.<bundle id>            the root's signed Recall of one bundle (stream RECALL: last value per
                                           bundle, no age limit, so a Cube offline for months still gets it)
"""

from __future__ import annotations

import re

STREAM_UP = "SAMANTHA_UP"
STREAM_DOWN = "SAMANTHA_DOWN"
STREAM_PARKED = "SAMANTHA_PARKED"
STREAM_POLICY = "SAMANTHA_POLICY"
STREAM_RECALL = "SAMANTHA_RECALL"
RECALL_SUBJECTS = "samantha.recall.>"
TUF_SUBJECT = "samantha.policy._tuf"  # in the POLICY stream; no channel can be named `_tuf`
DOMAIN = "hub"  # the root cluster's JetStream domain (clients behind a regional leaf reach it by name)
WRITER_DURABLE = "parquet-writer"

TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # one subject token: no dots, no wildcards

# Headers on an uplink message (Nats-Msg-Id is the batch id: the stream drops a resend within its window).
H_SEQ, H_KIND, H_FIRST_TS = "Samantha-Seq", "Samantha-Kind", "Samantha-First-Ts"
H_RECORDS, H_SHA256, H_CUBE, H_REASON = "Samantha-Records", "Samantha-Sha256", "Samantha-Cube", "Samantha-Reason"
H_BATCH = "Samantha-Batch-Id"  # the writer's dedup key (equal to Nats-Msg-Id, which only holds 2 minutes)


def batch_headers(*, batch_id: str, seq: int, kind: str, first_ts: float, records: int, sha256: str,
                  cube: str) -> dict[str, str]:
    """The headers of one outbox batch on samantha.up (what the writer's `_parse` reads back)."""
    return {"Nats-Msg-Id": batch_id, H_BATCH: batch_id, H_SEQ: str(seq), H_KIND: kind, H_FIRST_TS: repr(first_ts),
            H_RECORDS: str(records), H_SHA256: sha256, H_CUBE: cube}


def token(value: str, field: str) -> str:
    """A subject token, or a ValueError naming the field (a dot would change the subject's shape)."""
    if not TOKEN_RE.match(value or ""):
        raise ValueError(f"{field}: {value!r} is not a subject token (must match {TOKEN_RE.pattern})")
    return value


def up_subject(region: str, cube: str, kind: str) -> str:
    return f"samantha.up.{token(region, 'region')}.{token(cube, 'cube')}.{token(kind, 'kind')}"


def decision_subject(cube: str) -> str:
    return f"samantha.down.{token(cube, 'cube')}.decision"


def policy_subject(channel: str) -> str:
    return f"samantha.policy.{token(channel, 'channel')}"


def parked_subject(cube: str, kind: str) -> str:
    return f"samantha.parked.{token(cube, 'cube')}.{token(kind, 'kind')}"


def recall_subject(bundle_id: str) -> str:
    return f"samantha.recall.{token(bundle_id, 'bundle_id')}"
