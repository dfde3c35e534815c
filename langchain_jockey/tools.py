"""`JockeyTool`: Jockey as the video expert a tool-calling agent asks.

Jockey runs its own tools on the server, so in an agent it is not the planner
but a tool. This one is built on `ChatJockey` (same fields, HTTP, retries,
timeouts and errors) and keeps what makes Jockey useful there:

- its answer streams as a nested chat-model run, so LangGraph's
  `stream_mode="messages"` and `astream_events` show Jockey's tokens live,
  tagged `"jockey"` and with `ls_provider == "twelvelabs"`;
- its intermediate steps go to LangGraph's `custom` stream (outside a graph,
  to callbacks as the custom event `"jockey_progress"`);
- its cited moments come back in the content, compactly, and whole in the
  artifact;
- its server-side session continues across calls in one conversation, derived
  from the conversation (the artifact of the last Jockey tool result), never
  from state held in the tool. When Jockey no longer has that session, the
  question is asked again in a new one with the conversation's earlier Jockey
  questions and answers folded in (ChatJockey's recovery), and the artifact
  says `session_restarted`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.callbacks.manager import (
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, InjectedToolArg, ToolException
from pydantic import BaseModel, ConfigDict, Field

from langchain_jockey._client import construct
from langchain_jockey._output import time_range
from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import (
    JockeyAuthenticationError,
    JockeyError,
    JockeyPermissionDeniedError,
)

try:  # The marker of handlers that take v3 protocol events (langchain-core 1.8)
    from langchain_core.tracers._streaming import _V2StreamingCallbackHandler

    _V2_HANDLER: type | None = _V2StreamingCallbackHandler
except ImportError:  # pragma: no cover - an older langchain-core
    _V2_HANDLER = None

try:  # LangGraph injects the conversation; without it, sessions come from config
    from langgraph.prebuilt import InjectedState

    _CONVERSATION: Any = InjectedState("messages")
except ImportError:  # pragma: no cover - langgraph is an optional extra
    _CONVERSATION = InjectedToolArg()

__all__ = ["JockeyTool"]

TAG = "jockey"
"""The tag on Jockey's nested chat-model runs, to tell its tokens apart."""
PROGRESS_EVENT = "jockey_progress"
"""The name of the custom event carrying Jockey's progress outside a graph."""
_RAISED = (JockeyAuthenticationError, JockeyPermissionDeniedError)
_PROGRESS_EVENTS = ("content-block-delta", "content-block-finish")


class JockeyInput(BaseModel):
    """What the calling model passes: a question."""

    question: str = Field(
        description="A self-contained question about what the videos show.",
        min_length=1,
    )
    messages: Annotated[list[Any] | None, _CONVERSATION] = None


def cited_moments(annotations: Sequence[Any]) -> str:
    """`[1] <title> 01:10-01:35` (an en dash in fact), one line per citation."""
    lines = []
    for number, note in enumerate(annotations, 1):
        if not isinstance(note, dict):
            continue
        title = note.get("title") or note.get("item_id") or "a video"
        span = ""
        if "start_sec" in note:
            span = f" {time_range(note['start_sec'], note.get('end_sec'))}"
        lines.append(f"[{number}] {title}{span}")
    return "\n".join(lines)


class JockeyTool(BaseTool):
    """Ask TwelveLabs Jockey about the videos of a knowledge store, from an agent.

    Give it to any tool-calling agent (langchain's `create_agent`, LangGraph's
    `ToolNode`, a `bind_tools` loop):

    ```python
    from langchain.agents import create_agent
    from langchain_jockey import ChatJockey, JockeyTool

    tool = JockeyTool(llm=ChatJockey(knowledge_store_id="ks_…"), store_name="the final")
    agent = create_agent(planner_model, tools=[tool])
    ```

    The result is a `ToolMessage` whose content is Jockey's answer followed by
    its cited moments (`[1] <title> 01:10-01:35`), and whose artifact is
    `{"provider": "twelvelabs", "session_id", "knowledge_store_id",
    "response_id", "citations", "usage"}`.

    Config (`config={"configurable": {...}}`): `jockey_session_id` continues
    that session (it wins over the one found in the conversation) unless
    `trust_config_session=False`; `jockey_selections` narrows the question to
    items or collections.

    When Jockey answers that the session is invalid or has expired, the
    question is asked again in a new session with the earlier Jockey questions
    and answers of the conversation folded in; it warns, and the artifact has
    `"session_restarted": True`. The next call continues the new session.

    Errors the calling model can act on (bad request, not found, rate limit
    after retries, a stream cut short, a timeout) come back as a tool result
    with `status="error"` and a readable message. Authentication and
    permission errors raise.
    """

    name: str = "ask_video_expert"
    """The tool's name, as the calling model sees it."""

    description: str = ""
    """What the calling model reads to decide when to ask (filled in from
    `store_name` when left empty)."""

    llm: ChatJockey
    """The ChatJockey that answers: its knowledge store, key, timeouts and
    retries apply."""

    store_name: str | None = None
    """What the knowledge store holds ("the 2026 cup final"), for the description."""

    progress: bool = True
    """Ask for Jockey's intermediate steps and report them while it works."""

    trust_config_session: bool = True
    """Whether `configurable.jockey_session_id` in a run's config continues
    that session. A session id is a bearer token for the conversation: where
    callers of a shared server set the config (LangGraph Server), set `False`,
    so sessions come only from the conversation's own Jockey results."""

    args_schema: type[BaseModel] = JockeyInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True

    model_config = ConfigDict(extra="forbid")

    def __init__(self, **kwargs: Any) -> None:
        """Validate the arguments; a bad one raises `JockeyInputError`, naming it."""
        hint = (
            "JockeyTool takes llm=ChatJockey(...): the key, the knowledge store and "
            "the other connection settings go to ChatJockey."
        )
        construct(super().__init__, kwargs, type(self), hint)

    def model_post_init(self, context: Any) -> None:
        """Write the description from `store_name` if none was given."""
        super().model_post_init(context)
        if not self.description:
            videos = (
                f"the videos of {self.store_name}"
                if self.store_name
                else ("a collection of videos (a TwelveLabs knowledge store)")
            )
            self.description = (
                f"Ask a video expert that has watched {videos}. It answers questions "
                "about what happens in them, when and where, and cites the moments "
                "(video and time range) it draws on. Ask one self-contained "
                "question at a time; follow-up questions continue the same "
                "conversation."
            )

    # -- the call ---------------------------------------------------------------

    def _ask(
        self, question: str, messages: list[Any] | None, config: RunnableConfig
    ) -> tuple[list[BaseMessage], dict[str, Any]]:
        """The messages and call options of one question to Jockey.

        The messages are the conversation's earlier Jockey questions and
        answers, then `question`: ChatJockey continues the session of the last
        answer, sending only the question, and folds them all into a new
        session if Jockey no longer has that one.
        """
        configurable = config.get("configurable") or {}
        options: dict[str, Any] = {}
        session = configurable.get("jockey_session_id")
        if session and self.trust_config_session:
            options["session_id"] = session
        if configurable.get("jockey_selections"):
            options["selections"] = configurable["jockey_selections"]
        if self.progress:
            options["include"] = ["intermediate_outputs"]
        earlier = _earlier_answers(messages, self.llm.knowledge_store_id)
        return [*earlier, HumanMessage(question)], options

    def _run(
        self,
        question: str,
        messages: list[Any] | None = None,
        *,
        run_manager: CallbackManagerForToolRun | None = None,
        config: RunnableConfig,
    ) -> tuple[str, dict[str, Any]]:
        child = _child_config(run_manager)
        asked, options = self._ask(question, messages, config)
        collect = _Answer()
        try:
            if _wants_protocol_events(child):
                answer = self.llm.stream_events(
                    asked, config=child, version="v3", **options
                )
                for event in answer:
                    for step in collect.add_event(event):
                        self._report(step, child)
                collect.message = answer.output_message
            else:
                for chunk in self.llm.stream(asked, config=child, **options):
                    for step in collect.add(chunk):
                        self._report(step, child)
        except _RAISED:
            raise
        except JockeyError as err:
            raise ToolException(_explain(err)) from err
        return collect.result()

    async def _arun(
        self,
        question: str,
        messages: list[Any] | None = None,
        *,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        config: RunnableConfig,
    ) -> tuple[str, dict[str, Any]]:
        child = _child_config(run_manager)
        asked, options = self._ask(question, messages, config)
        collect = _Answer()
        try:
            if _wants_protocol_events(child):
                answer = await self.llm.astream_events(
                    asked, config=child, version="v3", **options
                )
                async for event in answer:
                    for step in collect.add_event(event):
                        await self._areport(step, child)
                collect.message = answer.output_message
            else:
                chunks = self.llm.astream(asked, config=child, **options)
                async for chunk in chunks:
                    for step in collect.add(chunk):
                        await self._areport(step, child)
        except _RAISED:
            raise
        except JockeyError as err:
            raise ToolException(_explain(err)) from err
        return collect.result()

    @staticmethod
    def _report(step: dict[str, Any], child: RunnableConfig) -> None:
        if (event := _write(step)) is not None:
            dispatch_custom_event(PROGRESS_EVENT, event, config=child)

    @staticmethod
    async def _areport(step: dict[str, Any], child: RunnableConfig) -> None:
        if (event := _write(step)) is not None:
            await adispatch_custom_event(PROGRESS_EVENT, event, config=child)


def _progress(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """The progress report of one standard content block, if it is progress.

    Jockey's commentary (a `reasoning` block, or a delta of one) is
    `{"type": "commentary", "text"}`; its tool steps (`server_tool_call` and
    `server_tool_result` blocks) are `{"type": "step", "steps": [block]}`.
    """
    kind = block.get("type")
    if kind in ("reasoning", "reasoning-delta") and block.get("reasoning"):
        return {"type": "commentary", "text": block["reasoning"]}
    if kind in ("server_tool_call", "server_tool_result"):
        return {
            "type": "step",
            "steps": [{k: v for k, v in block.items() if k != "index"}],
        }
    return None


class _Answer:
    """Jockey's streamed answer, gathered; progress handed back as it comes.

    It reads chunks (`stream`), or under LangGraph's v3 streaming the protocol
    events of `stream_events(version="v3")`; both are content blocks, so
    progress is the same either way.
    """

    def __init__(self) -> None:
        self.message: AIMessage | None = None

    def add(self, chunk: AIMessageChunk) -> list[dict[str, Any]]:
        """Take one chunk; its progress reports."""
        previous = self.message
        self.message = (
            previous + chunk if isinstance(previous, AIMessageChunk) else chunk
        )
        if not chunk.additional_kwargs:  # plain answer text: no progress
            return []
        return [p for b in chunk.content_blocks if (p := _progress(b)) is not None]

    @staticmethod
    def add_event(event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Take one v3 protocol event; its progress reports.

        Commentary comes from the reasoning deltas, steps from the finished
        server tool blocks (their start holds no arguments yet).
        """
        kind = event.get("event")
        block = event.get("delta" if kind == "content-block-delta" else "content")
        if not isinstance(block, Mapping) or kind not in _PROGRESS_EVENTS:
            return []
        if kind == "content-block-finish" and block.get("type") == "reasoning":
            return []  # its deltas were reported
        step = _progress(block)
        return [] if step is None else [step]

    def result(self) -> tuple[str, dict[str, Any]]:
        message = self.message or AIMessageChunk(content="")
        meta = message.response_metadata
        citations = meta.get("annotations") or []
        text = message.text
        listed = cited_moments(citations)
        content = f"{text}\n\nCited moments:\n{listed}" if listed else text
        artifact = {
            "provider": "twelvelabs",
            "session_id": meta.get("session_id"),
            "knowledge_store_id": meta.get("knowledge_store_id"),
            "response_id": meta.get("id"),
            "citations": citations,
            "usage": message.usage_metadata,
        }
        if meta.get("session_restarted"):
            artifact["session_restarted"] = True
        return content, artifact


def _child_config(
    run_manager: CallbackManagerForToolRun | AsyncCallbackManagerForToolRun | None,
) -> RunnableConfig:
    """The nested chat-model run's config: the tool run's callbacks, tagged."""
    config: RunnableConfig = {"tags": [TAG], "run_name": "jockey"}
    if run_manager is not None:
        config["callbacks"] = run_manager.get_child()
    return config


def _wants_protocol_events(config: RunnableConfig) -> bool:
    """Whether a handler takes v3 protocol events (LangGraph's v3 streaming).

    Such a handler ignores the chunks `stream` reports (`on_llm_new_token`):
    it is served by `stream_events(version="v3")`, which reports each event.
    """
    if _V2_HANDLER is None:  # langchain-core without v3 streaming
        return False
    manager = config.get("callbacks")
    handlers = getattr(manager, "handlers", None) or ()
    return any(isinstance(h, _V2_HANDLER) for h in handlers)


def _write(step: dict[str, Any]) -> dict[str, Any] | None:
    """Send `step` to LangGraph's custom stream; the event, if not in a graph."""
    event = {"source": "jockey", **step}
    try:
        from langgraph.config import get_stream_writer  # noqa: PLC0415

        writer = get_stream_writer()
    except (ImportError, RuntimeError, KeyError):  # not running in a graph
        return event
    writer(event)
    return None


def _earlier_answers(
    messages: list[Any] | None, store: str | None
) -> list[BaseMessage]:
    """The conversation's Jockey questions and answers, as ChatJockey history.

    Each Jockey tool result for this store (its artifact names the session)
    becomes the question its tool call asked (when the call is in the
    conversation) and the answer, carrying the session as ChatJockey's own
    answers do.
    """
    calls: dict[str | None, Mapping[str, Any]] = {
        call.get("id"): call
        for message in messages or ()
        if isinstance(message, AIMessage)
        for call in message.tool_calls
    }
    history: list[BaseMessage] = []
    for message in messages or ():
        artifact = getattr(message, "artifact", None)
        if not (
            isinstance(message, ToolMessage)
            and isinstance(artifact, dict)
            and artifact.get("provider") == "twelvelabs"
            and artifact.get("knowledge_store_id") in (None, store)
            and isinstance(artifact.get("session_id"), str)
        ):
            continue
        args = calls.get(message.tool_call_id, {}).get("args")
        asked = args.get("question") if isinstance(args, Mapping) else None
        if isinstance(asked, str) and asked.strip():
            history.append(HumanMessage(asked))
        meta = {
            "session_id": artifact["session_id"],
            "knowledge_store_id": artifact.get("knowledge_store_id"),
        }
        history.append(AIMessage(message.text, response_metadata=meta))
    return history


def _explain(err: JockeyError) -> str:
    """A message the calling model can act on."""
    what = type(err).__name__.removeprefix("Jockey").removesuffix("Error")
    text = f"The video expert could not answer ({what}): {err.message}"
    if err.partial_text:
        text += f"\nWhat it had said before the failure: {err.partial_text}"
    if err.retry_after:
        text += f"\nTry again in {err.retry_after:.0f} seconds."
    return text
