"""The OpenAI-compatible data path (llama.cpp server, vLLM, Ollama): answers read, timed and compared as text.

`/v1/chat/completions` and `/v1/completions` pass through unchanged, a streamed answer (SSE) chunk
by chunk. Each answer is read for its text and completion tokens (the `usage` field when present,
else the content chunks counted), and timed: time to first token at the first content chunk, tokens
per second over the decode that follows it.

Shadow divergence is a normalised word-level edit distance between the live and the shadow text,
read against the incumbent's own variability (A/A): the incumbent answers some prompts twice, and a
text distance is reported only by how far it exceeds what the incumbent does to itself (the A/A
floor, a high quantile of those self-distances). A sampled model's natural variation then reads as
about 0, a greedy model's floor is 0 and the raw distance is reported as is. Until the floor has
AA_MIN_SAMPLES pairs, shadow answers are recorded but not compared (divergence null).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from rapidfuzz.distance import Levenshtein

__all__ = ["CHAT_PATH", "COMPLETIONS_PATH", "STREAM_CONTENT_TYPE", "TPS_METRIC", "TTFT_METRIC", "AABaseline",
           "OpenAIAnswerError", "OpenAIProtocol", "StreamReader", "TextAnswer", "calibrated_divergence",
           "parse_answer", "rates", "text_distance", "wants_stream"]

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"
TTFT_METRIC = "llm_ttft_ms"  # per-request samples, labels slot, bundle, shadow, stream
TPS_METRIC = "llm_tokens_per_s"
AA_QUANTILE = 0.95  # the A/A floor: an identical model exceeds it on about 1 prompt in 20, and only a little
AA_MIN_SAMPLES = 8  # every shadowed prompt is replayed on the incumbent until the floor has this many
AA_REFRESH = 0.1  # then this share of them, so the floor follows the incumbent
AA_WINDOW = 200


class OpenAIAnswerError(ValueError):
    """An answer that does not fit the OpenAI API; names the field."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class TextAnswer:
    text: str
    tokens: int | None  # completion tokens: `usage.completion_tokens`, else content chunks counted
    first_token_s: float | None = None  # from sending the request to the first content chunk (streamed only)
    last_token_s: float | None = None  # ... to the last content chunk


def wants_stream(body: bytes) -> bool:
    """The request asks for a streamed answer (`"stream": true`)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("stream") is True


def _choice_text(doc: dict[str, Any], where: str) -> str:
    """The text of choice 0: chat `message.content` or `delta.content`, completions `text`; "" when none."""
    choices = doc.get("choices")
    if not isinstance(choices, list):
        raise OpenAIAnswerError(f"{where}.choices", "missing or not a list")
    if not choices:
        return ""  # a usage-only chunk at the end of a stream
    c = choices[0]
    if not isinstance(c, dict):
        raise OpenAIAnswerError(f"{where}.choices[0]", "not an object")
    part = c.get("message") or c.get("delta")
    text = part.get("content") if isinstance(part, dict) else c.get("text")
    if text is not None and not isinstance(text, str):
        raise OpenAIAnswerError(f"{where}.choices[0]", f"content is {type(text).__name__}, not text")
    return text or ""


def _usage_tokens(doc: dict[str, Any]) -> int | None:
    usage = doc.get("usage")
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise OpenAIAnswerError(where, "answer is not JSON") from None
    if not isinstance(doc, dict):
        raise OpenAIAnswerError(where, f"a JSON {type(doc).__name__}, not an object")
    if "error" in doc:
        raise OpenAIAnswerError(f"{where}.error", str(doc["error"])[:200])
    return doc


def parse_answer(data: bytes) -> TextAnswer:
    """A whole (not streamed) answer."""
    doc = _json(data, "body")
    return TextAnswer(_choice_text(doc, "body"), _usage_tokens(doc))


class StreamReader:
    """Reads an SSE answer as its bytes pass by, without changing them (the relay needs them as they are).

    SSE framing (events end at a blank line; `data:` lines carry JSON, the last one `[DONE]`) is read
    here because a client library's event iterator would consume the stream the relay must pass on.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []
        self.parts: list[str] = []
        self.chunks = 0  # content chunks
        self.usage: int | None = None
        self.first_s: float | None = None
        self.last_s: float | None = None
        self.done = False
        self.error: OpenAIAnswerError | None = None

    def feed(self, chunk: bytes, t: float) -> None:
        """`t`: seconds since the request was sent, when this chunk arrived."""
        lines = (self._pending + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop()  # an unterminated line waits for the next chunk
        for line in lines:
            if not line:
                self._dispatch(t)
            elif line.startswith(b"data:"):
                self._data.append(line[6:] if line.startswith(b"data: ") else line[5:])

    def _dispatch(self, t: float) -> None:
        data, self._data = b"\n".join(self._data), []
        if not data or self.error is not None:
            return
        if data.strip() == b"[DONE]":
            self.done = True
            return
        try:
            doc = _json(data, f"stream event {self.chunks + 1}")
            text = _choice_text(doc, f"stream event {self.chunks + 1}")
        except OpenAIAnswerError as e:
            self.error = e
            return
        usage = _usage_tokens(doc)
        self.usage = usage if usage is not None else self.usage  # servers send it on the last chunk only
        if text:
            self.parts.append(text)
            self.chunks += 1
            self.first_s = t if self.first_s is None else self.first_s
            self.last_s = t

    def answer(self) -> TextAnswer:
        """The whole answer once the stream ended; OpenAIAnswerError if it was bad or cut short."""
        if self._pending:
            self.feed(b"\n\n", self.last_s or 0.0)
        if self.error is not None:
            raise self.error
        if not self.done:
            raise OpenAIAnswerError("stream", "ended before data: [DONE]")
        return TextAnswer("".join(self.parts), self.usage if self.usage is not None else self.chunks,
                          self.first_s, self.last_s)


def rates(answer: TextAnswer, latency_ms: float) -> tuple[float | None, float | None]:
    """(time to first token ms, tokens per second). Unstreamed, the first token reaches the caller with the
    whole answer; streamed, tokens per second is the decode after the first token."""
    if answer.first_token_s is None:
        ttft = latency_ms
        tps = answer.tokens / (latency_ms / 1000) if answer.tokens and latency_ms > 0 else None
        return ttft, tps
    ttft = answer.first_token_s * 1000
    span = (answer.last_token_s or answer.first_token_s) - answer.first_token_s
    if answer.tokens and answer.tokens > 1 and span > 0:
        return ttft, (answer.tokens - 1) / span
    return ttft, answer.tokens / (latency_ms / 1000) if answer.tokens and latency_ms > 0 else None


def text_distance(a: str, b: str) -> float:
    """Normalised word-level edit distance in [0, 1]: the share of words changed; 0 for two empty texts."""
    return float(Levenshtein.normalized_distance(a.split(), b.split()))


def calibrated_divergence(raw: float, floor: float) -> float:
    """How far a text distance exceeds the A/A floor, rescaled to [0, 1]."""
    if floor <= 0:
        return raw
    if floor >= 1:
        return 0.0  # the incumbent never answers a prompt twice alike: text cannot tell models apart
    return max(0.0, raw - floor) / (1.0 - floor)


class AABaseline:
    """The incumbent's distances to itself on repeated prompts; restarted when the incumbent changes."""

    def __init__(self, window: int = AA_WINDOW, min_samples: int = AA_MIN_SAMPLES) -> None:
        self.bundle: str | None = None
        self.samples: deque[float] = deque(maxlen=window)
        self.min_samples = min_samples

    def add(self, bundle: str | None, distance: float) -> None:
        if bundle != self.bundle:
            self.bundle, self.samples = bundle, deque(maxlen=self.samples.maxlen)
        self.samples.append(distance)

    def wanted(self, bundle: str | None, rng: random.Random | None = None) -> bool:
        if bundle != self.bundle or len(self.samples) < self.min_samples:
            return True
        return (rng or random).random() < AA_REFRESH

    def floor(self) -> float | None:
        """None until `min_samples` pairs: a floor from a handful would call noise divergence."""
        if len(self.samples) < self.min_samples:
            return None
        return float(np.quantile(np.asarray(self.samples), AA_QUANTILE))


class OpenAIProtocol:
    """The router's data-path hooks for the OpenAI API (see the module doc)."""

    def __init__(self, aa_min_samples: int = AA_MIN_SAMPLES) -> None:
        self.baseline = AABaseline(min_samples=aa_min_samples)

    def matches(self, path: str) -> bool:
        return path in (CHAT_PATH, COMPLETIONS_PATH)

    def streams(self, body: bytes) -> bool:
        return wants_stream(body)

    def reader(self) -> StreamReader:
        return StreamReader()

    def parse(self, data: bytes, contract: Any) -> tuple[TextAnswer, str | None, float | None]:
        try:
            return parse_answer(data), None, None
        except OpenAIAnswerError as e:
            raise ValueError(str(e)) from None

    def rates(self, answer: TextAnswer, latency_ms: float) -> tuple[float | None, float | None]:
        return rates(answer, latency_ms)

    def wants_replay(self, incumbent: str | None) -> bool:
        return self.baseline.wanted(incumbent)

    def calibrate(self, incumbent: str | None, first: TextAnswer, second: TextAnswer) -> None:
        self.baseline.add(incumbent, text_distance(first.text, second.text))

    def compare(self, live: TextAnswer, shadow: TextAnswer | None) -> float | None:
        """None (not compared) while the A/A floor is being measured; a failed shadow answer is 1."""
        if shadow is None:
            return 1.0
        floor = self.baseline.floor()
        return None if floor is None else calibrated_divergence(text_distance(live.text, shadow.text), floor)
