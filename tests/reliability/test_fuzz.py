"""Property tests over the SSE -> reducer path, through the real client code.

For well-formed streams, however the bytes are split and whatever unknown
events, comments and extra fields are mixed in, the text is exactly the
concatenated deltas: never lost, never duplicated. For broken bodies (cut
anywhere, or random bytes) the only exceptions are our typed errors, and the
partial text is always a prefix of the real answer.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_jockey import ChatJockey, JockeyError
from tests.support import API_KEY, STORE, ChunkedBody, deltas_of, transcript

NAMES = [
    "plain_answer",
    "intermediate_outputs",
    "keepalives",
    "unknown_events",
    "incomplete",
]
BODIES = {name: transcript(name) for name in NAMES}
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def stream(chunks: list[bytes]):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=ChunkedBody(chunks),
        )

    llm = ChatJockey(
        api_key=API_KEY,
        knowledge_store_id=STORE,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )
    out = []
    for chunk in llm.stream("q"):
        out.append(chunk)
    total = out[0]
    for chunk in out[1:]:
        total += chunk
    return total


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


JUNK_FRAMES = st.sampled_from(
    [
        b": comment\n\n",
        b"retry: 100\n\n",
        b"id: 7\n\n",
        b"event: nothing\n\n",
        b'data: {"type":"acme:future","x":[1,2]}\n\n',
        b'event: response.reasoning.delta\ndata: {"type":"response.reasoning.delta","delta":"zzz"}\n\n',
        b'data: {"type":"keepalive","sequence_number":99}\n\n',
        b'data: {"type":"response.output_text.annotation.added","annotation":{}}\n\n',
    ]
)


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
    crlf=st.booleans(),
)
def test_any_split_keeps_every_delta_exactly_once(name, cuts, crlf) -> None:
    body = BODIES[name]
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    assert stream(split(body, cuts)).text == "".join(deltas_of(BODIES[name]))


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    junk=st.lists(st.tuples(st.integers(min_value=0), JUNK_FRAMES), max_size=12),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_unknown_events_and_garbage_lines_change_nothing(name, junk, cuts) -> None:
    frames = BODIES[name].split(b"\n\n")[:-1]
    frames = [f + b"\n\n" for f in frames]
    for position, frame in junk:
        frames.insert(
            position % len(frames), frame
        )  # never after [DONE], the last frame
    body = b"".join(frames)
    result = stream(split(body, cuts))
    assert result.text == "".join(deltas_of(BODIES[name]))
    assert result.response_metadata["status"] in ("completed", "incomplete")


@FUZZ
@given(name=st.sampled_from(NAMES), cut=st.integers(min_value=0))
def test_a_truncated_body_fails_only_with_a_typed_error_keeping_a_prefix(
    name, cut
) -> None:
    body = BODIES[name]
    full = "".join(deltas_of(body))
    cut %= len(body)
    try:
        result = stream([body[:cut]])
    except JockeyError as err:
        assert full.startswith(err.partial_text)
    else:
        assert result.text == full  # cut after the terminal event: nothing was lost


@FUZZ
@given(
    data=st.binary(max_size=400),
    prefix=st.sampled_from(
        [b"", b"data: ", b"data: {", b'data: {"type":"response.created"']
    ),
)
def test_random_bytes_only_ever_raise_typed_errors(data, prefix) -> None:
    try:
        stream([prefix + data])
    except JockeyError:
        pass


@FUZZ
@given(text=st.text(min_size=1, max_size=40))
def test_any_unicode_delta_round_trips(text) -> None:
    events = [
        json.loads(line[6:])
        for line in BODIES["plain_answer"].decode().split("\n")
        if line.startswith("data: {")
    ]
    for event in events:
        if event["type"] == "response.output_text.delta":
            event["delta"] = text
    body = (
        b"".join(
            b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n"
            for e in events
        )
        + b"data: [DONE]\n\n"
    )
    n = sum(e["type"] == "response.output_text.delta" for e in events)
    assert stream(split(body, list(range(3, len(body), 5)))).text == text * n


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    value=JSON_VALUES,
    pad=st.tuples(*[st.sampled_from(["", " ", "\t", "\n ", "\r"])] * 2),
    junk=st.sampled_from(["", "x", "}", " {}", "\x00", '"', "\udcff"]),
)
def test_event_data_parses_exactly_as_json_loads_does(value, pad, junk) -> None:
    from langchain_jockey._sse import _parse

    data = (pad[0] + json.dumps(value) + pad[1] + junk).encode(errors="surrogatepass")
    try:
        expected = json.loads(data)
    except ValueError:
        expected = None
    if not isinstance(expected, dict):
        with pytest.raises(JockeyError):
            _parse(data)
    else:
        assert _parse(data) == expected


WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.just("\ud800"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


def _paths(value, prefix=()):
    """Every (path) to a field inside a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=4),
    values=st.lists(WRONG_VALUES, min_size=4, max_size=4),
)
def test_structurally_wrong_events_raise_only_typed_errors(name, picks, values) -> None:
    events = [
        json.loads(line[len(b"data: ") :])
        for line in BODIES[name].split(b"\n")
        if line.startswith(b"data: {")
    ]
    for (which, where), value in zip(picks, values, strict=False):
        index = which % len(events)
        paths = list(_paths(events[index]))
        if paths:
            events[index] = _replace(events[index], paths[where % len(paths)], value)
    body = (
        b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        + b"data: [DONE]\n\n"
    )
    try:
        total = stream([body])
    except JockeyError:
        return
    total.content_blocks  # noqa: B018 - reading them must not raise
    assert isinstance(total.text, str)
