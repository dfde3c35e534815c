"""A hostile or broken server can't exhaust memory, hang the caller, crash it with
a plain Python error, or get the key. Each test is a probe over loopback."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

import httpx
import pytest

from langchain_jockey import (
    ChatJockey,
    JockeyError,
    JockeyInputError,
    JockeyRateLimitError,
    JockeyServerError,
    JockeyStreamInterruptedError,
    JockeyTimeoutError,
)
from tests.reliability.hostile import (
    CREATED,
    DONE,
    KEY,
    STORE,
    chunk,
    completed,
    delta,
    event,
    head,
    hostile,
    sse,
    trickle,
)
from tests.support import merged


def llm(server, **kwargs: Any) -> ChatJockey:
    params = {"base_url": server.url, "api_key": KEY, "knowledge_store_id": STORE}
    return ChatJockey(**{**params, **kwargs})


def collect(mode: str, model: ChatJockey, value: Any = "hi", **kwargs: Any):
    """(chunks, error) of one streamed answer, sync or async."""
    chunks: list[Any] = []

    async def go() -> None:
        async for c in model.astream(value, **kwargs):
            chunks.append(c)

    try:
        if mode == "sync":
            chunks.extend(model.stream(value, **kwargs))
        else:
            asyncio.run(go())
    except Exception as exc:
        return chunks, exc
    return chunks, None


def text(chunks) -> str:
    return "".join(c.text for c in chunks)


# -- 1. an endless line -------------------------------------------------------------


def test_an_endless_line_is_cut_at_the_cap_keeping_the_progress(mode) -> None:
    cap = 1024 * 1024

    def endless(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED + delta("Player 9 "))
        chunk(server, conn, b"data: ")
        trickle(server, conn, b"a" * 65536, every=0, limit=30)

    with hostile(endless) as server:
        started = time.monotonic()
        chunks, error = collect(mode, llm(server, max_event_bytes=cap))
        assert isinstance(error, JockeyStreamInterruptedError), error
        assert "max_event_bytes" in str(error)
        assert error.partial_text == "Player 9 "
        assert error.session_id == "sess_S"
        assert text(chunks) == "Player 9 "
        assert server.hung_up.wait(10)  # the connection was closed
        # What the server got to send is the cap plus what sockets buffer.
        assert server.sent < cap + 16 * 1024 * 1024
        assert time.monotonic() - started < 30


# -- 1b. a compressed body, though identity was asked for ---------------------------


BOMB = gzip.compress(b"data: " + b"a" * (64 * 1024 * 1024), compresslevel=9)


def test_a_compressed_stream_is_refused_at_once_unread(mode) -> None:
    # A gzip bomb: 64 MiB of one line in about 64 KiB. Nothing of it is read.
    def compressed(server, conn, request):
        head(conn, headers={"content-encoding": "gzip"})
        for start in range(0, len(BOMB), 16384):
            chunk(server, conn, BOMB[start : start + 16384])
        chunk(server, conn, b"")

    with hostile(compressed) as server:
        chunks, error = collect(mode, llm(server, max_retries=2))
        assert chunks == []
        assert isinstance(error, JockeyStreamInterruptedError)
        assert "'gzip'" in str(error)
        assert error.is_retryable is False
        assert len(server.requests) == 1  # refused, not retried
        assert server.requests[0].headers["accept-encoding"] == "identity"


def test_a_compressed_error_reply_is_its_typed_error_and_retried(mode) -> None:
    # A proxy's 500 with `content-encoding: gzip`: the status says enough.
    def proxy(server, conn, request):
        body = gzip.compress(b'{"code": "internal_error", "message": "boom"}')
        headers = {"content-encoding": "gzip", "content-type": "application/json"}
        head(conn, 500, headers)
        chunk(server, conn, body)
        chunk(server, conn, b"")

    with hostile(proxy) as server:
        chunks, error = collect(mode, llm(server, max_retries=2, max_retry_wait=30))
        assert isinstance(error, JockeyServerError), repr(error)
        assert error.status_code == 500
        assert len(server.requests) == 3  # retried like any 500
        assert error.response is not None
        assert error.response.text == ""  # the compressed bytes were not read


# -- 2. deep JSON -------------------------------------------------------------------


def test_deeply_nested_json_is_a_typed_error_with_the_progress(mode) -> None:
    deep = b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"
    with hostile(sse(CREATED, delta("ok"), deep)) as server:
        _, error = collect(mode, llm(server))
        assert isinstance(error, JockeyStreamInterruptedError), repr(error)
        assert error.partial_text == "ok"
        assert error.session_id == "sess_S"


# -- 3. redirects ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_the_key_never_follows_a_redirect_to_another_host(mode, status) -> None:
    with hostile(sse(CREATED, delta("stolen"), completed(), DONE)) as other:

        def redirect(server, conn, request) -> None:
            head(
                conn,
                status,
                {"location": f"{other.url}/responses", "content-length": "0"},
            )

        with hostile(redirect) as server:
            model = llm(
                server,
                max_retries=0,
                http_client=httpx.Client(follow_redirects=True),
                http_async_client=httpx.AsyncClient(follow_redirects=True),
            )
            _, error = collect(mode, model)
            assert isinstance(error, JockeyError)
            assert error.status_code == status
            assert other.requests == []
            assert len(server.requests) == 1


# -- 4. wrongly typed fields ------------------------------------------------------------


WRONG = {
    "response id is a list": [
        event({"type": "response.created", "response": {"id": [1]}}),
        delta("ok"),
        completed(id=[1]),
    ],
    "delta item_id is a list": [CREATED, delta("ok", item=[1]), completed()],
    "output item id is a dict": [
        CREATED,
        event(
            {
                "type": "response.output_item.added",
                "item": {"type": "message", "phase": "commentary", "id": {"a": 1}},
            }
        ),
        delta("ok"),
        completed(),
    ],
    "output content is a number": [
        CREATED,
        delta("ok"),
        completed(output=[{"type": "message", "content": 5}]),
    ],
    "usage holds strings": [
        CREATED,
        delta("ok"),
        completed(usage={"input_tokens": "9", "output_tokens": True}),
    ],
    "session id is a megabyte": [
        event(
            {"type": "response.created", "response": {"session_id": "s" * 1_000_000}}
        ),
        delta("ok"),
        completed(session_id="s" * 1_000_000),
    ],
}


@pytest.mark.parametrize("name", list(WRONG))
def test_wrongly_typed_fields_are_ignored_and_the_text_delivered(mode, name) -> None:
    with hostile(sse(*WRONG[name], DONE)) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None, repr(error)
        assert text(chunks) == "ok"
        total = merged(chunks)
        assert total.content_blocks  # readable
        meta = total.response_metadata
        assert meta["session_id"] in (None, "sess_S")
        if name == "usage holds strings":
            assert total.usage_metadata is None


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_a_function_call_with_non_string_arguments_is_readable(mode, version) -> None:
    step = {"type": "function_call", "id": "fc_1", "name": "search", "arguments": 5}
    parts = [
        CREATED,
        event({"type": "response.output_item.added", "item": step}),
        event({"type": "response.output_item.done", "item": step}),
        delta("ok"),
        completed(),
        DONE,
    ]
    with hostile(sse(*parts)) as server:
        chunks, error = collect(mode, llm(server, output_version=version))
        assert error is None, repr(error)
        total = merged(chunks)
        (call,) = [b for b in total.content_blocks if b["type"] == "server_tool_call"]
        assert call["args"] == {"arguments": 5}


# -- 5. events after the terminal event ----------------------------------------------------


def test_nothing_after_the_terminal_event_is_delivered(mode) -> None:
    parts = [
        CREATED,
        delta("ok"),
        completed(usage={"input_tokens": 1, "output_tokens": 2}),
        delta(" AFTER"),
        completed(usage={"input_tokens": 1, "output_tokens": 2}),
        DONE,
    ]
    with hostile(sse(*parts)) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None
        total = merged(chunks)
        assert total.text == "ok"
        assert chunks[-1].chunk_position == "last"
        assert total.response_metadata["status"] == "completed"
        assert total.response_metadata["session_id"] == "sess_S"
        assert total.usage_metadata["total_tokens"] == 3
        answer = llm(server).invoke("hi")
        assert answer.text == "ok"


# -- 6. streams that never time out ---------------------------------------------------------


def test_bytes_that_never_complete_an_event_time_out(mode) -> None:
    def one_byte_at_a_time(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED + b"data: {")
        trickle(server, conn, b"a", every=0.25, limit=30)

    with hostile(one_byte_at_a_time) as server:
        started = time.monotonic()
        _, error = collect(mode, llm(server, timeout=1.5))
        assert isinstance(error, JockeyTimeoutError), repr(error)
        assert "no complete event" in str(error)
        assert error.session_id == "sess_S"
        assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    "noise",
    [
        b": ping\n\n",
        event({"type": "something.unknown"}),
        event({"type": "response.in_progress", "response": {"status": "in_progress"}}),
        event({"type": "keepalive"}),
    ],
    ids=["comments", "unknown-events", "status-events", "keepalives"],
)
def test_a_stream_without_progress_hits_the_idle_limit(mode, noise) -> None:
    def noisy(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED + delta("ok"))
        trickle(server, conn, noise, every=0.2, limit=30)

    with hostile(noisy) as server:
        started = time.monotonic()
        _, error = collect(mode, llm(server, timeout=3, stream_idle_timeout=1))
        assert isinstance(error, JockeyTimeoutError), repr(error)
        assert "no progress" in str(error)
        assert error.partial_text == "ok"
        assert time.monotonic() - started < 15


# -- 7. a body held open after [DONE] ----------------------------------------------------------


@pytest.mark.parametrize("after", ["silent", "trickling"])
def test_a_body_held_open_after_done_does_not_hold_the_answer(mode, after) -> None:
    def held(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED + delta("ok") + completed() + DONE)
        if after == "trickling":
            trickle(server, conn, b": ping\n\n", every=0.05, limit=30)
        else:
            time.sleep(30)

    with hostile(held) as server:
        started = time.monotonic()
        chunks, error = collect(mode, llm(server))
        assert error is None, repr(error)
        assert text(chunks) == "ok"
        assert time.monotonic() - started < 10  # not the 60 s read timeout


# -- 8. roles of aggregated chunks ---------------------------------------------------------------


def test_an_aggregated_answer_in_the_history_is_an_ai_turn() -> None:
    from langchain_core.messages import AIMessageChunk, HumanMessage

    with hostile(sse(CREATED, delta("ok"), completed(), DONE)) as server:
        llm(server).invoke(
            [
                HumanMessage("Who scores?"),
                AIMessageChunk(content="Player 9 scores."),
                HumanMessage("And then?"),
            ]
        )
        sent = server.requests[0].json["input"][0]["content"]
    assert "Assistant: Player 9 scores." in sent
    assert "User: Who scores?" in sent
    assert sent.endswith("And then?")


# -- risks --------------------------------------------------------------------------------------


def test_error_bodies_are_read_up_to_a_bound_and_messages_capped(mode) -> None:
    huge = json.dumps({"code": "boom", "message": "x" * 10_000_000}).encode()

    def error(server, conn, request) -> None:
        head(conn, 500, {"content-type": "application/json"})
        for start in range(0, len(huge), 65536):
            chunk(server, conn, huge[start : start + 65536])
        chunk(server, conn, b"")

    with hostile(error) as server:
        _, err = collect(mode, llm(server, max_retries=0))
        assert isinstance(err, JockeyError)
        assert len(str(err)) < 5000
        assert len(err.response.content) <= 64 * 1024


def test_a_retry_after_beyond_the_wait_budget_raises_at_once(mode) -> None:
    def limited(server, conn, request) -> None:
        head(
            conn,
            429,
            {"content-type": "application/json", "retry-after": "30"},
        )
        chunk(server, conn, b'{"code": "too_many_requests", "message": "slow"}')
        chunk(server, conn, b"")

    with hostile(limited) as server:
        started = time.monotonic()
        _, err = collect(mode, llm(server, max_retry_wait=5))
        assert isinstance(err, JockeyRateLimitError)
        assert err.retry_after == 30
        assert len(server.requests) == 1
        assert time.monotonic() - started < 5


def test_a_key_echoed_by_the_server_is_redacted_from_the_error(mode) -> None:
    def echo(server, conn, request) -> None:
        body = json.dumps({"code": "api_key_invalid", "message": f"bad key {KEY}"})
        head(conn, 401, {"content-type": "application/json"})
        chunk(server, conn, body.encode())
        chunk(server, conn, b"")

    with hostile(echo) as server:
        _, err = collect(mode, llm(server))
        for view in (str(err), repr(err), repr(vars(err))):
            assert KEY not in view
        assert KEY not in repr(err.response.request.headers)
        assert err.response.request.headers["x-api-key"] == "[redacted]"


def test_citations_come_from_content_part_done_when_the_snapshot_has_none(
    mode,
) -> None:
    note = {
        "type": "video_citation",
        "start_index": 3,
        "end_index": 5,
        "item_id": "ksi_1",
    }
    bad = {"type": "video_citation", "start_index": 4, "end_index": 99}
    part = {"type": "output_text", "text": "ok [1]", "annotations": [note, bad]}
    parts = [
        CREATED,
        delta("ok [1]"),
        event({"type": "response.content_part.done", "item_id": "msg_1", "part": part}),
        completed(),
        DONE,
    ]
    with hostile(sse(*parts)) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None
        total = merged(chunks)
        assert total.response_metadata["annotations"] == [note]


def test_steps_come_from_function_call_arguments_done_alone(mode) -> None:
    item = {"type": "function_call", "id": "fc_1", "name": "search", "call_id": "c1"}
    parts = [
        CREATED,
        event(
            {"type": "response.output_item.added", "item": {**item, "arguments": ""}}
        ),
        event(
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc_1",
                "arguments": '{"q": "goal"}',
            }
        ),
        delta("ok"),
        completed(),
        DONE,
    ]
    with hostile(sse(*parts)) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None
        steps = [s for c in chunks for s in c.additional_kwargs.get("jockey_steps", [])]
        assert steps == [
            {"type": "function_call", **item, "arguments": '{"q": "goal"}'}
        ]


def test_a_repeated_sequence_number_does_not_double_the_text(mode) -> None:
    repeated = event(
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "delta": "ok",
            "sequence_number": 3,
        }
    )
    with hostile(sse(CREATED, repeated, repeated, completed(), DONE)) as server:
        chunks, _ = collect(mode, llm(server))
        assert text(chunks) == "ok"


def test_usage_on_a_failed_response_is_kept_on_the_error(mode) -> None:
    failed = event(
        {
            "type": "response.failed",
            "response": {
                "status": "failed",
                "usage": {"input_tokens": 5, "output_tokens": 1},
                "error": {"code": "server_error", "message": "boom"},
            },
        }
    )
    with hostile(sse(CREATED, delta("ok"), failed, DONE)) as server:
        _, err = collect(mode, llm(server))
        assert isinstance(err, JockeyError)
        assert err.usage_metadata == {
            "input_tokens": 5,
            "output_tokens": 1,
            "total_tokens": 6,
        }
        assert err.partial_text == "ok"


def test_a_base_url_with_a_query_keeps_it_after_the_path() -> None:
    with hostile(sse(CREATED, delta("ok"), completed(), DONE)) as server:
        llm(server, base_url=server.url + "?tenant=t1").invoke("hi")
        assert server.requests[0].line.split()[1] == "/v1.3/responses?tenant=t1"


@pytest.mark.parametrize(
    "session", [12, "s" * 1_000_000, "sess_\ud800", "sess_\n"], ids=repr
)
def test_a_bad_session_id_is_rejected_before_sending(session) -> None:
    with hostile(sse(CREATED, delta("ok"), completed(), DONE)) as server:
        with pytest.raises(JockeyInputError, match="session_id"):
            llm(server).invoke("hi", session_id=session)
        assert server.requests == []
