"""Conversations and their answers as page events, over `ChatJockey.astream`. No HTTP.

A conversation is an opaque id the page holds and the messages the server keeps:
the questions and Jockey's answers, each answer carrying its session in
`response_metadata`, so `ChatJockey` continues the session (and, when Jockey
lost it, asks again in a new one with the history folded). Session ids never
leave the server.

`answer_events` turns one answer's chunks into the events of docs/web.md:
`progress` (commentary and tool steps), `token` (answer text), `citations`
(the answer cut at its `[N]` markers, and one card per cited moment), `done`,
or `error` with a message that says what happened and what to do.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
)

from langchain_jockey._output import REASONING_KEY, STEPS_KEY, time_range
from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import (
    JockeyAuthenticationError,
    JockeyConnectionError,
    JockeyError,
    JockeyInputError,
    JockeyNotFoundError,
    JockeyPermissionDeniedError,
    JockeyRateLimitError,
    JockeyTimeoutError,
)
from langchain_jockey.web._settings import media_url

__all__ = ["Conversation", "Conversations", "answer_events", "failure_message"]

_log = logging.getLogger("langchain_jockey.web")
Event = tuple[str, dict[str, Any]]
_STEP_TEXT = 300  # characters of a tool step shown in the page's progress list
_MESSAGE = 600  # characters of an error's own message shown in an alert
_KEPT_METADATA = ("session_id", "knowledge_store_id", "model_provider")


@dataclass
class Conversation:
    """One conversation: its id (the page's handle) and its messages."""

    conversation_id: str
    messages: list[BaseMessage] = field(default_factory=list)
    busy: bool = False


class Conversations:
    """The conversations of one server, the least recently used forgotten first."""

    def __init__(self, limit: int) -> None:
        """Keep at most `limit` conversations."""
        self._limit = limit
        self._kept: OrderedDict[str, Conversation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def new(self) -> Conversation:
        """Start a conversation, forgetting the oldest past the limit."""
        conversation = Conversation(secrets.token_urlsafe(18))
        self._kept[conversation.conversation_id] = conversation
        while len(self._kept) > self._limit:
            self._kept.popitem(last=False)
        return conversation

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation, now the most recently used; `None` if unknown."""
        conversation = self._kept.get(conversation_id)
        if conversation is not None:
            self._kept.move_to_end(conversation_id)
        return conversation

    def drop(self, conversation_id: str) -> None:
        """Forget a conversation (the page's "New chat")."""
        self._kept.pop(conversation_id, None)


def failure_message(err: BaseException) -> str:
    """What happened and what to do, for a person; never a traceback."""
    if not isinstance(err, JockeyError):
        return (
            f"The page's server failed ({type(err).__name__}). Its terminal has "
            "the details; ask again, or restart it."
        )
    said = str(err).strip()
    if len(said) > _MESSAGE:
        said = said[:_MESSAGE] + "…"
    advice: list[tuple[type[JockeyError], str]] = [
        (
            JockeyAuthenticationError,
            (
                "Jockey refused the API key: check TWELVE_LABS_API_KEY, then "
                "restart the page's server."
            ),
        ),
        (
            JockeyPermissionDeniedError,
            "The API key may not use this: check the key and the knowledge store.",
        ),
        (
            JockeyNotFoundError,
            "Jockey did not find it: check the knowledge store, or start a New chat.",
        ),
        (JockeyRateLimitError, "Jockey is busy or over a quota: wait, then ask again."),
        (JockeyTimeoutError, "Jockey took too long: ask again."),
        (JockeyConnectionError, "The connection to Jockey broke: ask again."),
        (JockeyInputError, "Jockey cannot take this question: change it."),
    ]
    for kind, what in advice:
        if isinstance(err, kind):
            return f"{what} ({said})"
    return f"Jockey failed: ask again in a moment. ({said})"


def _steps(value: Any) -> list[Event]:
    events: list[Event] = []
    for step in value if isinstance(value, list) else ():
        if not isinstance(step, dict):
            continue
        if step.get("type") == "function_call":
            text = f"{step.get('name') or 'tool'} {step.get('arguments') or ''}"
            events.append(("progress", {"kind": "tool_call", "text": text}))
        elif step.get("type") == "function_call_output":
            text = str(step.get("output") or "")
            events.append(("progress", {"kind": "tool_result", "text": text}))
    for _, data in events:
        if len(data["text"]) > _STEP_TEXT:
            data["text"] = data["text"][:_STEP_TEXT] + "…"
    return events


def _citations(message: AIMessage) -> dict[str, Any]:
    """The answer cut at its markers, and one card per cited moment."""
    text = message.text
    block = next((b for b in message.content_blocks if b["type"] == "text"), None)
    notes = block.get("annotations", []) if block else []
    segments: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    at = 0
    for note in notes:
        start, end = note.get("start_index"), note.get("end_index")
        if note["type"] != "citation" or not isinstance(start, int):
            continue
        if not isinstance(end, int) or not at <= start < end <= len(text):
            continue
        x = note.get("extras") or {}
        key = (x.get("item_id"), x.get("start_sec"), x.get("end_sec"), x.get("title"))
        if key not in seen:
            seen[key] = len(cards)
            cards.append(
                {
                    "title": str(x.get("title") or note.get("title") or "Video"),
                    "start_sec": x.get("start_sec"),
                    "end_sec": x.get("end_sec"),
                    "range": time_range(x.get("start_sec"), x.get("end_sec")),
                    "thumbnail_url": media_url(x.get("thumbnail_url")),
                    "hls_url": media_url(x.get("hls_url")),
                }
            )
        if start > at:
            segments.append({"text": text[at:start]})
        segments.append({"text": text[start:end], "cite": seen[key]})
        at = end
    if at < len(text):
        segments.append({"text": text[at:]})
    return {"segments": segments, "citations": cards}


async def answer_events(
    llm: ChatJockey, conversation: Conversation, question: str
) -> AsyncIterator[Event]:
    """One answer as page events; the conversation keeps it once complete.

    Stopping the iteration (the page's Stop, a closed tab) closes the Jockey
    stream: `astream` is closed with it.
    """
    messages = [*conversation.messages, HumanMessage(question)]
    texts: list[str] = []
    metadata: dict[str, Any] = {}
    started = time.monotonic()
    try:
        stream = cast("AsyncGenerator[BaseMessageChunk, None]", llm.astream(messages))
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                reasoning = chunk.additional_kwargs.get(REASONING_KEY)
                if isinstance(reasoning, str) and reasoning:
                    yield "progress", {"kind": "commentary", "text": reasoning}
                for step in _steps(chunk.additional_kwargs.get(STEPS_KEY)):
                    yield step
                if chunk.text:
                    texts.append(chunk.text)
                    yield "token", {"text": chunk.text}
                metadata.update(chunk.response_metadata)
    except JockeyError as err:
        yield "error", {"message": failure_message(err), "error": type(err).__name__}
        return
    except Exception as err:  # noqa: BLE001 - a bug of ours: a message, not a trace
        _log.exception("the answer failed")
        yield "error", {"message": failure_message(err), "error": "ServerError"}
        return
    kept = {k: metadata[k] for k in _KEPT_METADATA if k in metadata}
    answer = AIMessage("".join(texts), response_metadata={**metadata})
    yield "citations", _citations(answer)
    # Kept for the next turn: the text and the session, not the steps.
    conversation.messages += [
        HumanMessage(question),
        AIMessage(answer.text, response_metadata=kept),
    ]
    yield (
        "done",
        {
            "status": str(metadata.get("status") or "completed"),
            "seconds": round(time.monotonic() - started, 3),
        },
    )
