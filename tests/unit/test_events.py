"""The reducer on golden transcripts (docs/protocol.md), without I/O."""

from __future__ import annotations

import asyncio
import gc
import itertools
import pickle
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessageChunk

from langchain_jockey import (
    JockeyRateLimitError,
    JockeyServerError,
    JockeyStreamInterruptedError,
)
from langchain_jockey._events import ResponseReducer
from tests.support import RESPONSE_ID, SESSION, STORE, deltas_of, events_of, transcript


def reduce(
    events: list[dict[str, Any]],
) -> tuple[ResponseReducer, list[AIMessageChunk]]:
    reducer = ResponseReducer("jockey1.0")
    chunks = [c for e in events if (c := reducer.feed(e)) is not None]
    return reducer, chunks


def aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


def test_plain_answer_yields_each_delta_in_order_then_one_terminal_chunk() -> None:
    body = transcript("plain_answer")
    reducer, chunks = reduce(events_of(body))
    assert [c.content for c in chunks[:-1]] == deltas_of(body)
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].content == ""
    assert all(c.chunk_position is None for c in chunks[:-1])
    assert reducer.finished


def test_every_chunk_carries_the_response_id_and_provider() -> None:
    _, chunks = reduce(events_of(transcript("plain_answer")))
    assert {c.id for c in chunks} == {RESPONSE_ID}
    assert all(c.response_metadata["model_provider"] == "twelvelabs" for c in chunks)


def test_usage_and_string_metadata_are_on_exactly_one_chunk() -> None:
    _, chunks = reduce(events_of(transcript("plain_answer")))
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert [("model_name" in c.response_metadata) for c in chunks].count(True) == 1
    merged = aggregate(chunks)
    assert merged.usage_metadata == {
        "input_tokens": 9000,
        "output_tokens": 120,
        "total_tokens": 9120,
    }
    assert merged.response_metadata["model_name"] == "jockey1.0"
    assert merged.response_metadata["model_provider"] == "twelvelabs"
    assert merged.response_metadata["session_id"] == SESSION
    assert merged.response_metadata["knowledge_store_id"] == STORE
    assert merged.response_metadata["status"] == "completed"
    assert merged.response_metadata["incomplete_details"] is None
    assert merged.response_metadata["id"] == RESPONSE_ID
    assert merged.text == "".join(deltas_of(transcript("plain_answer")))


def test_commentary_and_tool_steps_stay_out_of_the_answer_text() -> None:
    body = transcript("intermediate_outputs")
    _, chunks = reduce(events_of(body))
    text = aggregate(chunks).text
    assert text == "".join(deltas_of(body))
    assert "Searching" not in text
    assert "Searching" in "".join(deltas_of(body, phase_filter=False))


def test_keepalives_and_unknown_events_produce_no_chunks() -> None:
    for name in ("keepalives", "unknown_events"):
        body = transcript(name)
        _, chunks = reduce(events_of(body))
        assert [c.content for c in chunks[:-1]] == deltas_of(body), name
        assert "internal thought" not in aggregate(chunks).text


def test_incomplete_answer_is_a_success_with_status_and_reason() -> None:
    _, chunks = reduce(events_of(transcript("incomplete")))
    meta = aggregate(chunks).response_metadata
    assert meta["status"] == "incomplete"
    assert meta["incomplete_details"] == {"reason": "max_output_tokens"}


def test_response_incomplete_event_is_terminal() -> None:
    events = events_of(transcript("incomplete"))
    events[-1] = {
        "type": "response.incomplete",
        "response": {**events[-1]["response"], "status": None},
    }
    reducer, chunks = reduce(events)
    assert reducer.finished
    assert chunks[-1].response_metadata["status"] == "incomplete"


def test_response_failed_raises_server_error_with_partial_text_and_session() -> None:
    body = transcript("failed")
    reducer = ResponseReducer("jockey1.0")
    with pytest.raises(JockeyServerError) as info, reducer.guard():
        for event in events_of(body):
            reducer.feed(event)
    assert info.value.partial_text == "".join(deltas_of(body)) == "The goal comes "
    assert info.value.session_id == SESSION
    assert info.value.response_id == RESPONSE_ID


def test_error_event_is_classified_by_its_code() -> None:
    reducer = ResponseReducer("jockey1.0")
    with pytest.raises(JockeyRateLimitError) as info, reducer.guard():
        for event in events_of(transcript("error_then_failed")):
            reducer.feed(event)
    assert info.value.code == "too_many_requests"
    assert "rate limit" in info.value.message
    assert info.value.partial_text == "The goal "
    assert info.value.status_code is None


def test_end_without_terminal_event_raises_interrupted_with_partial_text() -> None:
    events = events_of(transcript("plain_answer"))[:10]
    reducer = ResponseReducer("jockey1.0")
    with pytest.raises(JockeyStreamInterruptedError) as info, reducer.guard():
        for event in events:
            reducer.feed(event)
    assert info.value.partial_text == reducer.text
    assert info.value.partial_text
    assert info.value.session_id == SESSION


def test_snapshot_text_is_used_when_no_delta_arrived() -> None:
    events = [
        e
        for e in events_of(transcript("plain_answer"))
        if e["type"] != "response.output_text.delta"
    ]
    _, chunks = reduce(events)
    assert aggregate(chunks).text == "".join(deltas_of(transcript("plain_answer")))


def _reader(clock, **limits):
    from langchain_jockey._sse import Limits, StreamReader

    return StreamReader(Limits(**limits), clock=clock)


def test_keepalives_past_the_idle_limit_raise_a_timeout() -> None:
    from langchain_jockey import JockeyTimeoutError

    now = [0.0]
    reader = _reader(lambda: now[0], idle=30.0, event_timeout=None)
    assert list(reader.feed(b'data: {"type":"response.output_text.delta"}\n\n'))
    for second in range(1, 30):
        now[0] = float(second)
        assert list(reader.feed(b'data: {"type":"keepalive"}\n\n'))
    now[0] = 31.0
    with pytest.raises(JockeyTimeoutError, match="no progress for more than 30 s"):
        list(reader.feed(b'data: {"type":"keepalive"}\n\n'))


@pytest.mark.parametrize(
    "noise",
    [
        b": ping\n\n",
        b'data: {"type":"response.in_progress"}\n\n',
        b'data: {"type":"something.new"}\n\n',
    ],
    ids=["comment", "status-only", "unknown-event"],
)
def test_what_is_not_progress_does_not_reset_the_idle_clock(noise) -> None:
    from langchain_jockey import JockeyTimeoutError

    now = [0.0]
    reader = _reader(lambda: now[0], idle=2.0, event_timeout=None)
    with pytest.raises(JockeyTimeoutError, match="no progress"):
        for second in range(1, 10):
            now[0] = float(second)
            list(reader.feed(noise))
    assert now[0] == 3.0


def test_content_resets_the_idle_clock() -> None:
    now = [0.0]
    reader = _reader(lambda: now[0], idle=5.0, event_timeout=None)
    for second in range(1, 60, 4):
        now[0] = float(second)
        list(reader.feed(b'data: {"type":"response.output_text.delta"}\n\n'))


def test_bytes_that_complete_no_event_hit_the_event_timeout() -> None:
    from langchain_jockey import JockeyTimeoutError

    now = [0.0]
    reader = _reader(lambda: now[0], event_timeout=60.0, idle=None)
    list(reader.feed(b"data: {"))
    with pytest.raises(JockeyTimeoutError, match="no complete event for 60 s"):
        for second in range(5, 200, 5):  # one byte every 5 s, never a newline
            now[0] = float(second)
            list(reader.feed(b"a"))
    assert now[0] == 65.0


def test_fast_text_chunks_equal_validated_ones() -> None:
    from langchain_core.outputs import ChatGenerationChunk

    from langchain_jockey._events import generation

    reducer = ResponseReducer("jockey1.0")
    events = events_of(transcript("plain_answer"))
    fast = [c for e in events if (c := reducer.feed(e)) is not None][:-1]
    for chunk, delta in zip(fast, deltas_of(transcript("plain_answer")), strict=True):
        slow = AIMessageChunk(
            content=delta,
            id=RESPONSE_ID,
            response_metadata={"model_provider": "twelvelabs"},
        )
        assert chunk == slow
        assert chunk.model_dump() == slow.model_dump()
        assert chunk.model_fields_set == slow.model_fields_set
        assert generation(chunk) == ChatGenerationChunk(message=slow)
        # A plain str, as the field is declared: core's TextAccessor would be one
        # more object per chunk for the cyclic GC to scan.
        assert type(generation(chunk).text) is str
        assert (
            generation(chunk).model_dump()
            == ChatGenerationChunk(message=slow).model_dump()
        )
    # Every mutable field is the chunk's own: mutating one leaves the others alone.
    fast[0].additional_kwargs["x"] = 1
    fast[0].response_metadata["y"] = 2
    fast[0].tool_call_chunks.append(
        {"name": "n", "args": "", "id": "1", "index": 0, "type": "tool_call_chunk"}
    )
    fast[0].name = "renamed"
    assert fast[1].additional_kwargs == {}
    assert fast[1].response_metadata == {"model_provider": "twelvelabs"}
    assert fast[1].tool_call_chunks == []
    assert "name" not in fast[1].model_fields_set
    # Pydantic's own machinery sees ordinary models.
    assert pickle.loads(pickle.dumps(fast[1])) == fast[1]
    assert fast[1].model_copy(update={"content": "x"}).content == "x"
    assert fast[1].__pydantic_extra__ == slow.__pydantic_extra__
    assert fast[1].__pydantic_extra__ is not fast[2].__pydantic_extra__


def _gc_cost_of_keeping(make_chunks: Callable[[], list[Any]]) -> tuple[float, float]:
    """GC allocations and GC-tracked objects per chunk, while the chunks are kept.

    langchain-core keeps every streamed chunk until the stream ends, so what a
    kept chunk costs the cyclic GC is paid on every delta (benchmarks/).
    """
    gc.collect()
    gc.disable()
    try:
        allocations = gc.get_count()[0]
        tracked = len(gc.get_objects())
        chunks = make_chunks()
        allocations = gc.get_count()[0] - allocations
        gc.collect()  # drops the transients; the kept chunks remain
        tracked = len(gc.get_objects()) - tracked
        n = len(chunks)
    finally:
        gc.enable()
    return allocations / n, tracked / n


def test_kept_text_chunks_cost_the_gc_no_more_than_validated_ones() -> None:
    from langchain_core.outputs import ChatGenerationChunk

    from langchain_jockey._events import generation

    n = 2000
    delta = {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "w"}
    reducer = ResponseReducer("jockey1.0")
    reducer.feed({"type": "response.created", "response": {"id": RESPONSE_ID}})
    assert reducer.feed(delta) is not None  # the template exists from here on

    def ours() -> list[Any]:
        return [generation(reducer.feed(delta)) for _ in range(n)]

    def validated() -> list[Any]:
        return [
            ChatGenerationChunk(
                message=AIMessageChunk(
                    content="w",
                    id=RESPONSE_ID,
                    response_metadata={"model_provider": "twelvelabs"},
                )
            )
            for _ in range(n)
        ]

    our_allocations, our_tracked = _gc_cost_of_keeping(ours)
    their_allocations, their_tracked = _gc_cost_of_keeping(validated)
    assert our_allocations <= their_allocations + 0.5
    assert our_tracked <= their_tracked + 0.5
    assert our_tracked < 9.5  # message, __dict__, fields set, 3 lists; the same 3


# -- past ONE_EACH chunks, deltas that flow within WINDOW are one chunk (#25) -------


class Clock:
    """A clock the test moves: each event arrives `gap` seconds after the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timed(
    events: list[dict[str, Any]], gaps: list[float], clock: Clock
) -> Iterator[dict[str, Any]]:
    """`events`, the clock moved by the next of `gaps` before each one."""
    for event, gap in zip(events, itertools.cycle(gaps or [0.0]), strict=False):
        clock.now += gap
        yield event


def _chunks(
    events: list[dict[str, Any]], gaps: list[float], one_each: int = 2
) -> list[AIMessageChunk]:
    clock = Clock()
    reducer = ResponseReducer("jockey1.0", clock=clock)
    with mock.patch("langchain_jockey._events.ONE_EACH", one_each):
        return [g.message for g in reducer.chunks(_timed(events, gaps, clock))]  # type: ignore[misc]


def _answer(n: int) -> list[dict[str, Any]]:
    """An answer of `n` one-word deltas, with commentary before it."""
    events = events_of(transcript("intermediate_outputs"))
    head = [e for e in events if e["type"] != "response.completed"]
    words = [
        {"type": "response.output_text.delta", "item_id": "msg_a", "delta": f"w{i} "}
        for i in range(n)
    ]
    return [*head, *words, events[-1]]


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.001, 0.02, 0.049, 0.05, 0.3]), max_size=40),
    one_each=st.integers(0, 12),
)
def test_any_timing_gives_the_same_message(gaps, one_each) -> None:
    events = _answer(60)
    merged = _chunks(events, gaps, one_each)
    one_by_one = reduce(events)[1]
    assert aggregate(merged) == aggregate(one_by_one)
    assert merged[-1].chunk_position == "last"
    assert [c.content for c in merged[: min(one_each, len(merged))]] == [
        c.content for c in one_by_one[: min(one_each, len(merged))]
    ]


def test_a_fast_answer_past_one_each_is_a_chunk_per_window() -> None:
    from langchain_jockey._events import WINDOW, _kind

    events = _answer(1000)
    fast = _chunks(events, [0.001], one_each=5)  # 1,000 deltas over about 1.1 s
    texts = [c for c in fast[5:] if _kind(c) == "text"]
    assert len(texts) <= 1.1 / WINDOW + 2
    assert aggregate(fast) == aggregate(reduce(events)[1])
    # the commentary's last two deltas are one chunk; steps are never merged
    kinds = [_kind(c) for c in fast]
    assert kinds[5:9] == ["reasoning", "reasoning", None, None]
    assert fast[6].additional_kwargs["reasoning_content"] == "kick…"
    assert set(kinds[9:-1]) == {"text"}
    assert fast[-1].chunk_position == "last"


def test_a_slow_delta_is_given_at_once() -> None:
    clock = Clock()
    reducer = ResponseReducer("jockey1.0", clock=clock)
    given = []

    def arrivals():
        yield {"type": "response.created", "response": {"id": RESPONSE_ID}}
        for i in range(10):
            clock.now += 0.2  # slower than WINDOW: each is news worth showing
            yield {
                "type": "response.output_text.delta",
                "item_id": "m",
                "delta": str(i),
            }
            given.append(i)

    texts = []
    with mock.patch("langchain_jockey._events.ONE_EACH", 0):
        for chunk in reducer.chunks(arrivals()):
            # the chunk of delta i comes before the next delta is even read
            assert chunk.text == str(len(given))
            texts.append(chunk.text)
    assert texts == [str(i) for i in range(10)]


def test_held_deltas_come_before_an_error_or_an_unfinished_end() -> None:
    words = [
        {"type": "response.output_text.delta", "item_id": "m", "delta": w}
        for w in ("Player ", "9 ", "scores")
    ]
    created = {"type": "response.created", "response": {"id": RESPONSE_ID}}

    def broken():
        yield created
        yield from words
        raise JockeyStreamInterruptedError("cut", retryable=False)

    reducer = ResponseReducer("jockey1.0", clock=Clock())  # no time passes
    got: list[Any] = []
    with mock.patch("langchain_jockey._events.ONE_EACH", 0):
        with pytest.raises(JockeyStreamInterruptedError):
            got.extend(reducer.chunks(broken()))
        assert "".join(c.text for c in got) == "Player 9 scores"
        reducer = ResponseReducer("jockey1.0", clock=Clock())
        ended = list(reducer.chunks(e for e in [created, *words]))
    assert "".join(c.text for c in ended) == "Player 9 scores"
    assert len(ended) == 2  # the first at once (no delta before it), two held


def test_the_async_twin_gives_the_same_chunks() -> None:
    events = _answer(300)

    async def timed(clock: Clock):
        for event in _timed(events, [0.001, 0.03], clock):
            yield event

    async def collect() -> list[AIMessageChunk]:
        clock = Clock()
        reducer = ResponseReducer("jockey1.0", clock=clock)
        return [g.message async for g in reducer.achunks(timed(clock))]  # type: ignore[misc]

    with mock.patch("langchain_jockey._events.ONE_EACH", 3):
        got = asyncio.run(collect())
    assert got == _chunks(events, [0.001, 0.03], one_each=3)
    assert len(got) < len(reduce(events)[1])


def test_a_repeated_sequence_number_is_dropped_wherever_it_falls() -> None:
    from langchain_jockey._events import _Seen

    seen = _Seen()
    order = [5, 6, 7, 9, 12, 4, 8, 3, 11, 10, 100, 2]
    assert all(seen.add(n) for n in order)
    assert not any(seen.add(n) for n in order)
    assert all(seen.add(n) for n in (1, 13, 0, -1))
    # an honest stream with a gap now and then keeps a run per gap
    seen = _Seen()
    for n in range(100_000):
        if n % 10_000 != 5:  # a skipped keepalive
            seen.add(n)
    assert len(seen._starts) == 11
    assert not seen.add(99_999)
    assert seen.add(10_005)  # late: kept apart, not inserted into the runs
    assert not seen.add(10_005)
    assert seen._apart == {10_005}
    # a hostile order (descending) costs a set, never a list insertion per number
    seen = _Seen()
    for n in range(200_000, 0, -2):
        assert seen.add(n)
    assert len(seen._starts) == 1
    assert not any(seen.add(n) for n in range(2, 200_001, 2))
    assert all(seen.add(n) for n in range(1, 200_000, 2))


@pytest.mark.parametrize(
    "end",
    [
        {"type": "response.output_text.done", "item_id": "m", "text": "…"},
        {"type": "keepalive"},
        {"type": "response.output_item.added", "item": {"type": "function_call"}},
    ],
    ids=["part-done", "keepalive", "next-item"],
)
def test_any_other_event_gives_what_is_held_at_once(end) -> None:
    clock = Clock()
    reducer = ResponseReducer("jockey1.0", clock=clock)
    given: list[str] = []

    def arrivals():
        yield {"type": "response.created", "response": {"id": RESPONSE_ID}}
        for word in ("a ", "b ", "TAIL"):
            clock.now += 0.001
            yield {"type": "response.output_text.delta", "item_id": "m", "delta": word}
        clock.now += 0.001
        yield end
        given.append("end")  # read only once the chunks before it were taken
        clock.now += 3.0  # Jockey thinks

    with mock.patch("langchain_jockey._events.ONE_EACH", 0):
        texts = [(c.text, list(given)) for c in reducer.chunks(arrivals())]
    assert texts == [("a ", []), ("b TAIL", [])]


def test_the_first_delta_after_a_pause_is_given_at_once() -> None:
    clock = Clock()
    reducer = ResponseReducer("jockey1.0", clock=clock)
    seen: list[str] = []

    def arrivals():
        yield {"type": "response.created", "response": {"id": RESPONSE_ID}}
        yield {"type": "response.output_text.delta", "item_id": "m", "delta": "x"}
        clock.now += 0.5  # a tool ran
        yield {"type": "response.content_part.added", "item_id": "m", "part": {}}
        clock.now += 0.001  # the part's first delta comes right after it
        yield {"type": "response.output_text.delta", "item_id": "m", "delta": "WORD"}
        seen.append("read on")  # a pause would be here

    with mock.patch("langchain_jockey._events.ONE_EACH", 0):
        texts = [(c.text, list(seen)) for c in reducer.chunks(arrivals())]
    assert texts == [("x", []), ("WORD", [])]
