"""Jockey events and response objects -> LangChain messages. No I/O.

One reducer, `ResponseReducer.feed(event) -> AIMessageChunk | None`, serves the
sync and async streams alike, and `invoke`, which aggregates the stream.

Mapping (DESIGN.md "How events become chunks", PROTOCOL.md §8):

- `response.created` (and other snapshot events): the `resp_…` id, session and
  store become known; every chunk carries the id.
- `response.output_item.added`: remembers which items are not the final answer
  (commentary, Jockey's tool steps); a message without `phase` is the answer.
- `response.output_text.delta` of an answer item: a chunk with `str` content.
  Of a commentary item (with `include=["intermediate_outputs"]`): a chunk with
  empty content and `additional_kwargs["reasoning_content"]`, so progress shows
  while Jockey works and never enters `.text`.
- `response.output_item.done` of a `function_call` / `function_call_output`:
  a chunk with `additional_kwargs["jockey_steps"] = [step]`.
- `response.completed` / `response.incomplete`: the one terminal chunk,
  `chunk_position="last"`, with usage (total computed: Jockey sends only input
  and output) and the string metadata. Core *concatenates* equal strings when
  merging chunks, so strings appear on this chunk only; `model_provider` is on
  every chunk (merging leaves it alone).
- `response.failed`, `error`: raise the matching `JockeyError`.
- `keepalive`, `content_part.*`, `output_text.done`, anything unknown: nothing
  (unknown types must be ignored, PROTOCOL.md §8.1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel

from langchain_jockey import errors
from langchain_jockey._output import (
    REASONING_KEY,
    STEPS_KEY,
    Output,
    is_answer,
    read_output,
    step_of,
)

__all__ = ["PROVIDER", "ResponseReducer", "generation"]

logger = logging.getLogger("langchain_jockey")

PROVIDER = "twelvelabs"
_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_SNAPSHOT = frozenset({"response.created", "response.in_progress", "response.queued"})
_Model = TypeVar("_Model", bound=BaseModel)


# The hot path. Validating an AIMessageChunk and its ChatGenerationChunk costs
# about 5 us per delta, a third of the client's own per-delta cost (benchmarks/).
# A clone of a validated template, built the way pydantic's `__copy__` builds a
# shallow copy but in one step and with every per-chunk field replaced by a
# fresh value, is an equal object in about 2 us;
# tests/unit/test_events.py pins the equality and that no mutable state is shared.
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


def _text_chunk(template: AIMessageChunk, delta: str) -> AIMessageChunk:
    """`AIMessageChunk(content=delta, id=…, response_metadata=…)`, fast."""
    return _clone(
        template,
        {
            "content": delta,
            "response_metadata": {"model_provider": PROVIDER},
            "additional_kwargs": {},
            "tool_calls": [],
            "invalid_tool_calls": [],
            "tool_call_chunks": [],
        },
    )


def generation(message: AIMessageChunk) -> ChatGenerationChunk:
    """`ChatGenerationChunk(message=message)`, without validating `message` again."""
    # `message.text` is a TextAccessor, a str subclass: one more object for the
    # cyclic GC to scan per chunk, kept until the stream ends. The field is a str.
    return _clone(_GENERATION, {"message": message, "text": str(message.text)})


def _usage(snapshot: Mapping[str, Any]) -> UsageMetadata | None:
    usage = snapshot.get("usage")
    if not isinstance(usage, dict):
        return None
    input_tokens = usage.get("input_tokens")
    output_tokens = usage.get("output_tokens")
    input_tokens = input_tokens if isinstance(input_tokens, int) else 0
    output_tokens = output_tokens if isinstance(output_tokens, int) else 0
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def _metadata(
    snapshot: Mapping[str, Any], model_name: str, output: Output
) -> dict[str, Any]:
    """The response metadata of a finished response (one chunk carries it)."""
    return {
        "model_provider": PROVIDER,
        "model_name": model_name,
        "id": snapshot.get("id"),
        "status": snapshot.get("status"),
        "incomplete_details": snapshot.get("incomplete_details"),
        "session_id": snapshot.get("session_id"),
        "knowledge_store_id": snapshot.get("knowledge_store_id"),
        "created_at": snapshot.get("created_at"),
        "annotations": output.annotations,
    }


class ResponseReducer:
    """The state of one streamed response, fed one event dict at a time.

    Attributes:
        response_id: The `resp_…` id, from `response.created`.
        session_id: The session, known from the first event.
        finished: Whether a terminal event arrived.
    """

    __slots__ = (
        "_base_meta",
        "_clock",
        "_commentary",
        "_idle_limit",
        "_last_content",
        "_model_name",
        "_other_items",
        "_parts",
        "_reasoned",
        "_template",
        "finished",
        "knowledge_store_id",
        "response_id",
        "session_id",
    )

    def __init__(
        self,
        model_name: str,
        *,
        idle_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start reading one response.

        Args:
            model_name: Reported as `response_metadata["model_name"]`.
            idle_limit: Seconds of keepalives-only after which the stream is
                abandoned with `JockeyTimeoutError` (`None`: no limit). Checked
                when events arrive; silence is the read timeout's job.
            clock: Monotonic seconds (injectable for tests).
        """
        self._model_name = model_name
        self._idle_limit = idle_limit
        self._clock = clock
        self._last_content = clock()
        self._base_meta = {"model_provider": PROVIDER}
        self._other_items: set[Any] = set()  # ids of items that are not the answer
        self._commentary: dict[Any, bool] = {}  # commentary item id -> has spoken
        self._reasoned = False  # some commentary was already streamed
        self._parts: list[str] = []
        self._template: AIMessageChunk | None = None
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
            JockeyError: for `response.failed`, `error` and failed snapshots.
        """
        if self.finished:  # the terminal event ends the answer
            logger.debug("Jockey event after the terminal event ignored: %.80r", event)
            return None
        kind = event.get("type")
        if kind == "keepalive":
            if (
                self._idle_limit is not None
                and self._clock() - self._last_content > self._idle_limit
            ):
                raise self.progress(errors.content_idle(self._idle_limit))
            return None
        if self._idle_limit is not None:
            self._last_content = self._clock()
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            if not isinstance(delta, str) or not delta:
                return None
            item_id = event.get("item_id")
            if item_id in self._commentary:
                return self._reasoning(item_id, delta)
            if item_id in self._other_items:
                return None
            self._parts.append(delta)
            if self._template is None:
                self._template = AIMessageChunk(
                    content="", id=self.response_id, response_metadata=self._base_meta
                )
            return _text_chunk(self._template, delta)
        if kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict) and not is_answer(item):
                self._other_items.add(item.get("id"))
                if item.get("type", "message") == "message":
                    self._commentary[item.get("id")] = False
            return None
        if kind == "response.output_item.done":
            item = event.get("item")
            step = step_of(item) if isinstance(item, dict) else None
            if step is None:
                return None
            return self._extra({STEPS_KEY: [step]})
        if kind in _SNAPSHOT:
            self._remember(event.get("response"))
            return None
        if kind in _TERMINAL:
            return self._finish(event)
        if kind in ("response.failed", "error"):
            self._remember(event.get("response"))
            raise self.progress(errors.error_from_event(dict(event)))
        return None

    def _extra(self, additional_kwargs: dict[str, Any]) -> AIMessageChunk:
        return AIMessageChunk(
            content="",
            id=self.response_id,
            additional_kwargs=additional_kwargs,
            response_metadata=self._base_meta,
        )

    def _reasoning(self, item_id: Any, delta: str) -> AIMessageChunk:
        """Commentary streams as reasoning; separate messages by a blank line."""
        if not self._commentary[item_id]:
            self._commentary[item_id] = True
            if self._reasoned:
                delta = "\n\n" + delta
            self._reasoned = True
        return self._extra({REASONING_KEY: delta})

    def _remember(self, snapshot: Any) -> None:
        if not isinstance(snapshot, dict):
            return
        self.response_id = snapshot.get("id") or self.response_id
        self.session_id = snapshot.get("session_id") or self.session_id
        self.knowledge_store_id = (
            snapshot.get("knowledge_store_id") or self.knowledge_store_id
        )

    def _finish(self, event: Mapping[str, Any]) -> AIMessageChunk:
        snapshot = event.get("response")
        snapshot = dict(snapshot) if isinstance(snapshot, dict) else {}
        self._remember(snapshot)
        if snapshot.get("status") == "failed":
            raise self.progress(
                errors.error_from_event(
                    {"type": "response.failed", "response": snapshot}
                )
            )
        self.finished = True
        snapshot.setdefault("id", self.response_id)
        snapshot.setdefault("session_id", self.session_id)
        snapshot.setdefault("knowledge_store_id", self.knowledge_store_id)
        if not snapshot.get("status"):
            snapshot["status"] = (
                "incomplete"
                if event.get("type") == "response.incomplete"
                else "completed"
            )
        output = read_output(snapshot.get("output"))
        # Never lose an answer: if no delta came, take the text from the snapshot.
        content = "" if self._parts else output.text
        if content:
            self._parts.append(content)
        return AIMessageChunk(
            content=content,
            id=self.response_id,
            chunk_position="last",
            usage_metadata=_usage(snapshot),
            response_metadata=_metadata(snapshot, self._model_name, output),
        )

    def progress(self, err: errors.JockeyError) -> errors.JockeyError:
        """Attach the text and session received so far to `err`."""
        return errors.with_progress(
            err,
            partial_text=self.text,
            session_id=self.session_id,
            response_id=self.response_id,
        )

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
            if not self.finished:
                raise self.progress(err) from err.__cause__
            # The answer is whole: only the `[DONE]` after it was lost.
            logger.debug("Jockey stream failed after its terminal event: %s", err)
            return
        self.end()

    def end(self) -> None:
        """The body ended. Raise if it ended before a terminal event."""
        if not self.finished:
            raise self.progress(
                errors.stream_interrupted(
                    "the Jockey stream ended before the response was complete "
                    "(no response.completed event); the answer may be cut short. "
                    "Jockey streams cannot be resumed: send a new request with the "
                    "same session_id to continue."
                )
            )
