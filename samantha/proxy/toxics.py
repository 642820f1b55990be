"""Toxic specifications: parsing and validation of the Toxiproxy toxic JSON (pure, no I/O).

Shapes follow Toxiproxy v2: `{"name", "type", "stream", "toxicity", "attributes"}`, with
integer attributes in Toxiproxy's units (milliseconds, KB/s, bytes; slicer delay in
microseconds). Two additions:
- `http_error` answers a chosen HTTP status for a fraction (`toxicity`) of requests without
  forwarding them; it parses requests, so it acts on the client->server bytes whichever
  `stream` it is given (default upstream; toxiproxy-python always sends downstream);
- `ttl_s` (top level or inside `attributes`, so clients that only send attributes can set
  it) makes the proxy remove the toxic by itself.

Stricter than Toxiproxy on purpose: unknown keys, negative or absurd values and toxicity
outside [0, 1] are rejected with the field named, because a typo in a fault must not
silently become a different fault.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

STREAMS = ("upstream", "downstream")
MAX_MS = 3_600_000  # one hour: longer waits are never a sane fault on a Cube
MAX_TTL_S = 7 * 86400.0
MAX_NAME = 200
MAX_BODY = 64 * 1024


class ToxicError(ValueError):
    """A bad toxic request; `status` and `message` follow Toxiproxy's error bodies."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_body(reason: str) -> ToxicError:
    return ToxicError(f"bad request body: {reason}")


# Per type: attribute -> (min, max); every attribute is an integer and defaults to 0 as in Toxiproxy.
_INT_ATTRS: dict[str, dict[str, tuple[int, int]]] = {
    "latency": {"latency": (0, MAX_MS), "jitter": (0, MAX_MS)},
    "bandwidth": {"rate": (0, 10**9)},  # KB/s; 0 means unlimited
    "slow_close": {"delay": (0, MAX_MS)},
    "timeout": {"timeout": (0, MAX_MS)},  # 0: never close, just stall
    "reset_peer": {"timeout": (0, MAX_MS)},
    "slicer": {"average_size": (1, 10**8), "size_variation": (0, 10**8), "delay": (0, MAX_MS * 1000)},
    "limit_data": {"bytes": (0, 2**53)},
    "http_error": {"status_code": (400, 599)},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "slicer": {"average_size": 1},
    "http_error": {"status_code": 503},
}
TOXIC_TYPES: tuple[str, ...] = tuple(_INT_ATTRS)


@dataclass(frozen=True)
class ToxicSpec:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)
    ttl_s: float | None = None

    @property
    def acts_on(self) -> str:
        """The direction whose bytes the toxic processes: http_error reads requests whatever its stream."""
        return "upstream" if self.type == "http_error" else self.stream

    def to_json(self) -> dict[str, Any]:
        attrs = dict(self.attributes)
        if self.ttl_s is not None:
            attrs["ttl_s"] = self.ttl_s
        return {"attributes": attrs, "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}


class Toxic:
    """A live toxic; replaced (never mutated) on update so connections re-roll toxicity."""

    __slots__ = ("spec", "deadline", "expires_at")

    def __init__(self, spec: ToxicSpec, deadline: float | None, expires_at: float | None) -> None:
        self.spec = spec
        self.deadline = deadline  # clock.monotonic() at which the ttl runs out
        self.expires_at = expires_at  # same instant, wall time, for humans and ledgers

    def to_json(self) -> dict[str, Any]:
        out = self.spec.to_json()
        if self.expires_at is not None:
            out["expires_at"] = round(self.expires_at, 3)
        return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(float(v))


def _ttl(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if not _number(v) or not 0 < float(v) <= MAX_TTL_S:
        raise bad_body(f"{where}: must be a number of seconds in (0, {MAX_TTL_S:g}]")
    return float(v)


def _toxicity(v: Any) -> float:
    if not _number(v) or not 0.0 <= float(v) <= 1.0:
        raise bad_body("toxicity: must be a number between 0 and 1")
    return float(v)


def validate_attributes(toxic_type: str, attrs: Any, base: dict[str, Any] | None = None) -> tuple[dict[str, Any], float | None, bool]:
    """Merge `attrs` over `base` (or the type's defaults) and validate.

    Returns (attributes without ttl, ttl_s or None, whether ttl_s was given).
    """
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        raise bad_body("attributes: must be a JSON object")
    limits = _INT_ATTRS[toxic_type]
    out: dict[str, Any] = dict(base) if base is not None else {k: 0 for k in limits}
    if base is None:
        out.update(_DEFAULTS.get(toxic_type, {}))
        if toxic_type == "http_error":
            out["body"] = None
    ttl_given = "ttl_s" in attrs
    ttl = _ttl(attrs.get("ttl_s"), "attributes.ttl_s")
    for key, value in attrs.items():
        if key == "ttl_s":
            continue
        if toxic_type == "http_error" and key == "body":
            if value is not None and (not isinstance(value, str) or len(value) > MAX_BODY):
                raise bad_body(f"attributes.body: must be a string of at most {MAX_BODY} characters")
            out["body"] = value
            continue
        if key not in limits:
            allowed = ", ".join(sorted([*limits, "ttl_s", *(["body"] if toxic_type == "http_error" else [])]))
            raise bad_body(f"attributes.{key}: unknown attribute for {toxic_type} toxic (allowed: {allowed})")
        lo, hi = limits[key]
        if not _is_int(value):
            raise bad_body(f"attributes.{key}: must be an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise bad_body(f"attributes.{key}: must be between {lo} and {hi}, got {value}")
        out[key] = value
    if toxic_type == "slicer" and out["size_variation"] >= out["average_size"]:
        raise bad_body("attributes.size_variation: must be less than average_size")
    if toxic_type == "http_error" and out["status_code"] not in {s.value for s in HTTPStatus}:
        raise bad_body(f"attributes.status_code: {out['status_code']} is not a known HTTP status")
    return out, ttl, ttl_given


_CREATE_KEYS = {"name", "type", "stream", "toxicity", "attributes", "ttl_s"}


def parse_toxic(body: Any) -> ToxicSpec:
    """A new toxic from a create request body. Raises ToxicError (400) naming the field."""
    if not isinstance(body, dict):
        raise bad_body("expected a JSON object")
    unknown = sorted(set(body) - _CREATE_KEYS)
    if unknown:
        raise bad_body(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(_CREATE_KEYS))})")
    toxic_type = body.get("type")
    if not isinstance(toxic_type, str) or toxic_type not in _INT_ATTRS:
        raise ToxicError("invalid toxic type")
    stream = body.get("stream")
    if stream is None or stream == "":
        stream = "upstream" if toxic_type == "http_error" else "downstream"
    if stream not in STREAMS:
        raise ToxicError("stream was invalid, can be either upstream or downstream")
    name = body.get("name")
    if name is None or name == "":
        name = f"{toxic_type}_{stream}"
    if not isinstance(name, str) or len(name) > MAX_NAME or "/" in name:
        raise bad_body(f"name: must be a string of at most {MAX_NAME} characters without '/'")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attrs, ttl, _ = validate_attributes(toxic_type, body.get("attributes"))
    top_ttl = _ttl(body.get("ttl_s"), "ttl_s")
    if top_ttl is not None and ttl is not None and top_ttl != ttl:
        raise bad_body("ttl_s: given twice with different values (top level and attributes)")
    return ToxicSpec(name=name, type=toxic_type, stream=stream, toxicity=toxicity,
                     attributes=attrs, ttl_s=top_ttl if top_ttl is not None else ttl)


def update_toxic(existing: ToxicSpec, body: Any) -> tuple[ToxicSpec, bool]:
    """Apply an update body (attributes merge over the current ones, toxicity, ttl_s).

    Returns the new spec and whether a ttl was (re)set by this update.
    """
    if not isinstance(body, dict):
        raise bad_body("expected a JSON object")
    unknown = sorted(set(body) - _CREATE_KEYS)
    if unknown:
        raise bad_body(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(_CREATE_KEYS))})")
    for key in ("name", "type", "stream"):
        if key in body and body[key] not in (None, "", getattr(existing, key)):
            raise bad_body(f"{key}: cannot be changed by an update (delete and re-create the toxic)")
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else existing.toxicity
    attrs, ttl, ttl_given = validate_attributes(existing.type, body.get("attributes"), base=existing.attributes)
    top_ttl = _ttl(body.get("ttl_s"), "ttl_s")
    if top_ttl is not None and ttl is not None and top_ttl != ttl:
        raise bad_body("ttl_s: given twice with different values (top level and attributes)")
    new_ttl = top_ttl if top_ttl is not None else ttl
    reset = ttl_given or "ttl_s" in body
    spec = ToxicSpec(name=existing.name, type=existing.type, stream=existing.stream, toxicity=toxicity,
                     attributes=attrs, ttl_s=new_ttl if reset else existing.ttl_s)
    return spec, reset


def http_error_response(status_code: int, body: str | None, close: bool) -> bytes:
    """The HTTP/1.1 response the http_error toxic sends instead of forwarding a request."""
    status = HTTPStatus(status_code)
    if body is None:
        payload = json.dumps({"error": "fault injected by samantha proxy", "status": status_code}).encode()
        ctype = "application/json"
    else:
        payload = body.encode()
        ctype = "text/plain; charset=utf-8"
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(payload)}\r\nX-Samantha-Fault: http_error\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
    return head.encode("latin-1") + payload
