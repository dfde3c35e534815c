"""ChatJockey over httpx.MockTransport: every behaviour, sync and async.

Bodies are served in hand-chosen fragments (mid-line, mid-UTF-8, CR|LF), which
cassettes cannot do; `ChunkedBody.closed` shows whether the response was closed.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import warnings

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_jockey import (
    ChatJockey,
    JockeyAuthenticationError,
    JockeyBadRequestError,
    JockeyConnectionError,
    JockeyRateLimitError,
    JockeyServerError,
    JockeyStreamInterruptedError,
    JockeyTimeoutError,
)
from tests.support import (
    API_KEY,
    RESPONSE_ID,
    SESSION,
    STORE,
    Reply,
    awkward_splits,
    deltas_of,
    events_of,
    json_reply,
    merged,
    serve,
    sse,
    transcript,
)

PLAIN = transcript("plain_answer")
ANSWER = "".join(deltas_of(PLAIN))
COMPLETED = events_of(PLAIN)[-1]["response"]


def check_answer(chunks) -> None:
    """What every streamed Jockey answer must look like (issue #2 'Must show')."""
    assert [c.text for c in chunks[:-1]] == deltas_of(PLAIN)
    assert chunks[0].id == RESPONSE_ID
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert chunks[-1].chunk_position == "last"
    total = merged(chunks)
    assert total.text == ANSWER
    assert total.response_metadata["model_name"] == "jockey1.0"
    assert total.response_metadata["session_id"] == SESSION
    assert total.usage_metadata["total_tokens"] == 9120


def check_message(message) -> None:
    assert isinstance(message, AIMessage)
    assert message.text == ANSWER
    assert message.id == RESPONSE_ID
    assert message.usage_metadata == {
        "input_tokens": 9000,
        "output_tokens": 120,
        "total_tokens": 9120,
    }
    assert message.response_metadata["model_name"] == "jockey1.0"
    assert message.response_metadata["session_id"] == SESSION
    assert message.response_metadata["status"] == "completed"


# -- happy paths -----------------------------------------------------------


@pytest.mark.parametrize("split", list(awkward_splits(PLAIN)))
def test_stream_survives_awkward_byte_boundaries(stream, split) -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)[split]))
    check_answer(stream(server.model(), "What happens after the corner kick?"))
    assert server.bodies[0].closed


def test_stream_sends_the_documented_request(stream) -> None:
    server = serve(sse("plain_answer"))
    stream(server.model(default_headers={"x-trace": "1"}), "What happens?")
    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == "https://jockey.test/v1.3/responses"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-trace"] == "1"
    assert request.headers["user-agent"].startswith("langchain-jockey/")
    assert server.json_bodies[0] == {
        "model": "jockey1.0",
        "knowledge_store_id": STORE,
        "input": [{"type": "message", "role": "user", "content": "What happens?"}],
        "stream": True,
    }


def test_invoke_with_streaming_folds_the_stream(invoke) -> None:
    server = serve(sse("plain_answer"))
    message = invoke(server.model(streaming=True), "q")
    check_message(message)
    assert server.json_bodies[0]["stream"] is True


def test_invoke_streams_on_the_wire_and_aggregates(invoke) -> None:
    server = serve(sse("plain_answer"))
    message = invoke(server.model(), "q")
    check_message(message)
    assert server.json_bodies[0]["stream"] is True
    assert server.requests[0].headers["accept"] == "text/event-stream"


def test_invoke_with_and_without_streaming_give_equal_messages(invoke) -> None:
    streamed = invoke(serve(sse("plain_answer")).model(streaming=True), "q")
    plain = invoke(serve(sse("plain_answer")).model(), "q")
    assert streamed.text == plain.text
    assert streamed.id == plain.id
    assert streamed.usage_metadata == plain.usage_metadata
    assert streamed.response_metadata == plain.response_metadata


def test_batch_answers_each_input(mode) -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    inputs = ["one", "two", "three"]
    results = (
        model.batch(inputs) if mode == "sync" else asyncio.run(model.abatch(inputs))
    )
    assert len(results) == 3
    for message in results:
        check_message(message)
    assert sorted(b["input"][0]["content"] for b in server.json_bodies) == sorted(
        inputs
    )


def test_call_options_override_fields(stream) -> None:
    server = serve(sse("plain_answer"))
    model = server.model(instructions="field", include=None)
    chunks = stream(
        model,
        "q",
        session_id="sess_CALL",
        instructions="call",
        model="jockey1.0-beta",
        knowledge_store_id="ks_CALL",
        include=["intermediate_outputs"],
        selections=[{"kind": "item", "id": "ksi_1"}],
    )
    body = server.json_bodies[0]
    assert body["session_id"] == "sess_CALL"
    assert body["instructions"] == "call"
    assert body["model"] == "jockey1.0-beta"
    assert body["knowledge_store_id"] == "ks_CALL"
    assert body["include"] == ["intermediate_outputs"]
    assert body["selections"] == [{"kind": "item", "id": "ksi_1"}]
    assert merged(chunks).response_metadata["model_name"] == "jockey1.0-beta"


def test_second_turn_continues_the_session_with_only_the_new_message(invoke) -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    history = [HumanMessage("first")]
    history.append(invoke(model, history))
    history.append(HumanMessage("what happens next?"))
    invoke(model, history)
    second = server.json_bodies[1]
    assert second["session_id"] == SESSION
    assert second["input"] == [
        {"type": "message", "role": "user", "content": "what happens next?"}
    ]


def test_timeouts_default_to_60s_between_bytes_for_invoke_and_stream(mode) -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    if mode == "sync":
        list(model.stream("q"))
        model.invoke("q")
    else:
        asyncio.run(model.ainvoke("q", stream=True))
        asyncio.run(model.ainvoke("q"))
    streamed, plain = (r.extensions["timeout"] for r in server.requests)
    assert streamed == {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 60.0}
    assert plain == streamed
    server2 = serve(sse("plain_answer"))
    list(server2.model(timeout=5).stream("q"))
    assert server2.requests[0].extensions["timeout"]["read"] == 5.0


# -- stopping early ----------------------------------------------------------


def test_break_after_first_chunk_closes_the_response() -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)["seven_bytes"]))
    for _ in server.model().stream("q"):
        break
    assert server.bodies[0].closed
    assert server.bodies[0].served < len(server.bodies[0].chunks)


def test_generator_close_after_first_chunk_closes_the_response() -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)["seven_bytes"]))
    chunks = server.model().stream("q")
    next(chunks)
    chunks.close()
    assert server.bodies[0].closed


async def _settle() -> None:
    # Core's astream does not aclose the generator it wraps; the event loop's
    # async-generator finalizer does, on its next iterations.
    for _ in range(5):
        await asyncio.sleep(0)


async def test_async_break_after_first_chunk_closes_the_response() -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)["seven_bytes"]))
    async for _ in server.model().astream("q"):
        break
    await _settle()
    assert server.bodies[0].closed
    assert server.bodies[0].served < len(server.bodies[0].chunks)


async def test_aclose_after_first_chunk_closes_the_response() -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)["seven_bytes"]))
    chunks = server.model().astream("q")
    await chunks.__anext__()
    await chunks.aclose()
    await _settle()
    assert server.bodies[0].closed


async def test_aclose_of_the_model_generator_closes_the_response_at_once() -> None:
    server = serve(sse(PLAIN, awkward_splits(PLAIN)["seven_bytes"]))
    chunks = server.model()._astream([HumanMessage("q")])
    await chunks.__anext__()
    await chunks.aclose()
    assert server.bodies[0].closed


class _Hang(httpx.AsyncByteStream):
    """Sends the head of a transcript, then nothing until cancelled."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.closed = False

    async def __aiter__(self):
        yield self.head
        await asyncio.sleep(3600)

    async def aclose(self) -> None:
        self.closed = True


async def test_task_cancellation_mid_stream_closes_the_response() -> None:
    first_delta = PLAIN.index(b"event: response.output_text.delta")
    head = PLAIN[: PLAIN.index(b"\n\n", first_delta) + 2]
    body = _Hang(head)
    model = ChatJockey(
        api_key=API_KEY,
        knowledge_store_id=STORE,
        http_async_client=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, stream=body))
        ),
    )
    got = []

    async def consume() -> None:
        async for chunk in model.astream("q"):
            got.append(chunk)

    task = asyncio.create_task(consume())
    while not got:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed
    assert got[0].text == deltas_of(PLAIN)[0]


# -- failures ------------------------------------------------------------------


def test_response_failed_mid_stream_raises_the_typed_error(stream) -> None:
    server = serve(sse("failed"))
    with pytest.raises(JockeyServerError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == "The goal comes "
    assert info.value.session_id == SESSION
    assert server.bodies[0].closed
    assert len(server.requests) == 1


def test_error_event_raises_by_its_code(stream) -> None:
    server = serve(sse("error_then_failed"))
    with pytest.raises(JockeyRateLimitError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == "The goal "
    assert len(server.requests) == 1


def test_drop_before_terminal_event_raises_interrupted_with_partial_text(
    stream,
) -> None:
    cut = PLAIN.index(b"event: response.output_text.done")
    server = serve(sse(PLAIN[:cut]))
    with pytest.raises(JockeyStreamInterruptedError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == ANSWER
    assert info.value.session_id == SESSION
    assert info.value.response_id == RESPONSE_ID
    assert server.bodies[0].closed
    assert len(server.requests) == 1


def test_connection_error_mid_body_raises_interrupted_with_partial_text(stream) -> None:
    cut = PLAIN.index(b"event: response.output_text.done")
    server = serve(
        Reply(200, [PLAIN[:cut]], error_after=httpx.ReadError("connection reset"))
    )
    with pytest.raises(JockeyStreamInterruptedError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == ANSWER
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert server.bodies[0].closed
    assert len(server.requests) == 1


def test_read_timeout_mid_body_raises_timeout_with_partial_text(stream) -> None:
    cut = PLAIN.index(b"event: response.output_text.done")
    server = serve(Reply(200, [PLAIN[:cut]], error_after=httpx.ReadTimeout("idle")))
    with pytest.raises(JockeyTimeoutError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == ANSWER
    assert info.value.session_id == SESSION
    assert len(server.requests) == 1


def test_truncated_json_at_end_of_body_is_an_interrupted_stream(stream) -> None:
    cut = PLAIN.index(b"event: response.completed") + 60
    server = serve(sse(PLAIN[:cut]))
    with pytest.raises(JockeyStreamInterruptedError) as info:
        stream(server.model(), "q")
    assert info.value.partial_text == ANSWER


def test_malformed_json_line_raises_a_typed_error_and_keeps_the_text(stream) -> None:
    cut = PLAIN.index(b"event: response.output_text.done")
    body = (
        PLAIN[:cut]
        + b"event: response.output_text.delta\ndata: {not json\n\n"
        + PLAIN[cut:]
    )
    server = serve(sse(body))
    with pytest.raises(JockeyStreamInterruptedError, match="unreadable event") as info:
        stream(server.model(), "q")
    assert info.value.partial_text == ANSWER
    assert server.bodies[0].closed


def test_a_last_event_without_its_blank_line_is_accepted(stream) -> None:
    server = serve(sse(PLAIN.rstrip(b"\n")))
    check_answer(stream(server.model(), "q"))


def test_done_without_terminal_event_raises_interrupted(stream) -> None:
    cut = PLAIN.index(b"event: response.completed")
    server = serve(sse(PLAIN[:cut] + b"data: [DONE]\n\n"))
    with pytest.raises(JockeyStreamInterruptedError):
        stream(server.model(), "q")


def test_401_raises_authentication_error_with_the_server_message(stream) -> None:
    server = serve(
        json_reply(
            401,
            {
                "code": "api_key_invalid",
                "message": "API Key is either invalid or expired.",
            },
        )
    )
    with pytest.raises(
        JockeyAuthenticationError, match="API Key is either invalid or expired"
    ) as info:
        stream(server.model(), "q")
    assert info.value.status_code == 401
    assert len(server.requests) == 1
    assert server.bodies[0].closed


def test_429_with_retry_after_then_200_succeeds_in_two_requests(stream) -> None:
    server = serve(
        json_reply(
            429,
            {"code": "too_many_requests", "message": "slow down"},
            {"retry-after": "1"},
        ),
        sse("plain_answer"),
    )
    started = time.monotonic()
    check_answer(stream(server.model(), "q"))
    assert time.monotonic() - started >= 0.9  # the server's Retry-After was honoured
    assert len(server.requests) == 2
    assert all(body.closed for body in server.bodies)


def test_400_is_not_retried(stream) -> None:
    server = serve(
        json_reply(
            400,
            {"code": "parameter_invalid", "message": "session does not match store"},
        )
    )
    with pytest.raises(JockeyBadRequestError, match="session does not match store"):
        stream(server.model(max_retries=5), "q")
    assert len(server.requests) == 1


def test_plan_limit_exceeded_is_not_retried(stream) -> None:
    server = serve(
        json_reply(
            429,
            {"code": "plan_limit_exceeded", "message": "daily Response limit (15/day)"},
            {"retry-after": "0"},
        )
    )
    with pytest.raises(JockeyRateLimitError) as info:
        stream(server.model(max_retries=5), "q")
    assert info.value.is_retryable is False
    assert len(server.requests) == 1


def test_5xx_storm_is_retried_max_retries_times(stream) -> None:
    server = serve(
        json_reply(
            503, {"code": "unavailable", "message": "overloaded"}, {"retry-after": "0"}
        )
    )
    with pytest.raises(JockeyServerError, match="overloaded"):
        stream(server.model(max_retries=3), "q")
    assert len(server.requests) == 4
    assert all(body.closed for body in server.bodies)


def test_retry_after_longer_than_a_minute_is_not_slept_through(stream) -> None:
    server = serve(
        json_reply(
            429,
            {"code": "too_many_requests", "message": "later"},
            {"retry-after": "3600"},
        )
    )
    with pytest.raises(JockeyRateLimitError) as info:
        stream(server.model(), "q")
    assert info.value.retry_after == 3600.0
    assert len(server.requests) == 1


def test_connect_error_is_retried_then_succeeds(stream) -> None:
    server = serve(
        Reply(raise_on_send=httpx.ConnectError("refused")), sse("plain_answer")
    )
    model = server.model()
    check_answer(stream(model, "q"))
    assert len(server.requests) == 2


def test_connect_errors_beyond_max_retries_raise_connection_error(stream) -> None:
    server = serve(Reply(raise_on_send=httpx.ConnectError("refused")))
    with pytest.raises(JockeyConnectionError):
        stream(server.model(max_retries=1), "q")
    assert len(server.requests) == 2


def test_non_streaming_http_error_raises_the_same_typed_error(invoke) -> None:
    server = serve(json_reply(401, {"code": "api_key_invalid", "message": "nope"}))
    with pytest.raises(JockeyAuthenticationError):
        invoke(server.model(), "q")
    assert len(server.requests) == 1


def test_a_200_that_is_not_an_event_stream_says_what_arrived(stream, invoke) -> None:
    for call in (stream, invoke):
        server = serve(Reply(200, b"<html>oops</html>", {"content-type": "text/html"}))
        with pytest.raises(JockeyServerError, match="text/html") as caught:
            call(server.model(max_retries=0), "q")
        assert caught.value.status_code == 200
        assert "<html>oops</html>" in str(caught.value)
        assert len(server.requests) == 1
        assert server.bodies[0].closed


# -- bad input: a clear error and zero requests -------------------------------------


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        ([], ValueError, "at least one message"),
        ("", ValueError, "non-empty"),
        ("  \n\t ", ValueError, "non-empty"),
        (
            [HumanMessage("q"), AIMessage("a"), HumanMessage(" ")],
            ValueError,
            "non-empty",
        ),
        ("x" * 10_001, ValueError, "10,000"),
        (
            [HumanMessage([{"type": "image", "url": "https://x/y.png"}])],
            ValueError,
            "'image'",
        ),
        (
            [HumanMessage("q"), ToolMessage("r", tool_call_id="1")],
            ValueError,
            "last message must be a human",
        ),
    ],
)
def test_bad_input_raises_before_any_request(
    stream, invoke, value, error, fragment
) -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    with pytest.raises(error, match=fragment):
        stream(model, value)
    with pytest.raises(error, match=fragment):
        invoke(model, value)
    assert server.requests == []


def test_missing_knowledge_store_raises_before_any_request(stream, monkeypatch) -> None:
    monkeypatch.delenv("TWELVE_LABS_KNOWLEDGE_STORE_ID", raising=False)
    server = serve(sse("plain_answer"))
    with pytest.raises(ValueError, match="knowledge_store_id"):
        stream(server.model(knowledge_store_id=None), "q")
    assert server.requests == []


def test_missing_api_key_raises_before_any_request(stream, monkeypatch) -> None:
    monkeypatch.delenv("TWELVE_LABS_API_KEY", raising=False)
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    server = serve(sse("plain_answer"))
    with pytest.raises(ValueError, match="TWELVE_LABS_API_KEY"):
        stream(server.model(api_key=None), "q")
    assert server.requests == []


def test_unknown_call_option_raises_before_any_request(stream) -> None:
    server = serve(sse("plain_answer"))
    with pytest.raises(TypeError, match="sesion_id"):
        stream(server.model(), "q", sesion_id="sess_typo")
    assert server.requests == []


def test_bad_selections_raise_before_any_request(stream) -> None:
    server = serve(sse("plain_answer"))
    with pytest.raises(ValueError, match="ksic_"):
        stream(server.model(), "q", selections=[{"kind": "collection", "id": "ksi_1"}])
    assert server.requests == []


def test_stop_temperature_and_max_tokens_are_accepted_not_sent_and_warned(
    stream, monkeypatch
) -> None:
    server = serve(sse("plain_answer"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream(server.model(temperature=0.5, max_tokens=10), "q", stop=["you"])
    assert {str(w.message).split("'")[1] for w in caught} >= {
        "stop",
        "temperature",
        "max_tokens",
    }
    body = server.json_bodies[0]
    assert not {"stop", "temperature", "max_tokens", "max_output_tokens"} & set(body)


@pytest.mark.parametrize("entry", ["invoke", "stream", "ainvoke", "astream"])
def test_an_ignored_option_warns_at_the_callers_line_whatever_the_entry(entry) -> None:
    model = serve(*[sse("plain_answer")] * 2).model(temperature=0.5)
    calls = {
        "invoke": lambda: model.invoke("q"),
        "stream": lambda: list(model.stream("q")),
        "ainvoke": lambda: asyncio.run(model.ainvoke("q")),
        "astream": lambda: asyncio.run(_collect(model.astream("q"))),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calls[entry]()
    (warning,) = [w for w in caught if "'temperature'" in str(w.message)]
    # ainvoke runs the call in a task of LangChain's, whose stack starts in asyncio.
    assert warning.filename == __file__ or entry == "ainvoke"


async def _collect(chunks: Any) -> list[Any]:
    return [chunk async for chunk in chunks]


def test_retry_after_as_an_http_date_is_honoured(stream) -> None:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    when = format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True
    )
    server = serve(
        json_reply(
            429,
            {"code": "too_many_requests", "message": "slow down"},
            {"retry-after": when},
        ),
        sse("plain_answer"),
    )
    started = time.monotonic()
    check_answer(stream(server.model(), "q"))
    assert (
        time.monotonic() - started >= 0.9
    )  # waited until (about) the date; HTTP dates have 1 s resolution
    assert len(server.requests) == 2


def test_no_retry_once_a_chunk_was_yielded(stream) -> None:
    # A 200 whose body breaks after some text: retrying would replay text and add
    # a turn to the session, so the error goes to the caller after one request.
    cut = PLAIN.index(b"event: response.output_text.done")
    server = serve(
        Reply(200, [PLAIN[:cut]], error_after=httpx.ReadError("reset")),
        sse("plain_answer"),
    )
    with pytest.raises(JockeyStreamInterruptedError):
        stream(server.model(max_retries=5), "q")
    assert len(server.requests) == 1


def test_a_read_timeout_says_which_limit_fired_and_how_to_raise_it(stream) -> None:
    server = serve(Reply(200, [b""], error_after=httpx.ReadTimeout("idle")))
    with pytest.raises(JockeyTimeoutError) as caught:
        stream(server.model(timeout=7), "q")
    text = str(caught.value)
    assert "7 s" in text
    assert "read" in text
    assert "timeout=" in text


def test_a_connect_timeout_names_the_connect_limit(stream) -> None:
    server = serve(Reply(raise_on_send=httpx.ConnectTimeout("slow")))
    with pytest.raises(JockeyTimeoutError, match=r"10 s to connect.*connect timeout"):
        stream(server.model(max_retries=0), "q")


def test_a_lost_done_after_the_terminal_event_still_returns_the_answer(
    stream, invoke
) -> None:
    # The response is closed at the terminal event: what follows (here a
    # broken connection instead of [DONE]) is never read.
    cut = PLAIN.index(b"data: [DONE]")
    for call in (stream, invoke):
        server = serve(
            Reply(
                200,
                [PLAIN[:cut]],
                {"content-type": "text/event-stream"},
                error_after=httpx.RemoteProtocolError("peer closed"),
            )
        )
        result = call(server.model(), "q")
        if call is stream:
            check_answer(result)
        else:
            check_message(result)
        assert server.bodies[0].closed


def test_nothing_after_the_terminal_event_is_delivered(stream, invoke) -> None:
    cut = PLAIN.index(b"data: [DONE]")
    after = (
        b'data: {"type":"response.output_text.delta","item_id":"x","delta":" AFTER"}'
        b"\n\n"
        + PLAIN[PLAIN.index(b"event: response.completed") : cut]
        + b"data: [DONE]\n\n"
    )
    chunks = stream(serve(sse(PLAIN[:cut] + after)).model(), "q")
    check_answer(chunks)
    message = invoke(serve(sse(PLAIN[:cut] + after)).model(), "q")
    check_message(message)
    assert message.response_metadata["session_id"] == SESSION


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_a_compressed_stream_is_refused_at_once(stream, encoding) -> None:
    # We ask for identity; a compressed body could inflate past any limit.
    body = gzip.compress(PLAIN)
    headers = {"content-type": "text/event-stream", "content-encoding": encoding}
    server = serve(Reply(200, [body[:97], body[97:]], headers))
    with pytest.raises(JockeyStreamInterruptedError, match=f"'{encoding}'") as caught:
        stream(server.model(), "q")
    assert server.requests[0].headers["accept-encoding"] == "identity"
    assert server.bodies[0].served == 0  # not a byte of it was read
    assert server.bodies[0].closed
    assert caught.value.is_retryable is False
