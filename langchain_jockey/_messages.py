"""LangChain messages and call options -> a Jockey request body. No I/O.

Jockey takes one kind of input item: `{"type": "message", "role": "user",
"content": <1-10,000 characters>}` (docs/protocol.md). Conversation history lives
on the server, in a session. The README ("How messages become a Jockey
request") sets out the mapping implemented here:

1. System messages become `instructions` (a call's `instructions=` wins over
   them; they win over the model's `instructions` field).
2. The last `AIMessage` that carries `response_metadata["session_id"]` (every
   message ChatJockey returns does) anchors the conversation: its session is
   continued, and only the turns after it are sent. An explicit `session_id`
   wins over the anchor's. When Jockey answers that the session is invalid or
   expired, `Turn.restart` asks again once, in a new session, with every earlier
   turn folded (3.) and the conversation's `selections` re-sent; `new_session=True`
   does that on purpose.
3. Turns the server has not seen that include AI messages (history from
   elsewhere) are folded into one labelled transcript before the new message.
   What does not fit in 10,000 characters is left out, oldest first, with a
   marker in the transcript and a warning that say so.
4. Consecutive human messages are joined into one input item.
5. Anything Jockey cannot take (images, files, tool calls, `ToolMessage`, a
   blank question) is a `JockeyInputError` (a `ValueError`) that names it,
   raised before any request is made.
6. The body is deterministic: same call, same bytes (cassettes match on it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_jockey._output import valid_id
from langchain_jockey._structured import text_format
from langchain_jockey.errors import JockeyError, JockeyInputError, warn

__all__ = [
    "IGNORED_OPTIONS",
    "MAX_CONTENT_CHARS",
    "OPTION_NAMES",
    "RequestOptions",
    "Turn",
    "build_body",
    "call_options",
    "check_selections",
    "conversation_selections",
    "session_lost",
]

MAX_CONTENT_CHARS = 10_000
_SELECTION_PREFIXES = {"item": "ksi_", "collection": "ksic_"}
_TRANSCRIPT_HEAD = "Conversation so far:"
_TRANSCRIPT_NEW = "New message:"
# What Jockey says of a session it no longer has (docs/protocol.md: "Invalid
# session", status undocumented). Store mismatches and missing stores never match.
_LOST_SESSION = re.compile(
    r"\binvalid[ _]session\b"
    r"|\bsession\b[^.]*\b(?:expired|does not exist|not found)\b"
    r"|\bsession_(?:expired|not_found|invalid)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RequestOptions:
    """Everything a request needs besides the messages, already merged.

    The model's fields give the defaults and the call's keyword arguments
    override them (see `call_options`).
    """

    model: str | None
    knowledge_store_id: str | None
    instructions: str | None = None
    """A call's `instructions=`: wins over system messages."""
    default_instructions: str | None = None
    """The model's `instructions` field: used when nothing else gives any."""
    session_id: str | None = None
    include: Sequence[str] | None = None
    selections: Sequence[Mapping[str, Any]] | None = None
    text: Mapping[str, Any] | None = None
    extra_body: Mapping[str, Any] | None = None
    new_session: bool = False
    """Start a new session whatever the history holds (earlier turns folded)."""


OPTION_NAMES = (
    "model",
    "knowledge_store_id",
    "instructions",
    "session_id",
    "include",
    "selections",
    "text",
    "extra_body",
)
"""The call options a request takes (keyword arguments of `invoke` and friends)."""


# LangChain passes these; Jockey has no such parameters (docs/protocol.md).
IGNORED_OPTIONS = ("stop", "temperature", "max_tokens")
# Core passes `stream`; LangChain's agents pass `response_format` (the OpenAI
# form), which becomes Jockey's `text`; `stream_usage` is ChatJockey's own (usage
# on the last streamed chunk), and so is `new_session` (see `RequestOptions`).
_ALSO_TAKEN = ("stream", "response_format", "stream_usage", "new_session")
# Options LangChain users reach for that Jockey does not document, with why.
_UNDOCUMENTED = {
    "max_output_tokens": (
        "Jockey documents no output limit: it is not a request parameter in the "
        "API reference or the official SDK (docs/protocol.md). extra_body="
        "{'max_output_tokens': …} sends it anyway, at your own risk."
    ),
}


def call_options(
    model: Any, stop: list[str] | None, kwargs: Mapping[str, Any]
) -> RequestOptions:
    """The options of one call: its keyword arguments over `model`'s fields.

    An unknown option raises `JockeyInputError`; one of `IGNORED_OPTIONS`
    that is set warns (once per caller, by Python's warning registry).
    """
    unknown = sorted(set(kwargs) - {*OPTION_NAMES, *IGNORED_OPTIONS, *_ALSO_TAKEN})
    if unknown:
        why = " ".join(_UNDOCUMENTED[n] for n in unknown if n in _UNDOCUMENTED)
        msg = (
            f"ChatJockey got unknown call option(s) {unknown}; it takes "
            f"{[*OPTION_NAMES, 'new_session', 'stream_usage']} (and ignores "
            f"{list(IGNORED_OPTIONS)}). {why}"
        )
        raise JockeyInputError(msg.strip())
    ignored = {"stop": model.stop if stop is None else stop}
    for name in IGNORED_OPTIONS:
        # Any value that is set warns, 0, [] and False included.
        if ignored.get(name, kwargs.get(name, getattr(model, name))) is not None:
            warn(
                f"Jockey has no {name!r} parameter: ChatJockey accepts it for "
                "LangChain compatibility and does not send it."
            )
    if kwargs.get("response_format") is not None:
        kwargs = {"text": text_format(kwargs["response_format"]), **kwargs}
    # A call's option wins over the field; the `instructions` field is only
    # the default, below system messages (see `RequestOptions`).
    fields = dict(model.request_fields)
    default_instructions = fields.pop("instructions")
    options = RequestOptions(
        **{**fields, **{n: kwargs[n] for n in OPTION_NAMES if n in kwargs}},
        default_instructions=default_instructions,
    )
    new_session = kwargs.get("new_session", False)
    if new_session is not False:
        if new_session is not True:
            msg = f"new_session must be True or False, not {new_session!r}."
            raise JockeyInputError(msg)
        if options.session_id is not None:
            msg = (
                "new_session=True starts a new session, so it cannot go with "
                f"session_id={str(options.session_id)[:40]!r}: pass one or the other."
            )
            raise JockeyInputError(msg)
        options = replace(options, new_session=True)
    return options


_CALL_BLOCKS = ("reasoning", "thinking", "tool_use", "tool_call", "function_call")


def _content_text(message: BaseMessage, *, history: bool = False) -> str:
    """The text of a message; any non-text block is an error that names it.

    In `history`, reasoning and tool-call blocks are skipped (the calls are
    written from `tool_calls`), and other non-text blocks are named in brackets.
    """
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif history and kind in _CALL_BLOCKS:
            continue
        elif history:
            parts.append(f"[{kind}]")
        else:
            msg = (
                f"Jockey accepts text only, but a {message.type} message holds a "
                f"{kind!r} content block. Describe images, audio and files in text, "
                "or add them to the knowledge store and refer to them with "
                "`selections`."
            )
            raise JockeyInputError(msg)
    return "".join(parts)


def _reject_unsupported(message: BaseMessage) -> None:
    if isinstance(message, (HumanMessage, SystemMessage, AIMessage, ToolMessage)):
        return
    roles = ("user", "human", "system", "assistant", "ai", "tool")
    if isinstance(message, ChatMessage) and message.role in roles:
        return
    msg = (
        f"Jockey cannot take a {type(message).__name__} (type {message.type!r}): it "
        "accepts human, AI, tool and system messages."
    )
    raise JockeyInputError(msg)


def _turn(message: BaseMessage) -> str:
    """One turn of history the server has not seen, as a transcript line."""
    role = _role(message)
    if role == "tool":
        name = getattr(message, "name", None) or "a tool"
        return f"Tool result ({name}): {_content_text(message, history=True)}"
    if role != "ai":
        return f"User: {_content_text(message, history=True)}"
    lines = [f"Assistant: {_content_text(message, history=True)}"]
    for call in getattr(message, "tool_calls", None) or ():
        args = json.dumps(call.get("args"), ensure_ascii=False, sort_keys=True)
        lines.append(f"Assistant called {call.get('name')} with {args}")
    return "\n".join(line for line in lines if not line.endswith(": "))


def _role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return {"user": "human", "assistant": "ai"}.get(message.role, message.role)
    # A chunk (an aggregated stream: type "AIMessageChunk") has its message's role.
    return message.type.removesuffix("MessageChunk").lower() or message.type


def _session_anchor(
    messages: Sequence[BaseMessage], knowledge_store_id: str | None
) -> tuple[int, str | None]:
    """Index and session of the last Jockey answer for this store (-1, None if none).

    An answer from another knowledge store cannot anchor: Jockey rejects a
    session used with a different store (docs/protocol.md), so such a history is
    treated as history from elsewhere and folded.
    """
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if not isinstance(message, AIMessage):
            continue
        meta = message.response_metadata
        session = valid_id(meta.get("session_id"))
        if session is not None:
            store = meta.get("knowledge_store_id")
            if store is None or store == knowledge_store_id:
                return index, session
    return -1, None


def conversation_selections(
    messages: Sequence[BaseMessage], options: RequestOptions
) -> list[dict[str, Any]]:
    """The selections a session of this conversation holds, each once.

    The request's own come first (its `{{sel:N}}` tokens index them), then
    those that earlier Jockey answers for this store recorded
    (`response_metadata["selections"]`; Jockey keeps a session's selections
    and later turns add to them). A recorded entry that is not a valid
    selection is skipped: the history may come from anywhere.
    """
    found = check_selections(options.selections or ())
    for message in messages:
        meta = message.response_metadata
        recorded = meta.get("selections") if isinstance(message, AIMessage) else None
        if not isinstance(recorded, list) or meta.get("knowledge_store_id") not in (
            None,
            options.knowledge_store_id,
        ):
            continue
        for entry in recorded:
            try:
                (selection,) = check_selections([entry])
            except JockeyInputError:
                continue
            if selection not in found:
                found.append(selection)
    return found


def session_lost(err: JockeyError) -> bool:
    """Whether `err` is Jockey saying the session sent is invalid or expired.

    Only a 400 or 404 (the status is undocumented) whose message or code says
    so, and names no knowledge store: a session/store mismatch, a missing store
    and every other error are not a lost session.
    """
    if err.status_code not in (400, 404):
        return False
    said = f"{err.code or ''} {err.message}"
    lowered = said.lower()
    if "knowledge store" in lowered or "knowledge_store" in lowered:
        return False
    return _LOST_SESSION.search(said) is not None


class Turn:
    """One call's request body, and the one restart it may make.

    `restart` is the only decision: the sync and async streams both ask it
    when a request fails, and send `body` again when it says so.
    """

    def __init__(
        self, messages: Sequence[BaseMessage], options: RequestOptions
    ) -> None:
        """Validate and build the body; raises `JockeyInputError` on bad input."""
        self._messages = messages
        self._options = options
        self.body = build_body(messages, options)
        self.restarted = False
        self._started = False
        turns = [m for m in messages if _role(m) != "system"]
        selections = conversation_selections(turns, options)
        self._meta: dict[str, Any] = {"selections": selections} if selections else {}

    def mark(self, message: BaseMessage) -> None:
        """Note a chunk on its way out; the answer's last one gets the turn's metadata.

        That is `selections` (what the session holds, for a later restart) and
        `session_restarted`, on one chunk, so merged chunks keep them once.
        """
        self._started = True
        if self._meta and getattr(message, "chunk_position", None) == "last":
            message.response_metadata = {**message.response_metadata, **self._meta}

    def restart(self, err: JockeyError) -> bool:
        """Whether to ask again in a new session; if so, `body` is its request.

        Only when Jockey said the session sent is invalid or expired, before
        any chunk went out, and once per call. It warns.
        """
        if (
            self._started
            or self.restarted
            or "session_id" not in self.body
            or not session_lost(err)
        ):
            return False
        options = replace(self._options, session_id=None, new_session=True)
        self.body = build_body(self._messages, options)
        self.restarted = True
        self._meta["session_restarted"] = True
        warn(
            "Jockey no longer has this conversation's session (it is invalid or "
            "has expired): the question was asked again in a new session, with "
            "the earlier turns of the conversation folded into it. The answer "
            "has response_metadata['session_restarted'] == True."
        )
        return True


def _fold(turns: Sequence[BaseMessage]) -> str:
    """Turns the server has not seen -> the content of one user message.

    History beyond what fits in Jockey's 10,000 characters is left out from the
    oldest end, whole turns at a time, with a marker in the transcript and a
    warning saying how much: never in silence, and never the question itself.
    """
    last = max((i for i, m in enumerate(turns) if _role(m) != "human"), default=-1)
    new = [_content_text(m) for m in turns[last + 1 :]]
    if not new:
        msg = (
            "The last message must be a human message: Jockey answers a user turn, "
            "and the input ends with an AI or tool message."
        )
        raise JockeyInputError(msg)
    new_text = "\n\n".join(new)
    if not new_text.strip():
        msg = "Jockey needs a non-empty question: the human message has no text."
        raise JockeyInputError(msg)
    if last < 0 or len(new_text) >= MAX_CONTENT_CHARS:
        return new_text  # no history, or no room for any (build_body says so)
    lines = [line for line in map(_turn, turns[: last + 1]) if line]
    tail = f"\n\n{_TRANSCRIPT_NEW}\n{new_text}"
    budget = MAX_CONTENT_CHARS - len(_TRANSCRIPT_HEAD) - len(tail)

    def kept_lines(kept: int) -> list[str]:
        left_out = len(lines) - kept
        return [_left_out(left_out)] * (left_out > 0) + lines[left_out:]

    kept = len(lines)
    while kept and sum(len(line) + 1 for line in kept_lines(kept)) > budget:
        kept -= 1
    if kept < len(lines):
        dropped = lines[: len(lines) - kept]
        warn(
            f"Jockey takes at most {MAX_CONTENT_CHARS:,} characters per message: "
            f"the {len(dropped)} oldest turn(s) of the conversation "
            f"({sum(map(len, dropped)):,} characters) were left out of the "
            "transcript sent with this question."
        )
    shown = kept_lines(kept)
    if sum(len(line) + 1 for line in shown) > budget:
        return new_text  # not even the marker fits beside the question
    return "\n".join([_TRANSCRIPT_HEAD, *shown]) + tail


def _left_out(count: int) -> str:
    """The transcript's marker for the `count` oldest turns that did not fit."""
    return (
        f"[{count} earlier turn(s) left out: the conversation is longer than "
        f"Jockey's {MAX_CONTENT_CHARS:,}-character input]"
    )


def check_selections(selections: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate `selections` (`kind` item|collection, matching id prefix).

    Raises:
        JockeyInputError: naming the bad entry.
    """
    checked: list[dict[str, Any]] = []
    for index, selection in enumerate(selections):
        if not isinstance(selection, Mapping):
            msg = f"selections[{index}] must be a dict with 'kind' and 'id'."
            raise JockeyInputError(msg)
        kind, ident = selection.get("kind"), selection.get("id")
        prefix = _SELECTION_PREFIXES.get(kind) if isinstance(kind, str) else None
        if prefix is None:
            msg = (
                f"selections[{index}]['kind'] must be 'item' or 'collection', "
                f"not {kind!r}."
            )
            raise JockeyInputError(msg)
        if not isinstance(ident, str) or not ident.startswith(prefix):
            msg = (
                f"selections[{index}] is a {kind!r}, so its 'id' must start with "
                f"{prefix!r}; got {ident!r}."
            )
            raise JockeyInputError(msg)
        checked.append({"kind": kind, "id": ident})
    return checked


def _text(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        msg = (
            "text must be a dict such as {'format': {'type': 'json_schema', …}} "
            f"(with_structured_output builds it), not {value!r}."
        )
        raise JockeyInputError(msg)
    return dict(value)


def _conversation(
    turns: Sequence[BaseMessage], options: RequestOptions
) -> tuple[str | None, str, list[dict[str, Any]]]:
    """The session to continue, the message's content and the selections to send."""
    anchor, anchor_session = _session_anchor(turns, options.knowledge_store_id)
    session_id = options.session_id or anchor_session
    selections = check_selections(options.selections or ())
    if options.new_session:  # every earlier turn and selection goes with it
        anchor, session_id = -1, None
        selections = conversation_selections(turns, options)
    content = _fold(turns[anchor + 1 :])
    if len(content) > MAX_CONTENT_CHARS:
        msg = (
            f"Jockey takes at most {MAX_CONTENT_CHARS:,} characters per message; "
            f"this one has {len(content):,}. Shorten it, or continue a session "
            "instead of resending history."
        )
        raise JockeyInputError(msg)
    return session_id, content, selections


def build_body(
    messages: Sequence[BaseMessage], options: RequestOptions
) -> dict[str, Any]:
    """The JSON body of `POST /responses` for `messages`, validated.

    Raises:
        JockeyInputError: on input Jockey cannot take, naming what is wrong.
    """
    if not options.knowledge_store_id:
        msg = (
            "ChatJockey needs a knowledge store: pass knowledge_store_id='ks_…' "
            "or set TWELVE_LABS_KNOWLEDGE_STORE_ID."
        )
        raise JockeyInputError(msg)
    if not messages:
        msg = "ChatJockey needs at least one message; the input is empty."
        raise JockeyInputError(msg)
    for message in messages:
        _reject_unsupported(message)

    system = [m for m in messages if _role(m) == "system"]
    turns = [m for m in messages if _role(m) != "system"]
    if not turns:
        msg = (
            "ChatJockey got no question: the input holds only system messages, "
            "which become Jockey's instructions. Add a human message to answer."
        )
        raise JockeyInputError(msg)
    system_text = "\n\n".join(t for t in (_content_text(m) for m in system) if t)
    if options.session_id is not None and valid_id(options.session_id) is None:
        msg = (
            "session_id must be a Jockey session id (a string of 1-256 printable "
            f"characters), not {str(options.session_id)[:40]!r}."
        )
        raise JockeyInputError(msg)
    session_id, content, selections = _conversation(turns, options)

    body: dict[str, Any] = {}
    if options.model:
        body["model"] = options.model
    body["knowledge_store_id"] = options.knowledge_store_id
    body["input"] = [{"type": "message", "role": "user", "content": content}]
    body["stream"] = True  # invoke aggregates the stream (keepalives, one path)
    if session_id:
        body["session_id"] = session_id
    instructions = options.instructions or system_text or options.default_instructions
    if instructions:
        body["instructions"] = instructions
    if options.include:
        if isinstance(options.include, str):
            msg = "include must be a list such as ['intermediate_outputs']."
            raise JockeyInputError(msg)
        body["include"] = list(options.include)
    if selections:
        body["selections"] = selections
    if options.text:
        body["text"] = _text(options.text)
    if options.extra_body:
        clash = sorted(set(options.extra_body) & set(body))
        if clash:
            msg = f"extra_body may not set {clash}: use the ChatJockey options."
            raise JockeyInputError(msg)
        body.update(options.extra_body)
    return body
