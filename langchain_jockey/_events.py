"""Jockey events -> LangChain message chunks. No I/O.

One reducer, `ResponseReducer.feed(event) -> AIMessageChunk | None`, serves the
sync and async streams alike, and `invoke`, which aggregates the stream; a
`Batcher` around it (at the end of this module) merges its deltas in time
windows, for the chunks a model yields (`ONE_EACH`, `WINDOW`). The mapping
(docs/protocol.md, "Streaming"):

- `response.created` (and other snapshots): the `resp_…` id, session and store
  become known; every chunk carries the id.
- `response.output_item.added`: remembers which items are not the final answer
  (commentary, Jockey's tool steps); a message without `phase` is the answer.
- `response.output_text.delta` of an answer item: a chunk with `str` content.
  Of a commentary item (with `include=["intermediate_outputs"]`): a chunk with
  empty content and `additional_kwargs["reasoning_content"]`, so progress shows
  while Jockey works and never enters `.text`.
- A `function_call` / `function_call_output` item, when done (or when its
  arguments are): a chunk with `additional_kwargs["jockey_steps"] = [step]`.
- `response.completed` / `response.incomplete`: the one terminal chunk,
  `chunk_position="last"`, with usage (total computed: Jockey sends only input
  and output) and the string metadata (`finish_reason` among it: `"stop"`, or
  `"length"` for an incomplete answer). Core *concatenates* equal strings when
  merging chunks, so strings appear on this chunk only; `model_provider` is on
  every chunk (merging leaves it alone). Nothing after it is delivered.
- `response.failed`, `error`: raise the matching `JockeyError`.
- Anything else, and any field of the wrong type: ignored (unknown types must
  be ignored). An event whose `sequence_number` was already seen is a repeat.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import aclosing, closing, contextmanager
from typing import Any, TypeVar

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel

from langchain_jockey import errors
from langchain_jockey._output import (
    PROVIDER,
    REASONING_KEY,
    STEPS_KEY,
    Output,
    is_answer,
    read_output,
    step_of,
    text_parts,
    valid_id,
    valid_text,
)

__all__ = ["ONE_EACH", "WINDOW", "Batcher", "ResponseReducer", "generation"]

logger = logging.getLogger("langchain_jockey")

_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_SNAPSHOT = frozenset({"response.created", "response.in_progress", "response.queued"})
_MAX_TOKENS = 10**12  # more than any answer: a larger count is not a count
_Model = TypeVar("_Model", bound=BaseModel)

# The hot path. Validating an AIMessageChunk and its ChatGenerationChunk costs
# about 5 us per delta. Without this, stream() misses its target (re-measured
# 2026-12-04, benchmarks' per-delta measure at N=1000, three alternated runs:
# 22.5-27.3 us per delta without, 15.4-18.5 with, against 1.3 x (raw httpx +
# the floor that builds its chunks) = 21.9-26.3 us; missed in 2 of 3). A clone
# of a validated template, built the way pydantic's `__copy__` builds a shallow
# copy but in one step and with every per-chunk field replaced by a fresh value,
# is an equal object in about 2 us; tests/unit/test_events.py pins the equality
# and that no mutable state is shared.
_GENERATION = ChatGenerationChunk(message=AIMessageChunk(content=""))
_new = object.__new__
_set = object.__setattr__


def _clone(template: _Model, fields: dict[str, Any]) -> _Model:
    """`template` with `fields` replaced, unvalidated.

    The clone's `__dict__`, fields set, extra and private values are its own;
    values not in `fields` are shared with the template, so every mutable field
    must be in `fields`.
    """
    clone = _new(type(template))
    state = template.__dict__.copy()
    state.update(fields)
    _set(clone, "__dict__", state)
    extra = template.__pydantic_extra__
    _set(clone, "__pydantic_extra__", None if extra is None else extra.copy())
    _set(clone, "__pydantic_fields_set__", set(template.__pydantic_fields_set__))
    private = template.__pydantic_private__
    _set(clone, "__pydantic_private__", None if private is None else private.copy())
    return clone


def generation(message: AIMessageChunk) -> ChatGenerationChunk:
    """`ChatGenerationChunk(message=message)`, without validating `message` again."""
    # `message.text` is a TextAccessor, a str subclass: one more object for the
    # cyclic GC to scan per chunk, kept until the stream ends. The field is a str.
    return _clone(_GENERATION, {"message": message, "text": str(message.text)})


def _finish_reason(status: str) -> str:
    """`finish_reason` as the partner packages set it, from a finished status.

    `"length"` for an answer cut short (`incomplete`: the one documented reason
    is `max_output_tokens`; an unknown one is read as a truncation too),
    `"stop"` for any other finished answer.
    """
    return "length" if status == "incomplete" else "stop"


class _Seen:
    """The sequence numbers applied, in memory that grows with their gaps only.

    An honest stream counts up, with a gap where a keepalive was skipped: the
    numbers are kept as runs `[start, end)`, appended at the end, so a few
    runs hold what took a set of a million ints 60 MB. A number below the
    last run that no run holds (out of order) goes in a set: a hostile order
    costs a set's memory, never a list insertion per number.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._apart: set[int] = set()

    def add(self, number: int) -> bool:
        """Record `number`; False if it was already seen (a repeat)."""
        starts, ends = self._starts, self._ends
        if starts and number < ends[-1]:
            i = bisect.bisect_right(starts, number) - 1  # the run at or before it
            if (i >= 0 and number < ends[i]) or number in self._apart:
                return False
            self._apart.add(number)
        elif starts and number == ends[-1]:
            ends[-1] += 1
        else:
            starts.append(number)
            ends.append(number + 1)
        return True


def _count(value: Any) -> int | None:
    ok = type(value) is int and 0 <= value <= _MAX_TOKENS
    return value if ok else None


def usage_of(snapshot: Mapping[str, Any]) -> UsageMetadata | None:
    """Token usage of a response snapshot, if it reports a valid one."""
    usage = snapshot.get("usage")
    if not isinstance(usage, dict):
        return None
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    if input_tokens is None or output_tokens is None:
        logger.debug("Jockey usage dropped, not two token counts: %.200r", usage)
        return None
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


class ResponseReducer:
    """The state of one streamed response, fed one event dict at a time.

    Attributes:
        response_id: The `resp_…` id, from `response.created`.
        session_id: The session, known from the first event.
        knowledge_store_id: The store that answered.
        finished: Whether a terminal event arrived.
    """

    def __init__(
        self,
        model_name: str,
        *,
        usage: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start reading one response; `model_name` is reported in the metadata.

        With `usage=False` the last chunk carries no token usage. `clock`
        times the arrivals, for the `Batcher` of `chunks` and `achunks`.
        """
        self._model_name = model_name
        self._usage = usage
        self._meta = {"model_provider": PROVIDER}
        self._items: dict[str, dict[str, Any]] = {}  # non-answer items, by id
        self._spoken: set[str] = set()  # commentary items that streamed text
        self._stepped: set[str] = set()  # tool items already sent as steps
        self._parts: list[str] = []
        self._notes: list[dict[str, Any]] = []  # from content_part.done events
        self._seen = _Seen()  # sequence numbers applied
        self._high = ""  # half a surrogate pair, until the next delta
        self._template: AIMessageChunk | None = None  # of the text chunks
        self._clock = clock
        self.response_id: str | None = None
        self.session_id: str | None = None
        self.knowledge_store_id: str | None = None
        self.finished = False

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return "".join(self._parts)

    def feed(self, event: Mapping[str, Any]) -> AIMessageChunk | None:
        """Apply one event; return the chunk it produces, if any.

        Raises:
            JockeyError: for `response.failed`, `error` and failed snapshots,
                and as `JockeyStreamInterruptedError` for an event that cannot
                be read at all (never a bare `TypeError` or `ValueError`).
        """
        try:
            return self._apply(event)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            raise errors.JockeyStreamInterruptedError(
                f"Jockey sent an event ChatJockey cannot read: {type(exc).__name__}",
                body=dict(event),
                retryable=False,
            ) from exc

    def chunks(
        self, events: Generator[dict[str, Any], None, None]
    ) -> Generator[ChatGenerationChunk, None, None]:
        """The chunks a chat model yields for a stream's `events` (`Batcher.chunks`)."""
        return Batcher(self, self._clock).chunks(events)

    def achunks(
        self, events: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        """Async twin of `chunks` (`Batcher.achunks`)."""
        return Batcher(self, self._clock).achunks(events)

    def merged(self, kind: str, text: str) -> AIMessageChunk:
        """The chunk that deltas of one `kind` (see `_kind`) merge to, of `text`."""
        if kind == "text":
            return self._text(text)
        return self._chunk("", additional_kwargs={REASONING_KEY: text})

    def _apply(self, event: Mapping[str, Any]) -> AIMessageChunk | None:
        sequence = event.get("sequence_number")
        if type(sequence) is int and not self._seen.add(sequence):
            return None  # a repeat of an event already applied
        if self.finished:
            logger.debug("Jockey event after the terminal event ignored")
            return None
        kind = event.get("type")
        item_id = event.get("item_id")
        item_id = item_id if isinstance(item_id, str) else None
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            if not isinstance(delta, str) or not delta:
                return None
            delta = self._joined(delta)
            if not delta:
                return None
            if item_id in self._items:
                return self._reasoning(item_id, delta) if item_id else None
            self._parts.append(delta)
            return self._text(delta)
        if kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict) and not is_answer(item):
                ident = valid_id(item.get("id"))
                if ident is not None:
                    self._items[ident] = dict(item)
            return None
        if kind == "response.function_call_arguments.done" and item_id in self._items:
            self._items[item_id]["arguments"] = event.get("arguments")
            return self._step(self._items[item_id])
        if kind == "response.output_item.done":
            item = event.get("item")
            return self._step(item) if isinstance(item, dict) else None
        if kind == "response.content_part.done" and item_id not in self._items:
            # Citations for when the terminal snapshot carries no output. The
            # part's deltas are already in the text: its notes start before.
            part = event.get("part")
            size = len(text_parts([part])[0])
            self._notes.extend(text_parts([part], len(self.text) - size)[1])
            return None
        if kind in _SNAPSHOT:
            self._remember(event.get("response"))
            return None
        if kind in _TERMINAL:
            return self._finish(event)
        if kind in ("response.failed", "error"):
            raise self._failed(event)
        return None

    def _text(self, content: str) -> AIMessageChunk:
        """A chunk of answer text (the hot path: a clone, see `_clone`)."""
        if self._template is None:
            self._template = self._chunk("")
        return _clone(
            self._template,
            {
                "content": content,
                "response_metadata": {"model_provider": PROVIDER},
                "additional_kwargs": {},
                "tool_calls": [],
                "invalid_tool_calls": [],
                "tool_call_chunks": [],
            },
        )

    def _chunk(self, content: str, **fields: Any) -> AIMessageChunk:
        fields.setdefault("response_metadata", self._meta)
        return AIMessageChunk(content=content, id=self.response_id, **fields)

    def _joined(self, delta: str) -> str:
        """`delta`, valid: a high surrogate ending it waits for the next delta.

        A server that slices text by UTF-16 units can split one character
        (an emoji) over two deltas; its halves are joined, not each replaced.
        """
        delta, self._high = self._high + delta, ""
        if "\ud800" <= delta[-1] <= "\udbff":
            delta, self._high = delta[:-1], delta[-1]
        return valid_text(delta)

    def _reasoning(self, item_id: str, delta: str) -> AIMessageChunk | None:
        """Commentary streams as reasoning; separate messages by a blank line."""
        if self._items[item_id].get("type", "message") != "message":
            return None
        if item_id not in self._spoken:
            if self._spoken:
                delta = "\n\n" + delta
            self._spoken.add(item_id)
        return self._chunk("", additional_kwargs={REASONING_KEY: delta})

    def _step(self, item: Mapping[str, Any]) -> AIMessageChunk | None:
        ident = valid_id(item.get("id"))
        step = step_of(item)
        if step is None or (ident is not None and ident in self._stepped):
            return None
        if ident is not None:
            self._stepped.add(ident)
        return self._chunk("", additional_kwargs={STEPS_KEY: [step]})

    def _remember(self, snapshot: Any) -> None:
        if not isinstance(snapshot, dict):
            return
        self.response_id = valid_id(snapshot.get("id")) or self.response_id
        self.session_id = valid_id(snapshot.get("session_id")) or self.session_id
        self.knowledge_store_id = (
            valid_id(snapshot.get("knowledge_store_id")) or self.knowledge_store_id
        )

    def _failed(self, event: Mapping[str, Any]) -> errors.JockeyError:
        """The error of an `error` event or a failed response.

        Jockey documents only `response.failed`, with no detail; Open Responses
        sends an `error` event (`{"error": {code, message, …}}`) first. Either
        way the error is classified by its own code, not by the stream's
        status (200).
        """
        snapshot = event.get("response")
        self._remember(snapshot)
        snapshot = snapshot if isinstance(snapshot, dict) else None
        detail = snapshot.get("error") if snapshot is not None else event
        code, message, docs_url = errors.error_fields(detail)
        err = errors.error_class(None, code)(
            message or "Jockey reported the response as failed",
            code=code,
            docs_url=docs_url,
            body=dict(event),
            retryable=False,
        )
        if snapshot is not None:
            err.usage_metadata = usage_of(snapshot)
        return err

    def _finish(self, event: Mapping[str, Any]) -> AIMessageChunk:
        snapshot = event.get("response")
        snapshot = snapshot if isinstance(snapshot, dict) else {}
        if snapshot.get("status") == "failed":
            raise self._failed(event)
        self._remember(snapshot)
        self.finished = True
        status = snapshot.get("status")
        if not isinstance(status, str) or not status:
            incomplete = event.get("type") == "response.incomplete"
            status = "incomplete" if incomplete else "completed"
        output = read_output(snapshot.get("output"))
        # Never lose an answer: if no delta came, take the text from the snapshot.
        content = "" if self._parts else output.text
        if self._high and self._parts:  # half a pair whose other half never came
            content, self._high = "\ufffd", ""
        if content:
            self._parts.append(content)
        return self._chunk(
            content,
            chunk_position="last",
            usage_metadata=usage_of(snapshot) if self._usage else None,
            response_metadata=self._metadata(snapshot, status, output),
        )

    def _metadata(
        self, snapshot: Mapping[str, Any], status: str, output: Output
    ) -> dict[str, Any]:
        """The response metadata of a finished response (one chunk carries it)."""
        created = snapshot.get("created_at")
        return {
            "model_provider": PROVIDER,
            "model_name": self._model_name,
            "id": self.response_id,
            "status": status,
            "finish_reason": _finish_reason(status),
            "incomplete_details": snapshot.get("incomplete_details"),
            "session_id": self.session_id,
            "knowledge_store_id": self.knowledge_store_id,
            "created_at": created if isinstance(created, (str, int, float)) else None,
            "annotations": output.checked(
                self.text, output.annotations if output.text else self._notes
            ),
        }

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Wrap the reading of a stream.

        A `JockeyError` raised inside gets the text and session received so
        far; a body that ends without a terminal event raises
        `JockeyStreamInterruptedError`. After the terminal event, a broken
        connection is logged at debug level, not raised: the answer is whole.
        A consumer that stops early (`GeneratorExit`, cancellation) passes
        through untouched.
        """
        try:
            yield
        except errors.JockeyError as err:
            if self.finished:
                logger.debug(
                    "Jockey stream failed after the answer (it is complete): %s", err
                )
                return
            raise err.with_progress(
                self.text, self.session_id, self.response_id
            ) from err.__cause__
        if not self.finished:
            raise errors.JockeyStreamInterruptedError(
                "the Jockey stream ended before the response was complete (no "
                "response.completed event); the answer may be cut short. Jockey "
                "streams cannot be resumed: send a new request with the same "
                "session_id to continue.",
                retryable=False,
            ).with_progress(self.text, self.session_id, self.response_id)


# One chunk per delta shows tokens one by one, but LangChain keeps every chunk
# of a stream until it ends (`BaseChatModel.stream` and `_generate_with_cache`
# merge them then), about 1.9 KB each: a million one-byte deltas took 1.8 GiB.
# Past an answer's first ONE_EACH chunks (a long answer, as few reach), a delta
# that comes less than WINDOW seconds after the delta before it (the answer is
# flowing) is held, with the deltas of its kind that follow, until one comes
# WINDOW or more after it or any other event comes (the end of a part, a step,
# a keepalive, the end): then they are one chunk. So an answer's text makes at
# most about 1/WINDOW chunks a second, whatever the event count. Merging by
# network read instead does nothing against a server that writes each event
# on its own (the emulator, most SSE servers): httpx yields each HTTP chunk
# apart. The cost: if Jockey stops in mid-text (it sends a keepalive every
# ~10 s), the text of the last WINDOW waits for its next event.
# Measured in tests/reliability/test_answer_memory.py and benchmarks/.
ONE_EACH = 1_000
WINDOW = 0.05  # seconds: 20 chunks a second read as a smooth stream


def _kind(message: AIMessageChunk) -> str | None:
    """What a chunk is, when it is a delta that can be merged with its like."""
    kwargs = message.additional_kwargs
    if message.chunk_position is not None:
        return None
    if message.content:
        return None if kwargs else "text"
    return "reasoning" if kwargs.keys() == {REASONING_KEY} else None


def _piece(message: AIMessageChunk) -> str:
    """The text of a delta `_kind` names."""
    return str(message.additional_kwargs.get(REASONING_KEY) or message.content)


class Batcher:
    """The chunks a chat model yields for a stream: a reducer's, merged in time.

    An answer's first `ONE_EACH` chunks are a chunk per event. After them,
    the consecutive deltas of one kind (answer text, commentary) that flow
    within `WINDOW` seconds are one chunk, equal to the merge of theirs,
    given with the delta that ends the window or before any other event,
    error or the end (see `ONE_EACH`). Only their text is held: a window of
    a fast stream is thousands of deltas, and their chunks would be 1.5 KB
    each. `chunks` and `achunks` are twins.
    """

    def __init__(
        self, reducer: ResponseReducer, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Merge the chunks of `reducer`; `clock` times the arrivals."""
        self._reducer = reducer
        self._clock = clock
        self._count = 0  # chunks given one per event, up to `ONE_EACH`
        self._held: list[str] = []  # the text of deltas to merge, of one kind:
        self._held_kind = "text"  # text or reasoning, see `_kind`
        self._since = 0.0  # when the first held delta arrived
        self._last = -WINDOW  # when the last delta arrived, past `ONE_EACH`

    def chunks(
        self, events: Generator[dict[str, Any], None, None]
    ) -> Generator[ChatGenerationChunk, None, None]:
        """The chunks for `events`, read one by one; closes them."""
        with closing(events):
            try:
                for event in events:
                    yield from self._arrived(event)
            except errors.JockeyError:
                yield from self._release()
                raise
            yield from self._release()

    async def achunks(
        self, events: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        """Async twin of `chunks`."""
        async with aclosing(events):
            try:
                async for event in events:
                    for chunk in self._arrived(event):
                        yield chunk
            except errors.JockeyError:
                for chunk in self._release():
                    yield chunk
                raise
            for chunk in self._release():
                yield chunk

    def _arrived(self, event: Mapping[str, Any]) -> list[ChatGenerationChunk]:
        """The chunks to give now that `event` arrived (held deltas first)."""
        message = self._reducer.feed(event)
        if self._count < ONE_EACH:
            if message is None:
                return []
            self._count += 1
            return [generation(message)]
        now = self._clock()
        kind = None if message is None else _kind(message)
        if message is not None and self._held and kind == self._held_kind:
            self._held.append(_piece(message))
            self._last = now
            return self._release() if now - self._since >= WINDOW else []
        out = self._release()  # any other event ends what is held
        if message is None:
            return out
        if kind is not None:
            flowing, self._last = now - self._last < WINDOW, now
            if flowing:
                self._held, self._held_kind, self._since = [_piece(message)], kind, now
                return out
        return [*out, generation(message)]

    def _release(self) -> list[ChatGenerationChunk]:
        """The held deltas, as one chunk (none if nothing is held)."""
        if not self._held:
            return []
        text = "".join(self._held)
        self._held = []
        return [generation(self._reducer.merged(self._held_kind, text))]
