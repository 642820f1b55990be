"""Telemetry-derived text goes into a prompt only as quoted data.

`quote_data` turns any JSON-like value into one fenced block of JSON:
- every string is length-capped (with a marker saying how much was cut), every
  list and mapping is capped in items, nesting is capped in depth;
- the JSON is ASCII-only, so control characters, bidi overrides and look-alike
  letters arrive as visible \\uXXXX escapes;
- `<`, `>` and backticks are escaped too, so the fence (which uses `<<<`/`>>>`)
  can never be closed or imitated from inside the data;
- the whole block is capped; past the cap the caps tighten until it fits.
The prompt templates tell the model that the fenced block is data, not instructions.
"""

from __future__ import annotations

import json
import math
from typing import Any

DATA_OPEN = "<<<DATA"
DATA_CLOSE = "DATA>>>"

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "`": "\\u0060"}


def cap_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marking how many were dropped."""
    if len(text) <= limit:
        return text
    marker = f"...[+{len(text)}]"
    keep = max(0, limit - len(marker))
    marker = f"...[+{len(text) - keep}]"
    keep = max(0, limit - len(marker))
    return (text[:keep] + marker)[:limit]


def _scalar(v: Any, max_str: int) -> Any:
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return cap_text(str(v), max_str)


def sanitize(value: Any, *, max_str: int, max_items: int, max_depth: int = 6) -> Any:
    """A JSON-safe copy of `value` within the caps."""
    if max_depth <= 0:
        return cap_text(str(value), max_str) if not isinstance(value, dict | list | tuple) else "..."
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= max_items:
                out["..."] = f"{len(value) - max_items} more"
                break
            out[cap_text(str(k), max_str)] = sanitize(v, max_str=max_str, max_items=max_items,
                                                      max_depth=max_depth - 1)
        return out
    if isinstance(value, list | tuple):
        items = [sanitize(v, max_str=max_str, max_items=max_items, max_depth=max_depth - 1)
                 for v in value[:max_items]]
        if len(value) > max_items:
            items.append(f"... {len(value) - max_items} more")
        return items
    return _scalar(value, max_str)


def _dump(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    for ch, esc in _ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def quote_data(value: Any, *, max_str: int = 240, max_items: int = 12, max_total: int = 3000) -> str:
    """One fenced JSON block holding `value`, at most max_total + fence characters long."""
    if max_total < 64 or max_str < 8 or max_items < 1:
        raise ValueError("caps too small: need max_total >= 64, max_str >= 8, max_items >= 1")
    s, n = max_str, max_items
    for _ in range(12):
        body = _dump(sanitize(value, max_str=s, max_items=n))
        if len(body) <= max_total:
            break
        s, n = max(8, s // 2), max(1, n // 2)
    else:  # even the tightest caps do not fit: say so rather than overflow
        body = _dump({"truncated": True})
    return f"{DATA_OPEN}\n{body}\n{DATA_CLOSE}"


def unquote_data(block: str) -> Any:
    """The JSON value inside a block made by `quote_data` (for tests and audits)."""
    if not (block.startswith(DATA_OPEN + "\n") and block.endswith("\n" + DATA_CLOSE)):
        raise ValueError("not a quoted data block")
    return json.loads(block[len(DATA_OPEN) + 1: -len(DATA_CLOSE) - 1])
