"""Two graphs for LangGraph Server, both answered by TwelveLabs Jockey.

- `jockey_agent`: a tool-calling planner (langchain's `create_agent`) with
  `JockeyTool`. Offline the planner is `ScriptedPlanner`, which asks the video
  expert each user question as it is; with OPENAI_API_KEY or ANTHROPIC_API_KEY
  set and langchain-openai or langchain-anthropic installed, that model plans.
- `jockey_chat`: `ChatJockey` over `MessagesState`, one answer per user message.

Both read their connection from the environment (TWELVE_LABS_BASE_URL,
TWELVE_LABS_API_KEY, TWELVE_LABS_KNOWLEDGE_STORE_ID), so the same files serve
the local emulator and the live API. There is one ChatJockey per process,
shared by every run and thread: it holds no conversation state (each thread's
Jockey session travels in its messages, which the server checkpoints), and its
key never leaves this process. Served by `langgraph dev` (see langgraph.json
and docs/deploy.md).

A Jockey session id is a bearer token here: every user of the server shares
the key. So a session comes only from the thread's own turns:

- Each message the graphs produce (an answer, a planner step, a tool result) is
  sealed: `response_metadata["jockey_seal"]` holds the thread and an HMAC of
  the thread, the message's type and id, and its session and store, keyed by
  JOCKEY_SESSION_SECRET (else by a key derived from the Jockey API key).
- The graphs take only user messages as input: any other message without a
  valid seal, in a run's input or written with `threads.update_state`, is
  refused with `ForeignMessageError` before it reaches the thread.
- Before Jockey is asked, a message whose seal is not this thread's (copied
  whole from another thread) loses its session: it is history, not a session.
- `configurable.jockey_session_id` in a run's config is ignored unless the
  deployment sets JOCKEY_TRUST_CONFIG_SESSION=1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any
from uuid import uuid4

from langchain.agents import AgentState, create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.config import get_config
from langgraph.graph import START, StateGraph, add_messages
from typing_extensions import Required, TypedDict

from langchain_jockey import ChatJockey, JockeyTool
from langchain_jockey.emulator import ScriptedPlanner

MODELS = (
    ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic:claude-3-5-haiku-latest"),
)
SEAL = "jockey_seal"


def planner() -> BaseChatModel:
    """A real model when a key and its package are there, else the scripted one."""
    for key, spec in MODELS:
        if os.environ.get(key):
            try:
                from langchain.chat_models import init_chat_model  # noqa: PLC0415

                return init_chat_model(spec)
            except ImportError:
                pass
    return ScriptedPlanner(
        calls=[("ask_video_expert", {"question": "{question}"})],
        final="According to the videos: {first}",
    )


def jockey() -> ChatJockey:
    """The process's ChatJockey, from the environment; says what is missing."""
    llm = ChatJockey()
    missing = [
        name
        for name, value in (
            ("TWELVE_LABS_API_KEY", llm.api_key),
            ("TWELVE_LABS_KNOWLEDGE_STORE_ID", llm.knowledge_store_id),
        )
        if not value
    ]
    if missing:
        msg = (
            f"Set {' and '.join(missing)} (and TWELVE_LABS_BASE_URL for anything "
            "but the live API). Offline: start the emulator with "
            "`python -m langchain_jockey.emulator --port 8600` and set them to the "
            "URL, key and store it prints (docs/deploy.md)."
        )
        raise RuntimeError(msg)
    return llm


LLM = jockey()


# -- sessions come only from the thread's own turns ----------------------------


class ForeignMessageError(ValueError):
    """Input that is not a user message: these graphs take only user messages."""


def seal_key(llm: ChatJockey) -> bytes:
    """JOCKEY_SESSION_SECRET, else a key derived from the Jockey API key.

    Every replica has the API key and no client does; a seal reveals nothing of
    it. Set JOCKEY_SESSION_SECRET to rotate the API key without losing threads'
    sessions (a thread whose seals no longer verify starts a new session, with
    its history folded).
    """
    secret = os.environ.get("JOCKEY_SESSION_SECRET")
    if secret:
        return secret.encode()
    key = llm.api_key.get_secret_value().encode() if llm.api_key else b""
    return hmac.new(key, b"langchain-jockey served graph seals v1", "sha256").digest()


SEAL_KEY = seal_key(LLM)


def _thread() -> str:
    """The thread of the run under way ("" outside a thread)."""
    return str((get_config().get("configurable") or {}).get("thread_id") or "")


def _session_holder(message: BaseMessage) -> tuple[str, dict[str, Any]]:
    """Where a message keeps its Jockey session: a tool result's artifact, else
    its response metadata (the field's name, and the dict)."""
    artifact = getattr(message, "artifact", None)
    if isinstance(message, ToolMessage) and isinstance(artifact, dict):
        return "artifact", artifact
    return "response_metadata", message.response_metadata


def _mac(thread: str, message: BaseMessage) -> str:
    _, holder = _session_holder(message)
    claims = [
        thread,
        message.type,
        message.id,
        holder.get("session_id"),
        holder.get("knowledge_store_id"),
    ]
    data = json.dumps(claims, default=str).encode()
    return hmac.new(SEAL_KEY, data, hashlib.sha256).hexdigest()


def seal(message: BaseMessage) -> BaseMessage:
    """A copy of `message` (given an id if it has none) sealed for this thread."""
    if not message.id:
        message = message.model_copy(update={"id": str(uuid4())})
    thread = _thread()
    stamp = {"thread": thread, "mac": _mac(thread, message)}
    meta = {**message.response_metadata, SEAL: stamp}
    return message.model_copy(update={"response_metadata": meta})


def _sealed(message: BaseMessage, thread: str | None = None) -> bool:
    """Whether the graphs made `message` (on `thread`; None: the one it names)."""
    stamp = message.response_metadata.get(SEAL)
    if not isinstance(stamp, dict):
        return False
    named, mac = stamp.get("thread"), stamp.get("mac")
    if not isinstance(named, str) or not isinstance(mac, str):
        return False
    if thread is not None and named != thread:
        return False
    return hmac.compare_digest(mac, _mac(named, message))


def only_user_messages(left: list[AnyMessage], right: Any) -> list[AnyMessage]:
    """`add_messages`, refusing any message but a user's that the graphs did not make.

    It is the reducer of the graphs' `messages`, so it sees every write: a
    run's input, `threads.update_state`, and the nodes' own (sealed) messages.
    """
    new = convert_to_messages(right if isinstance(right, list) else [right])
    foreign = [m for m in new if m.type not in ("human", "remove") and not _sealed(m)]
    if foreign:
        kinds = ", ".join(sorted({m.type for m in foreign}))
        msg = (
            "These graphs take only user messages as input "
            '({"role": "user", "content": "…"}); this input holds '
            f"{len(foreign)} other message(s) ({kinds}) that the graph did not "
            "produce. A Jockey session comes only from the thread's own turns."
        )
        raise ForeignMessageError(msg)
    return add_messages(left, new)  # type: ignore[arg-type, return-value]


def trusted(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as Jockey may see it: a message not sealed on this thread
    keeps its text but not its session."""
    thread = _thread()
    kept: list[BaseMessage] = []
    for message in messages:
        field, holder = _session_holder(message)
        if "session_id" in holder and not _sealed(message, thread):
            cleared = {k: v for k, v in holder.items() if k != "session_id"}
            message = message.model_copy(update={field: cleared})  # noqa: PLW2901
        kept.append(message)
    return kept


class ScreenedAgentState(AgentState):
    """The agent's state, its messages screened by `only_user_messages`."""

    messages: Required[Annotated[list[AnyMessage], only_user_messages]]


class ScreenedChatState(TypedDict):
    """The chat graph's state, its messages screened by `only_user_messages`."""

    messages: Annotated[list[AnyMessage], only_user_messages]


class SealMiddleware(AgentMiddleware):
    """Seals the planner's messages and the tool results; the tools see only
    sessions sealed on this thread."""

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        """The planner's answer, sealed."""
        response = handler(request)
        return replace(response, result=[seal(m) for m in response.result])

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """The planner's answer, sealed."""
        response = await handler(request)
        return replace(response, result=[seal(m) for m in response.result])

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """The tool's result, sealed; it reads only this thread's sessions."""
        result = handler(_screened(request))
        return seal(result) if isinstance(result, ToolMessage) else result

    async def awrap_tool_call(
        self, request: Any, handler: Callable[[Any], Awaitable[Any]]
    ) -> Any:
        """The tool's result, sealed; it reads only this thread's sessions."""
        result = await handler(_screened(request))
        return seal(result) if isinstance(result, ToolMessage) else result


def _screened(request: Any) -> Any:
    """A tool call request whose state holds only this thread's sessions."""
    state = {**request.state, "messages": trusted(request.state["messages"])}
    return request.override(state=state)


TRUST_CONFIG_SESSION = os.environ.get("JOCKEY_TRUST_CONFIG_SESSION") in ("1", "true")

jockey_agent = create_agent(
    planner(),
    tools=[JockeyTool(llm=LLM, trust_config_session=TRUST_CONFIG_SESSION)],
    middleware=[SealMiddleware()],
    state_schema=ScreenedAgentState,
    name="jockey_agent",
)


async def answer(state: ScreenedChatState) -> dict[str, list[BaseMessage]]:
    """Jockey answers the conversation so far (it continues the thread's session)."""
    reply = await LLM.ainvoke(trusted(state["messages"]))
    return {"messages": [seal(reply)]}


jockey_chat = (
    StateGraph(ScreenedChatState)
    .add_node("jockey", answer)
    .add_edge(START, "jockey")
    .compile(name="jockey_chat")
)
