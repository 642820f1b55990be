"""The OpenAI data path's pure logic: answers read (whole and streamed), timing, text divergence against A/A."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.cube.openai_compat import (
    AA_MIN_SAMPLES,
    AABaseline,
    OpenAIAnswerError,
    OpenAIProtocol,
    StreamReader,
    TextAnswer,
    calibrated_divergence,
    parse_answer,
    rates,
    text_distance,
    wants_stream,
)


def _event(doc: object) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\r\n\r\n"  # SSE allows CRLF line ends as well as LF


def _chat_stream(words: list[str], usage: int | None = None) -> bytes:
    body = _event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    for w in words:
        body += _event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": w}}]})
    end = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    if usage is not None:
        end["usage"] = {"completion_tokens": usage}
    return body + _event(end) + b"data: [DONE]\r\n\r\n"


def test_whole_answers_chat_and_completions():
    chat = parse_answer(orjson.dumps({"choices": [{"message": {"role": "assistant", "content": "Hi there"}}],
                                      "usage": {"completion_tokens": 3}}))
    assert chat == TextAnswer("Hi there", 3)
    comp = parse_answer(orjson.dumps({"choices": [{"text": "once upon", "index": 0}]}))
    assert comp == TextAnswer("once upon", None)


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b"<html>oops</html>", "body", "not JSON"),
    (b"[1, 2]", "body", "not an object"),
    (b'{"id": "x"}', "body.choices", "missing"),
    (b'{"error": {"message": "model overloaded"}}', "body.error", "model overloaded"),
    (b'{"choices": [{"message": {"content": 7}}]}', "body.choices[0]", "int, not text"),
])
def test_bad_answers_name_the_field(body, field, reason):
    with pytest.raises(OpenAIAnswerError) as e:
        parse_answer(body)
    assert e.value.field == field and reason in e.value.reason


def test_protocol_parse_raises_value_error_for_the_router():
    with pytest.raises(ValueError, match="body: answer is not JSON"):
        OpenAIProtocol().parse(b"not json", None)


def test_paths_and_stream_flag():
    p = OpenAIProtocol()
    assert p.matches("/v1/chat/completions") and p.matches("/v1/completions") and not p.matches("/v1/models")
    assert wants_stream(b'{"stream": true, "messages": []}')
    assert not wants_stream(b'{"stream": "yes"}') and not wants_stream(b"nope") and not wants_stream(b"[]")


@given(words=st.lists(st.text(alphabet="abc xyz\u00e9", min_size=1, max_size=6), max_size=12),
       cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30))
def test_stream_reading_does_not_depend_on_where_the_bytes_are_cut(words, cuts):
    data = _chat_stream(words)
    r = StreamReader()
    edges = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
        r.feed(data[a:b], float(i))
    got = r.answer()
    assert got.text == "".join(words) and got.tokens == len(words)


def test_first_token_is_the_first_content_chunk_and_usage_wins_over_counting():
    r = StreamReader()
    events = _chat_stream(["Hel", "lo", "!"], usage=5).split(b"\r\n\r\n")
    for t, e in enumerate(events):
        r.feed(e + b"\r\n\r\n", float(t))
    a = r.answer()
    assert a.text == "Hello!" and a.tokens == 5
    assert a.first_token_s == 1.0 and a.last_token_s == 3.0  # event 0 is the role-only chunk


def test_completions_stream_is_read_too():
    data = _event({"choices": [{"text": "one"}]}) + _event({"choices": [{"text": " two"}]}) + b"data: [DONE]\n\n"
    r = StreamReader()
    r.feed(data, 0.5)
    assert r.answer().text == "one two"


@pytest.mark.parametrize(("data", "field", "reason"), [
    (_chat_stream(["a"]).replace(b"data: [DONE]\r\n\r\n", b""), "stream", "before data: [DONE]"),
    (b"data: {not json\n\n", "stream event 1", "not JSON"),
    (b'data: {"error": {"message": "context full"}}\n\ndata: [DONE]\n\n', "stream event 1.error", "context full"),
])
def test_bad_streams_name_the_event(data, field, reason):
    r = StreamReader()
    r.feed(data, 0.0)
    with pytest.raises(OpenAIAnswerError) as e:
        r.answer()
    assert e.value.field == field and reason in e.value.reason


def test_rates_whole_and_streamed():
    assert rates(TextAnswer("x", 10), 500.0) == (500.0, 20.0)  # unstreamed: the first token comes with the rest
    assert rates(TextAnswer("x", None), 500.0) == (500.0, None)
    ttft, tps = rates(TextAnswer("x", 11, first_token_s=0.2, last_token_s=0.7), 750.0)
    assert ttft == pytest.approx(200.0) and tps == pytest.approx(20.0)  # 10 tokens decoded after the first in 0.5 s
    assert rates(TextAnswer("x", 1, first_token_s=0.2, last_token_s=0.2), 250.0) == (pytest.approx(200.0), 4.0)


texts = st.text(alphabet="ab cd", max_size=40)


@given(texts, texts)
def test_text_distance_is_a_bounded_symmetric_distance(a, b):
    d = text_distance(a, b)
    assert 0.0 <= d <= 1.0 and d == text_distance(b, a)
    assert text_distance(a, a) == 0.0
    assert (d == 0.0) == (a.split() == b.split())


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_calibrated_divergence_is_bounded_monotone_and_zero_within_the_floor(r1, r2, floor):
    lo, hi = sorted((r1, r2))
    d_lo, d_hi = calibrated_divergence(lo, floor), calibrated_divergence(hi, floor)
    assert 0.0 <= d_lo <= d_hi <= 1.0
    if floor == 0:
        assert d_hi == hi
    elif hi <= floor:
        assert d_hi == 0.0
    assert calibrated_divergence(1.0, floor) == (0.0 if floor == 1.0 else 1.0)


def test_baseline_restarts_with_a_new_incumbent_and_asks_for_replays_until_it_has_enough():
    b = AABaseline()
    rng = random.Random(1)
    assert b.wanted("v1", rng) and b.floor() is None
    for _ in range(AA_MIN_SAMPLES - 1):
        b.add("v1", 0.5)
    assert b.floor() is None  # too few pairs to tell noise from divergence
    b.add("v1", 0.5)
    assert b.floor() == 0.5
    assert sum(b.wanted("v1", rng) for _ in range(1000)) < 200  # then only a refresh share
    assert b.wanted("v2", rng)
    b.add("v2", 0.0)
    assert len(b.samples) == 1 and b.bundle == "v2"


def _sampled_model(rng: random.Random, answer: list[str], vocabulary: list[str], p: float = 0.3) -> TextAnswer:
    """A sampled language model: its most likely answer, each word drawn otherwise with probability p."""
    words = [rng.choice(vocabulary) if rng.random() < p else w for w in answer]
    return TextAnswer(" ".join(words), len(words))


def test_a_sampled_models_own_variation_does_not_read_as_divergence_but_another_model_does():
    rng = random.Random(7)
    vocabulary = ["the", "cube", "is", "fine", "ok", "yes", "now", "all", "good", "running"]
    incumbent = ["the", "cube", "is", "running", "and", "all", "is", "good"]
    other = ["I", "cannot", "help", "with", "that", "request", "sorry"]
    same, gross, raw, same_div, gross_div = OpenAIProtocol(), OpenAIProtocol(), [], [], []
    for _ in range(300):
        live = _sampled_model(rng, incumbent, vocabulary)
        for p in (same, gross):
            if p.wants_replay("v1"):
                p.calibrate("v1", live, _sampled_model(rng, incumbent, vocabulary))
        canary = _sampled_model(rng, incumbent, vocabulary)
        raw.append(text_distance(live.text, canary.text))
        same_div.append(same.compare(live, canary))
        gross_div.append(gross.compare(live, _sampled_model(rng, other, vocabulary)))
    assert same_div[:AA_MIN_SAMPLES - 1] == [None] * (AA_MIN_SAMPLES - 1)  # calibrating: not compared
    same_div, gross_div = same_div[AA_MIN_SAMPLES:], gross_div[AA_MIN_SAMPLES:]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(raw) > 0.3  # uncalibrated, the identical model would look much changed
    assert mean(same_div) < 0.1, mean(same_div)  # calibrated, it reads as the incumbent's own noise
    assert mean(gross_div) > 0.6, mean(gross_div)  # another model's answers still read as different


def test_a_greedy_incumbent_has_floor_zero_so_any_change_counts():
    p = OpenAIProtocol()
    a = TextAnswer("the cube is fine", 4)
    for _ in range(AA_MIN_SAMPLES):
        p.calibrate("v1", a, a)
    assert p.compare(a, TextAnswer("the cube is broken", 4)) == pytest.approx(0.25)
    assert p.compare(a, None) == 1.0


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["choices", "delta", "message", "content", "text", "usage",
                                                "completion_tokens", "error"]), inner, max_size=3), max_leaves=12)


@given(st.lists(st.one_of(json_values.map(orjson.dumps), st.binary(max_size=20), st.just(b"[DONE]")), max_size=5))
def test_any_stream_gives_an_answer_or_an_error_naming_the_event(datas):
    r = StreamReader()
    r.feed(b"".join(b"data: " + d.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n\n" for d in datas), 0.0)
    try:
        a = r.answer()
    except OpenAIAnswerError as e:
        assert e.field.startswith("stream")
    else:
        assert isinstance(a.text, str) and (a.tokens is None or a.tokens >= 0)


@given(json_values.map(orjson.dumps) | st.binary(max_size=40))
def test_any_whole_answer_gives_an_answer_or_an_error_naming_the_field(data):
    try:
        a = parse_answer(data)
    except OpenAIAnswerError as e:
        assert e.field.startswith("body")
    else:
        assert isinstance(a.text, str)
