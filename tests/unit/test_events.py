"""The reducer on golden transcripts (docs/protocol.md), without I/O."""

from __future__ import annotations

import gc
import pickle
from collections.abc import Callable
from typing import Any

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
    assert reader.feed(b'data: {"type":"response.output_text.delta"}\n\n')[1] is None
    for second in range(1, 30):
        now[0] = float(second)
        events, failure = reader.feed(b'data: {"type":"keepalive"}\n\n')
        assert events == [{"type": "keepalive"}]
        assert failure is None
    now[0] = 31.0
    events, failure = reader.feed(b'data: {"type":"keepalive"}\n\n')
    assert events == [{"type": "keepalive"}]  # given with the failure, not lost
    assert isinstance(failure, JockeyTimeoutError)
    assert "no progress for more than 30 s" in str(failure)


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
    for second in range(1, 10):
        now[0] = float(second)
        if (failure := reader.feed(noise)[1]) is not None:
            break
    assert isinstance(failure, JockeyTimeoutError)
    assert "no progress" in str(failure)
    assert now[0] == 3.0


def test_content_resets_the_idle_clock() -> None:
    now = [0.0]
    reader = _reader(lambda: now[0], idle=5.0, event_timeout=None)
    for second in range(1, 60, 4):
        now[0] = float(second)
        assert (
            reader.feed(b'data: {"type":"response.output_text.delta"}\n\n')[1] is None
        )


def test_bytes_that_complete_no_event_hit_the_event_timeout() -> None:
    from langchain_jockey import JockeyTimeoutError

    now = [0.0]
    reader = _reader(lambda: now[0], event_timeout=60.0, idle=None)
    assert reader.feed(b"data: {") == ([], None)
    for second in range(5, 200, 5):  # one byte every 5 s, never a newline
        now[0] = float(second)
        if (failure := reader.feed(b"a")[1]) is not None:
            break
    assert isinstance(failure, JockeyTimeoutError)
    assert "no complete event for 60 s" in str(failure)
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


# -- past ONE_EACH chunks, a network read's deltas are one chunk (#25) -------------


def _batched(
    events: list[dict[str, Any]], cuts: list[int]
) -> list[list[dict[str, Any]]]:
    """`events` split before each index in `cuts`: what the reads completed."""
    bounds = [0, *sorted(set(cuts)), len(events)]
    return [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _generations(
    events: list[dict[str, Any]], cuts: list[int], one_each: int
) -> list[AIMessageChunk]:
    from unittest import mock

    reducer = ResponseReducer("jockey1.0")
    with mock.patch("langchain_jockey._events.ONE_EACH", one_each):
        return [
            g.message  # type: ignore[misc]
            for batch in _batched(events, cuts)
            for g in reducer.generations(batch)
        ]


def _long_transcript() -> list[dict[str, Any]]:
    """Commentary, steps, then the answer, with its sequence numbers."""
    return events_of(transcript("intermediate_outputs"))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), one_each=st.integers(0, 12))
def test_any_split_into_reads_gives_the_same_message(data, one_each) -> None:
    events = _long_transcript()
    cuts = data.draw(st.lists(st.integers(0, len(events)), max_size=len(events)))
    split = _generations(events, cuts, one_each)
    one_by_one = _generations(events, list(range(len(events))), one_each)
    merged = aggregate(split)
    assert merged == aggregate(one_by_one)
    assert merged.text == aggregate(reduce(events)[1]).text
    assert split[-1].chunk_position == "last"


def test_the_first_chunks_are_one_per_event_then_one_per_read_and_kind() -> None:
    from langchain_jockey._events import _kind

    events = _long_transcript()
    whole = _generations(events, [], one_each=len(events))  # never merged
    assert [c.content for c in whole] == [c.content for c in reduce(events)[1]]
    merged = _generations(events, [], one_each=2)  # one read: all merged past 2
    assert merged[:2] == whole[:2]
    assert len(merged) < len(whole)
    kinds = [_kind(c) for c in merged[2:]]
    assert kinds == ["reasoning", None, None, "text", None]  # each run is one chunk
    assert (
        merged[2].additional_kwargs["reasoning_content"] == "store for the corner kick…"
    )
    assert aggregate(merged) == aggregate(whole)


def test_an_error_in_a_read_comes_after_the_chunks_before_it() -> None:
    from langchain_core.outputs import ChatGenerationChunk

    created = {"type": "response.created", "response": {"id": RESPONSE_ID}}
    words = [
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": w}
        for w in ("Player ", "9 ", "scores")
    ]
    failed = {"type": "error", "code": "server_error", "message": "boom"}
    reducer = ResponseReducer("jockey1.0")
    got: list[ChatGenerationChunk] = []
    with pytest.raises(JockeyServerError):
        for chunk in reducer.generations([created, *words, failed, words[0]]):
            got.append(chunk)
    assert "".join(c.text for c in got) == "Player 9 scores"


def test_a_repeated_sequence_number_is_dropped_wherever_it_falls() -> None:
    from langchain_jockey._events import _Seen

    seen = _Seen()
    order = [5, 6, 7, 9, 12, 4, 8, 3, 11, 10, 100, 2]
    assert all(seen.add(n) for n in order)
    assert not any(seen.add(n) for n in order)
    assert seen.add(1) and seen.add(13) and seen.add(0) and seen.add(-1)
    # an honest stream keeps two ints, whatever its length
    for n in range(13, 100_000):
        seen.add(n)
    assert seen._apart == set()
    assert not seen.add(99_999)
