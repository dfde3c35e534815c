"""The emulator as a server facing hostile clients (issue #25).

Every malformed request gets a 4xx JSON error in the API's flat shape and the
server goes on serving. No test here may leave a traceback on stderr or in the
log: the `_quiet` fixture checks that after each one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h11
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_jockey.emulator import (
    DEMO_API_KEY,
    DEMO_STORE_ID,
    FAULT_HEADER,
    LENGTH_HEADER,
    STORES,
    Emulator,
    EmulatorConfig,
    EmulatorServer,
)

KEY = DEMO_API_KEY.encode()
STORE = DEMO_STORE_ID.encode()
SEARCH = b"/v1.3/knowledge-stores/" + STORE + b"/search"
ITEM = STORES[DEMO_STORE_ID].videos[0].item_id
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def _quiet(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """After the test (and its emulator) ends: no warning logged, no traceback."""
    yield
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []
    assert "Traceback" not in capfd.readouterr().err


@dataclass
class Answer:
    """An HTTP answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: Any


def send(emu: Emulator, data: bytes, *, timeout: float = 5.0) -> Answer | None:
    """Send raw bytes on a new connection; its answer, or `None` if it closed without."""
    reader = h11.Connection(h11.CLIENT)
    # h11 reads a response only after a request of its own: a stand-in.
    reader.send(h11.Request(method="POST", target="/", headers=[("host", "x")]))
    with socket.create_connection((emu.host, emu.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        return _read(reader, sock)


def _read(reader: h11.Connection, sock: socket.socket) -> Answer | None:
    response, body = None, bytearray()
    while True:
        event = reader.next_event()
        if event is h11.NEED_DATA:
            try:
                reader.receive_data(sock.recv(65536))
            except OSError:  # reset, or no answer within the timeout
                return None
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            headers = {k.decode(): v.decode("latin-1") for k, v in response.headers}
            return Answer(response.status_code, headers, json.loads(body))
        else:
            return None


def post(path: bytes, body: bytes, *headers: bytes) -> bytes:
    """A raw POST with the demo key and a correct content-length."""
    head = [
        b"POST " + path + b" HTTP/1.1",
        b"host: x",
        b"x-api-key: " + KEY,
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def ask(**extra: Any) -> bytes:
    """A JSON `/responses` body: a valid question, with `extra` fields."""
    question = {"type": "message", "role": "user", "content": "When do boats leave?"}
    return json.dumps(
        {"knowledge_store_id": DEMO_STORE_ID, "input": [question], **extra}
    ).encode()


def schema(value: Any) -> bytes:
    return ask(text={"format": {"type": "json_schema", "name": "a", "schema": value}})


def assert_api_error(answer: Answer | None, status: int | None = None) -> None:
    assert answer is not None, "the connection closed without an answer"
    assert 400 <= answer.status < 500 if status is None else answer.status == status
    assert set(answer.body) == {"code", "message", "docs_url"}, answer.body


def assert_serving(emu: Emulator) -> None:
    answer = send(emu, post(b"/v1.3/responses", ask()))
    assert answer is not None
    assert answer.status == 200, answer.body


# -- malformed requests --------------------------------------------------------

MALFORMED = {
    "100,000 [ as the body": post(b"/v1.3/responses", b"[" * 100_000),
    "100,000 [ as a search body": post(SEARCH, b"[" * 100_000),
    "65 levels of nesting": post(b"/v1.3/responses", b"[" * 65 + b"]" * 65),
    "NaN in the body": post(b"/v1.3/responses", ask(max_output_tokens=1)[:-1] + b', "metadata": NaN}'),
    "1e400 in a schema": post(b"/v1.3/responses", schema({"type": "number", "minimum": 1}).replace(b'"minimum": 1', b'"minimum": 1e400')),
    "a body that is not UTF-8": post(b"/v1.3/responses", b'{"input": "\xff"}'),
    "the length header holding \xb2": post(b"/v1.3/responses", ask(), LENGTH_HEADER.encode() + b": \xb2"),
    "the length header holding UTF-8 \xc2\xb2": post(b"/v1.3/responses", ask(), LENGTH_HEADER.encode() + b": \xc2\xb2"),
    "a 5,000-digit length header": post(b"/v1.3/responses", ask(), LENGTH_HEADER.encode() + b": " + b"9" * 5000),
    "a fault's retry_after holding \xb2": post(b"/v1.3/responses", ask(), FAULT_HEADER.encode() + b": status=429;retry_after=\xb2"),
    "a fault with status 100": post(b"/v1.3/responses", ask(), FAULT_HEADER.encode() + b": status=100"),
    "a fault with status 204": post(b"/v1.3/responses", ask(), FAULT_HEADER.encode() + b": status=204"),
    "search_options: [1]": post(SEARCH, b'{"query": {"text": "boats"}, "search_options": [1]}'),
    "search_options.video: [1]": post(SEARCH, b'{"query": {"text": "boats"}, "search_options": {"video": [1]}}'),
    "modalities: [[1]]": post(SEARCH, b'{"query": {"text": "boats"}, "search_options": {"video": {"modalities": [[1]]}}}'),
    "filter.item_id.in: [[1]]": post(SEARCH, b'{"query": {"text": "boats"}, "filter": {"item_id": {"in": [[1]]}}}'),
    "a page_token of deep JSON": post(SEARCH, json.dumps({"query": {"text": "boats"}, "page_token": base64.urlsafe_b64encode(b"[" * 100_000).decode()}).encode()),
    "a schema whose $defs is a list": post(b"/v1.3/responses", schema({"$ref": "#/$defs/x", "$defs": []})),
    "a schema with minLength 'x'": post(b"/v1.3/responses", schema({"type": "string", "minLength": "x"})),
    "a schema with minLength 10**12": post(b"/v1.3/responses", schema({"type": "string", "minLength": 10**12})),
    "a schema with minItems 10**9": post(b"/v1.3/responses", schema({"type": "array", "minItems": 10**9})),
    "nested minItems: 100**4 values": post(b"/v1.3/responses", schema({"type": "array", "minItems": 100, "items": {"type": "array", "minItems": 100, "items": {"type": "array", "minItems": 100, "items": {"type": "array", "minItems": 100}}}})),
    "a schema with minimum 10**400": post(b"/v1.3/responses", schema({"type": "integer", "minimum": 1}).replace(b'"minimum": 1', b'"minimum": 1' + b"0" * 400)),
    "an object schema $ref-ing itself": post(b"/v1.3/responses", schema({"type": "object", "properties": {"next": {"$ref": "#"}}})),
    "page=\xb2 in the query": b"GET /v1.3/knowledge-stores/" + STORE + b"/items?page=%C2%B2 HTTP/1.1\r\nhost: x\r\nx-api-key: " + KEY + b"\r\n\r\n",
    "a 5,000-digit page": b"GET /v1.3/knowledge-stores/" + STORE + b"/items?page=" + b"9" * 5000 + b" HTTP/1.1\r\nhost: x\r\nx-api-key: " + KEY + b"\r\n\r\n",
    "content-length: abc": b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n",
    "content-length: -1": b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
    "two different content-lengths": b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}",
    "a chunk size that is not hex": b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    "a request line of garbage": b"GARBAGE\r\n\r\n",
    "a header line without a colon": b"GET /v1.3/knowledge-stores HTTP/1.1\r\nhost: x\r\nnocolon\r\n\r\n",
    "a head past the size limit": b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (1 << 20) + b"\r\n\r\n",
}  # fmt: skip


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_a_4xx_json_error_and_the_server_goes_on(
    emulator: Emulator, data: bytes
) -> None:
    assert_api_error(send(emulator, data))
    assert_serving(emulator)


class ResetAfterTheAnswer(asyncio.Transport):
    """A connection its client reset just after the answer was written.

    The kernel took the answer, then the reset came: the socket is no longer
    connected, so shutting its write side (`write_eof`) fails with ENOTCONN.
    A real client does this only by timing, a few times in a thousand.
    """

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_a_client_that_resets_after_a_refusal_leaves_no_traceback() -> None:
    server = EmulatorServer(EmulatorConfig(max_body=1000))
    reader = asyncio.StreamReader()
    reader.feed_data(post(b"/v1.3/responses", b"x" * 5000))  # 413
    transport = ResetAfterTheAnswer()
    protocol = asyncio.StreamReaderProtocol(reader)
    protocol.connection_made(transport)
    writer = asyncio.StreamWriter(
        transport, protocol, reader, asyncio.get_running_loop()
    )
    await asyncio.create_task(server._connection(reader, writer))  # no exception
    assert transport.written.startswith(b"HTTP/1.1 413 ")
    assert transport.closed


def test_an_unsupported_transfer_coding_gets_501_json(emulator: Emulator) -> None:
    # RFC 9112 §6.1: a transfer coding the server does not know is a 501.
    data = (
        b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n"
    )
    answer = send(emulator, data)
    assert answer is not None
    assert answer.status == 501
    assert answer.body["code"] == "parameter_invalid"
    assert_serving(emulator)


# -- fuzzing every field with JSON of the wrong type ---------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["object", "array", "string", "integer", "#", "#/$defs/a"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYWORDS = [
    "type", "properties", "items", "anyOf", "oneOf", "enum", "const", "$ref",
    "$defs", "definitions", "minItems", "maxItems", "minLength", "maxLength",
    "minimum", "maximum", "format", "description", "strict", "name",
]  # fmt: skip
SCHEMAS = st.recursive(
    st.booleans() | JSON,
    lambda inner: st.dictionaries(st.sampled_from(KEYWORDS), inner, max_size=4),
    max_leaves=10,
)
RESPONSES_FIELDS = [
    ("knowledge_store_id",), ("input",), ("input", 0), ("input", 0, "role"),
    ("input", 0, "content"), ("input", 0, "type"), ("stream",), ("session_id",),
    ("instructions",), ("include",), ("include", 0), ("selections",),
    ("selections", 0), ("selections", 0, "kind"), ("selections", 0, "id"),
    ("text",), ("text", "format"), ("text", "format", "type"),
    ("text", "format", "name"), ("text", "format", "schema"),
    ("text", "format", "strict"), ("text", "format", "description"),
    ("model",), ("metadata",), ("max_output_tokens",), ("unknown",),
]  # fmt: skip
SEARCH_FIELDS = [
    ("query",), ("query", "text"), ("filter",), ("filter", "item_id"),
    ("filter", "item_id", "in"), ("filter", "asset_type"),
    ("filter", "asset_type", "eq"), ("search_options",),
    ("search_options", "video"), ("search_options", "video", "modalities"),
    ("group_by",), ("page_size",), ("page_token",), ("include_metadata",),
]  # fmt: skip


def with_value(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """`body` with `value` at `path`, as far as `body` has containers there."""
    target = body
    for step in path[:-1]:
        if not isinstance(target, (dict, list)):
            return body
        with contextlib.suppress(LookupError, TypeError):
            target = target[step]  # type: ignore[index]
    with contextlib.suppress(LookupError, TypeError):
        target[path[-1]] = value
    return body


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[Emulator, httpx.Client]]:
    with (
        Emulator() as emu,
        httpx.Client(
            base_url=emu.base_url, headers={"x-api-key": DEMO_API_KEY}, timeout=10
        ) as client,
    ):
        yield emu, client


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "docs_url"}


@FUZZ
@given(
    path=st.sampled_from(RESPONSES_FIELDS),
    value=JSON,
    schema=SCHEMAS,
)
def test_responses_answers_any_wrong_json_type_in_any_field_with_4xx(
    fuzzed: tuple[Emulator, httpx.Client],
    path: tuple[str | int, ...],
    value: Any,
    schema: Any,
) -> None:
    body = json.loads(ask(selections=[{"kind": "item", "id": ITEM}]))
    body["text"] = {"format": {"type": "json_schema", "name": "a", "schema": schema}}
    assert_answered(fuzzed[1].post("/responses", json=with_value(body, path, value)))


@FUZZ
@given(path=st.sampled_from(SEARCH_FIELDS), value=JSON)
def test_search_answers_any_wrong_json_type_in_any_field_with_4xx(
    fuzzed: tuple[Emulator, httpx.Client], path: tuple[str | int, ...], value: Any
) -> None:
    body = {
        "query": {"text": "boats"},
        "filter": {"item_id": {"in": [ITEM]}, "asset_type": {"eq": "video"}},
        "search_options": {"video": {"modalities": ["visual"]}},
        "page_size": 2,
    }
    path_ = f"/knowledge-stores/{DEMO_STORE_ID}/search"
    assert_answered(fuzzed[1].post(path_, json=with_value(body, path, value)))


HEADER_VALUES = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=30,
).map(lambda text: text.encode("latin-1"))


@FUZZ
@given(
    fault=HEADER_VALUES,
    length=HEADER_VALUES,
    page=st.text(max_size=12),
    limit=st.text(max_size=12),
)
def test_any_header_or_query_value_gets_an_answer_below_500(
    fuzzed: tuple[Emulator, httpx.Client],
    fault: bytes,
    length: bytes,
    page: str,
    limit: str,
) -> None:
    client = fuzzed[1]
    for name, value in ((FAULT_HEADER, fault), (LENGTH_HEADER, length)):
        assert_answered(
            client.post("/responses", content=ask(), headers={name: value})  # type: ignore[dict-item]
        )
    params = {"page": page, "page_limit": limit}
    assert_answered(
        client.get(f"/knowledge-stores/{DEMO_STORE_ID}/items", params=params)
    )


# -- memory: a bounded request log, a bounded body -----------------------------


def test_a_request_with_a_wrong_key_is_logged_without_its_body(
    emulator: Emulator,
) -> None:
    wrong = post(b"/v1.3/responses", ask(instructions="x" * 500_000))
    answer = send(emulator, wrong.replace(KEY, b"tlk_wrong"))
    assert_api_error(answer, 401)
    (logged,) = emulator.requests
    assert (logged.key_accepted, logged.raw, logged.body) == (False, None, None)


def test_the_request_log_keeps_only_the_latest_requests() -> None:
    with Emulator(request_log=3) as emu:
        for n in range(5):
            assert_api_error(send(emu, post(b"/v1.3/responses", ask(model=n))))
        assert [r.body["model"] for r in emu.requests] == [2, 3, 4]


def test_a_request_log_of_0_keeps_nothing() -> None:
    with Emulator(request_log=0) as emu:
        assert_serving(emu)
        assert emu.requests == []


def test_a_body_past_max_body_gets_413_json() -> None:
    with Emulator(max_body=1000) as emu:
        assert_serving(emu)  # a body under the cap
        big = post(b"/v1.3/responses", ask(instructions="x" * 2000))
        assert_api_error(send(emu, big), 413)
        assert_serving(emu)
        assert len(emu.requests) == 2


def test_a_declared_length_past_max_body_gets_413_before_the_body_is_sent() -> None:
    with Emulator(max_body=1000) as emu:
        head = b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\ncontent-length: "
        answer = send(emu, head + b"1000000000000\r\n\r\n")
        assert_api_error(answer, 413)
        assert answer is not None
        assert answer.headers["connection"] == "close"
        assert_serving(emu)


def test_a_chunked_body_growing_past_max_body_gets_413() -> None:
    with Emulator(max_body=1000) as emu:
        head = b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\n"
        chunks = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(8))
        data = head + b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        assert_api_error(send(emu, data), 413)
        assert_serving(emu)


# -- limits: timeouts and a connection cap ---------------------------------------

HALF_HEAD = b"POST /v1.3/responses HTTP/1.1\r\nhost: x\r\n"


def closed(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (within the socket's timeout)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        return True
    return True


def test_a_request_whose_head_stalls_gets_408_and_is_closed() -> None:
    with Emulator(request_timeout=0.2) as emu:
        answer = send(emu, HALF_HEAD)
        assert_api_error(answer, 408)
        assert answer is not None
        assert answer.body["code"] == "request_canceled_or_timed_out"
        assert answer.headers["connection"] == "close"
        assert_serving(emu)


def test_a_request_whose_body_stalls_gets_408() -> None:
    with Emulator(request_timeout=0.2) as emu:
        partial = post(b"/v1.3/responses", ask())[:-10]
        assert_api_error(send(emu, partial), 408)


def test_an_idle_connection_is_closed_without_a_word() -> None:
    with (
        Emulator(idle_timeout=0.2) as emu,
        socket.create_connection((emu.host, emu.port), timeout=5) as sock,
    ):
        assert sock.recv(1) == b""


def test_a_kept_alive_connection_is_closed_once_idle() -> None:
    with (
        Emulator(idle_timeout=0.2) as emu,
        socket.create_connection((emu.host, emu.port), timeout=5) as sock,
    ):
        reader = h11.Connection(h11.CLIENT)
        reader.send(h11.Request(method="POST", target="/", headers=[("host", "x")]))
        sock.sendall(post(b"/v1.3/responses", ask()))
        answer = _read(reader, sock)
        assert answer is not None
        assert answer.status == 200  # and the connection is kept alive...
        assert "connection" not in answer.headers
        assert closed(sock)  # ...until it has been idle for idle_timeout


def test_1000_idle_half_sent_connections_do_not_stop_another_client() -> None:
    with Emulator(max_connections=50) as emu:
        idle = []
        try:
            for _ in range(1000):
                sock = socket.create_connection((emu.host, emu.port), timeout=5)
                sock.sendall(HALF_HEAD)
                idle.append(sock)
            assert_serving(emu)  # at once, not after any timeout
            idle[0].settimeout(5)
            assert closed(idle[0])  # the longest waiting gave way
        finally:
            for sock in idle:
                sock.close()


def test_a_connection_past_the_cap_gets_503_json_while_all_are_answering() -> None:
    busy_request = post(
        b"/v1.3/responses", ask(stream=True), b"x-emulator-fault: stall_after=1"
    )
    with Emulator(max_connections=2, keepalive_interval=0.05) as emu:
        busy = []
        try:
            for _ in range(2):  # two answers that go on until their client leaves
                sock = socket.create_connection((emu.host, emu.port), timeout=5)
                sock.sendall(busy_request)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
                busy.append(sock)
            answer = send(emu, post(b"/v1.3/responses", ask()))
            assert answer is not None
            assert answer.status == 503, answer
            assert answer.body["code"] == "emulator_busy"
            assert answer.headers["retry-after"] == "1"
        finally:
            for sock in busy:
                sock.close()
        for _ in range(100):  # the stalls end at their next keepalives
            answer = send(emu, post(b"/v1.3/responses", ask()))
            if answer is not None and answer.status == 200:
                break
            time.sleep(0.05)
        assert answer is not None
        assert answer.status == 200
