"""Toxic specifications: parsing and validation of the Toxiproxy toxic JSON (pure, no I/O).

Shapes follow Toxiproxy v2: `{"name", "type", "stream", "toxicity", "attributes"}`, with
integer attributes in Toxiproxy's units (milliseconds, KB/s, bytes; slicer delay in
microseconds). Two additions:
- `http_error` answers a chosen HTTP status for a fraction (`toxicity`) of requests without
  forwarding them; it parses requests, so it acts on the client->server bytes whichever
  `stream` it is given (default upstream; toxiproxy-python always sends downstream);
- `ttl_s` (top level or inside `attributes`, so clients that only send attributes can set
  it) makes the proxy remove the toxic by itself.

Two modes. Permissive (the server default) accepts every document toxiproxy-server accepts,
with the same meaning, as its Go source decodes them (`toxic_collection.go`, `toxics/*.go`):
unknown fields ignored, keys matched case-insensitively, any int64 attribute value, any
toxicity, stream case-insensitive, `null` keeps the default. Two exceptions, refused because
toxiproxy-server itself would hang or crash on the first byte: a slicer whose sizes make Go's
chunker recurse forever or slice out of bounds (`slicer_is_safe`), and a negative bandwidth
rate. Strict (the `X-Samantha-Strict: 1` header, which Samantha's own `ProxyClient` always
sends, or `--strict` on the server) rejects unknown keys, negative or absurd values and toxicity outside [0, 1] with the field
named, because a typo in a fault must not silently become a different fault.
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
    "bandwidth": {"rate": (0, 10**9)},  # KB/s; 0 (the default) holds all data, as in Go
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
GO_TOXIC_TYPES: tuple[str, ...] = (*TOXIC_TYPES, "noop")  # Toxiproxy registers noop too
INT64 = (-(2**63), 2**63 - 1)


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
        """The direction whose bytes the toxic processes: http_error reads requests whatever its stream
        (Toxiproxy parses the stream case-insensitively and stores it as given)."""
        return "upstream" if self.type == "http_error" else self.stream.lower()

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


def parse_toxic(body: Any, *, strict: bool = True) -> ToxicSpec:
    """A new toxic from a create request body. Raises ToxicError (400) naming the field."""
    if not strict:
        return _go_parse(body)
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


def update_toxic(existing: ToxicSpec, body: Any, *, strict: bool = True) -> tuple[ToxicSpec, bool]:
    """Apply an update body (attributes merge over the current ones, toxicity, ttl_s).

    Returns the new spec and whether a ttl was (re)set by this update.
    """
    if not strict:
        return _go_update(existing, body)
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


# --- permissive: Go's encoding/json over Toxiproxy's structs -------------------------------
_GO_KIND = {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}


def _go_value_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return f"number {json.dumps(v)}"
    return _GO_KIND.get(type(v), "value")


def _go_type_error(v: Any, where: str, go_type: str) -> ToxicError:
    return bad_body(f"json: cannot unmarshal {_go_value_kind(v)} into Go struct field {where} of type {go_type}")


def _go_get(body: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Go matches JSON keys to struct fields case-insensitively; the last match wins."""
    found, value = False, None
    for k, v in body.items():
        if k.lower() == key:
            found, value = True, v
    return found, value


def _go_str(body: dict[str, Any], key: str, default: str, where: str) -> str:
    found, v = _go_get(body, key)
    if not found or v is None:
        return default
    if not isinstance(v, str):
        raise _go_type_error(v, where, "string")
    return v


def _go_toxicity(body: dict[str, Any], default: float) -> float:
    found, v = _go_get(body, "toxicity")
    if not found or v is None:
        return default
    if not _number(v) or abs(float(v)) > 3.4028234663852886e38:
        raise _go_type_error(v, "ToxicWrapper.toxicity", "float32")
    return float(v)


def slicer_is_safe(average_size: int, size_variation: int) -> bool:
    """Whether Go's SlicerToxic.chunk terminates and stays in bounds for every packet size.

    It splits a packet while `len - average_size > size_variation`; with no variation that
    ends only if average_size >= 1, and a variation above average_size + 1 moves the split
    point outside the packet (a slice-bounds panic). The default {0, 0} loops forever.
    """
    if size_variation <= 0:
        return average_size + size_variation >= 1
    return average_size >= size_variation - 1


_GO_STRUCT = {"latency": "LatencyToxic", "bandwidth": "BandwidthToxic", "slow_close": "SlowCloseToxic",
              "timeout": "TimeoutToxic", "reset_peer": "ResetToxic", "slicer": "SlicerToxic",
              "limit_data": "LimitDataToxic", "http_error": "HttpErrorToxic", "noop": "NoopToxic"}


def _go_attributes(toxic_type: str, attrs: Any, base: dict[str, Any]) -> tuple[dict[str, Any], float | None, bool]:
    out = dict(base)
    if attrs is None:
        attrs = {}  # null keeps the defaults (which still have to be sane for a slicer)
    struct = _GO_STRUCT[toxic_type]
    if not isinstance(attrs, dict):
        raise _go_type_error(attrs, "ToxicWrapper.attributes", f"toxics.{struct}")
    go_type = "int" if toxic_type == "slicer" else "int64"
    for key in _INT_ATTRS.get(toxic_type, {}):
        found, v = _go_get(attrs, key)
        if not found or v is None:
            continue
        if not _is_int(v) or not INT64[0] <= v <= INT64[1]:
            raise _go_type_error(v, f"{struct}.attributes.{key}", go_type)
        out[key] = v
    if toxic_type == "http_error":
        found, v = _go_get(attrs, "body")
        if found and v is not None:
            if not isinstance(v, str):
                raise _go_type_error(v, f"{struct}.attributes.body", "string")
            out["body"] = v
        if out["status_code"] not in {s.value for s in HTTPStatus}:
            raise bad_body(f"attributes.status_code: {out['status_code']} is not a known HTTP status")
    if toxic_type == "bandwidth" and out["rate"] < 0:
        raise bad_body(f"attributes.rate: {out['rate']} is negative (toxiproxy-server would crash on the "
                       "first byte); use a rate >= 0 KB/s")
    if toxic_type == "slicer" and not slicer_is_safe(out["average_size"], out["size_variation"]):
        raise bad_body(
            f"attributes: slicer average_size={out['average_size']} size_variation={out['size_variation']} "
            "never finishes slicing (toxiproxy-server would loop or crash on the first byte); "
            "use average_size >= 1 and size_variation < average_size")
    ttl_given, ttl_v = _go_get(attrs, "ttl_s")
    return out, _ttl(ttl_v, "attributes.ttl_s"), ttl_given and ttl_v is not None


def _go_defaults(toxic_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: 0 for k in _INT_ATTRS.get(toxic_type, {})}
    if toxic_type == "http_error":
        out.update(_DEFAULTS["http_error"], body=None)
    return out


def _go_parse(body: Any) -> ToxicSpec:
    """AddToxicJson: decode over the defaults, then stream, name, type, attributes, in Go's order."""
    if not isinstance(body, dict):
        raise bad_body(f"json: cannot unmarshal {_go_value_kind(body).split(' ')[0]} into Go value of type "
                       "toxics.ToxicWrapper")
    name = _go_str(body, "name", "", "ToxicWrapper.name")
    toxic_type = _go_str(body, "type", "", "ToxicWrapper.type")
    stream = _go_str(body, "stream", "downstream", "ToxicWrapper.stream")
    toxicity = _go_toxicity(body, 1.0)
    if stream.lower() not in STREAMS:
        raise ToxicError("stream was invalid, can be either upstream or downstream")
    name = name or f"{toxic_type}_{stream}"
    if toxic_type not in GO_TOXIC_TYPES:
        raise ToxicError("invalid toxic type")
    attrs, ttl, _ = _go_attributes(toxic_type, _go_get(body, "attributes")[1], _go_defaults(toxic_type))
    top_ttl = _ttl(_go_get(body, "ttl_s")[1], "ttl_s")
    return ToxicSpec(name=name, type=toxic_type, stream=stream, toxicity=toxicity, attributes=attrs,
                     ttl_s=top_ttl if top_ttl is not None else ttl)


def _go_update(existing: ToxicSpec, body: Any) -> tuple[ToxicSpec, bool]:
    """UpdateToxicJson: only attributes (merged over the current ones) and toxicity change."""
    if not isinstance(body, dict):
        raise bad_body(f"json: cannot unmarshal {_go_value_kind(body).split(' ')[0]} into Go value of type "
                       "struct { Attributes interface {} \"json:\\\"attributes\\\"\"; Toxicity float32 "
                       "\"json:\\\"toxicity\\\"\" }")
    toxicity = _go_toxicity(body, existing.toxicity)
    attrs, ttl, ttl_given = _go_attributes(existing.type, _go_get(body, "attributes")[1], existing.attributes)
    top_found, top_v = _go_get(body, "ttl_s")
    top_ttl = _ttl(top_v, "ttl_s")
    reset = ttl_given or (top_found and top_v is not None)
    new_ttl = top_ttl if top_ttl is not None else ttl
    return (ToxicSpec(name=existing.name, type=existing.type, stream=existing.stream, toxicity=toxicity,
                      attributes=attrs, ttl_s=new_ttl if reset else existing.ttl_s), reset)


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
