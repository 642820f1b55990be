"""Operator acts on the hub over NATS: publish a signed policy module to a channel, relay an operator
document to one Cube, publish a signed Recall of one bundle to every Cube. The hub relays; each Cube verifies (signature, version, expiry, operator keys)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from samantha.core import fleet
from samantha.core.signing import sha256_hex


class HubUnreachable(RuntimeError):
    pass


def _servers(url: str) -> list[str]:
    return [s.strip() for s in url.split(",") if s.strip()]


async def _quiet(e: Exception) -> None:
    pass  # one clear failure is raised below; the client's own log would print a traceback per try


async def _with_js(url: str, fn: Any, timeout: float) -> Any:
    import nats

    try:
        # bounded: nats-py walks its server pool max_reconnect_attempts times, reconnect_time_wait apart
        nc = await asyncio.wait_for(nats.connect(servers=_servers(url), connect_timeout=timeout, allow_reconnect=False,
                                                 max_reconnect_attempts=1, reconnect_time_wait=0.2,
                                                 error_cb=_quiet), 2 * timeout)
    except Exception as e:  # noqa: BLE001
        raise HubUnreachable(f"hub unreachable at {url}: {type(e).__name__}: {e}") from None
    try:
        return await fn(nc.jetstream(domain=fleet.DOMAIN, timeout=timeout))
    finally:
        await nc.close()


def current_policy(url: str, channel: str, timeout: float = 10.0) -> dict[str, Any] | None:
    fleet.policy_subject(channel)
    async def get(js: Any) -> Any:
        from nats.js.errors import NotFoundError

        try:
            return json.loads((await js.get_last_msg(fleet.STREAM_POLICY, fleet.policy_subject(channel))).data)
        except NotFoundError:
            return None
    return asyncio.run(_with_js(url, get, timeout))


def publish_policy(url: str, channel: str, doc: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    fleet.policy_subject(channel)
    data = json.dumps(doc, sort_keys=True).encode()

    async def put(js: Any) -> Any:
        ack = await js.publish(fleet.policy_subject(channel), data,
                               headers={"Nats-Msg-Id": f"policy-{channel}-v{doc['version']}-{sha256_hex(data)[:16]}"})
        return {"version": doc["version"], "sha256": sha256_hex(data), "channel": channel, "stream_seq": ack.seq}
    return asyncio.run(_with_js(url, put, timeout))


def publish_tuf(url: str, metadata: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """The fleet TUF repository's metadata set on `samantha.policy._tuf` (Cubes with a pinned root read the last)."""
    data = json.dumps(metadata, sort_keys=True).encode()

    async def put(js: Any) -> Any:
        ack = await js.publish(fleet.TUF_SUBJECT, data, headers={"Nats-Msg-Id": f"tuf-{sha256_hex(data)[:16]}"})
        return {"sha256": sha256_hex(data), "files": sorted(metadata.get("files", {})), "stream_seq": ack.seq}
    return asyncio.run(_with_js(url, put, timeout))


def relay_doc(url: str, cube: str, doc: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    subject = fleet.decision_subject(cube)  # a bad cube id is bad input, before any connection

    async def put(js: Any) -> Any:
        ack = await js.publish(subject, json.dumps(doc, sort_keys=True).encode(),
                               headers={"Nats-Msg-Id": f"doc-{doc.get('nonce', '')}"})
        return {"seq": ack.seq, "cube": cube, "subject": subject}
    return asyncio.run(_with_js(url, put, timeout))


def publish_recall(url: str, doc: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """A signed Recall on `samantha.recall.<bundle id>`: the stream keeps the last one per bundle, for ever."""
    subject = fleet.recall_subject(str(doc.get("bundle_id", "")))
    data = json.dumps(doc, sort_keys=True).encode()

    async def put(js: Any) -> Any:
        ack = await js.publish(subject, data, headers={"Nats-Msg-Id": f"recall-{doc.get('nonce', '')}"})
        return {"bundle_id": doc["bundle_id"], "subject": subject, "stream_seq": ack.seq, "nonce": doc["nonce"]}
    return asyncio.run(_with_js(url, put, timeout))


def up_stream_state(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """SAMANTHA_UP as the server holds it: a work queue keeps only what the writers have not written yet."""
    async def get(js: Any) -> dict[str, Any]:
        info = await js.stream_info(fleet.STREAM_UP)
        return {"retention": str(getattr(info.config.retention, "value", info.config.retention)),
                "max_bytes": int(info.config.max_bytes or 0), "received": int(info.state.last_seq),
                "unwritten": int(info.state.messages), "bytes": int(info.state.bytes)}
    return asyncio.run(_with_js(url, get, timeout))
