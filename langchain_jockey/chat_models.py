"""`ChatJockey`: TwelveLabs Jockey as a LangChain chat model.

Glue only: settings and clients are in `_client`, the request body in
`_messages`, event handling in `_events` (the reducer and its `Batcher`), I/O
in `_http`, LangChain's hooks in `_hooks`, structured output in `_structured`,
errors in `errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import aclosing, closing
from typing import Any, Literal

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    LangSmithParams,
    LanguageModelInput,
)
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import (
    ChatGenerationChunk,
    ChatResult,
)
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, Field, field_validator

from langchain_jockey import _blocks
from langchain_jockey._client import DEFAULT_BASE_URL, JockeyConnection
from langchain_jockey._events import ResponseReducer
from langchain_jockey._hooks import LangChainHooks
from langchain_jockey._http import aiter_events, iter_events
from langchain_jockey._messages import (
    Turn,
    call_options,
    check_selections,
)
from langchain_jockey._output import PROVIDER
from langchain_jockey._sse import Limits
from langchain_jockey._structured import structured
from langchain_jockey.errors import JockeyError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatJockey"]

DEFAULT_MODEL = "jockey1.0"

_blocks.register()


class ChatJockey(JockeyConnection, LangChainHooks):
    """TwelveLabs Jockey as a LangChain chat model.

    Jockey is an agent that answers questions about a collection of videos (a
    knowledge store), citing the moments it draws on.

    Setup:
        ```bash
        pip install langchain-jockey
        export TWELVE_LABS_API_KEY="tlk_…"
        export TWELVE_LABS_KNOWLEDGE_STORE_ID="ks_…"
        ```

    Instantiate:
        ```python
        from langchain_jockey import ChatJockey

        llm = ChatJockey(knowledge_store_id="ks_…")
        ```

    Invoke:
        ```python
        msg = llm.invoke("What happens after the corner kick?")
        msg.text  # -> the answer, with [N] citation markers
        msg.response_metadata["session_id"]  # -> "sess_…"
        ```

    Stream:
        ```python
        for chunk in llm.stream("Summarise the match"):
            print(chunk.text, end="", flush=True)
        ```

    Async:
        ```python
        msg = await llm.ainvoke("Who scores first?")
        async for chunk in llm.astream("Who scores first?"):
            ...
        ```

    Sessions: Jockey keeps the conversation on the server. Pass the previous
    answer back in the message list (as `RunnableWithMessageHistory` or a
    LangGraph `MessagesState` do) and ChatJockey continues its session, sending
    only the new human turn:
        ```python
        history = [HumanMessage("Who scores first?")]
        history.append(llm.invoke(history))
        history.append(HumanMessage("And what happens next?"))
        llm.invoke(history)  # -> same session, one new turn sent
        ```
    When Jockey answers that the session is invalid or has expired (a
    conversation kept in a database outlives it), ChatJockey asks the same
    question once more in a new session, with the earlier turns folded into
    the message and the conversation's `selections` re-sent; it warns, and the
    answer has `response_metadata["session_restarted"] == True`. The call
    option `new_session=True` starts a new session on purpose.

    Structured output:
        ```python
        class Moment(BaseModel):
            title: str
            start_sec: float


        llm.with_structured_output(Moment).invoke("Who saves the penalty?")
        # -> Moment(title=…, start_sec=…); .stream() yields partial Moments
        ```

    Citations:
        ```python
        block = msg.content_blocks[-1]  # the text block
        block["annotations"][0]["extras"]["start_sec"]  # -> the cited moment
        ```

    Intermediate steps (`include=["intermediate_outputs"]`): Jockey's
    commentary streams as `additional_kwargs["reasoning_content"]` and its
    tool steps as `additional_kwargs["jockey_steps"]`, never in `.text`.

    Token usage:
        ```python
        msg.usage_metadata
        # -> {"input_tokens": …, "output_tokens": …, "total_tokens": …}
        ```

    Response metadata:
        ```python
        msg.response_metadata
        # -> {"model_provider": "twelvelabs", "model_name": "jockey1.0",
        #     "id": "resp_…", "status": "completed", "finish_reason": "stop",
        #     "incomplete_details": None,
        #     "session_id": "sess_…", "knowledge_store_id": "ks_…", "created_at": "…",
        #     "annotations": [Jockey's citations]}
        ```
    An answer cut at Jockey's output limit has `"status": "incomplete"` and
    `"finish_reason": "length"`, as LangChain's partner packages report it.

    Per-call options: every request field can be set per call, e.g.
    `llm.invoke(question, session_id="sess_…", instructions="Answer in one line")`.
    """

    # Fields are documented by attribute docstrings, for readers and IDEs;
    # `use_attribute_docstrings` would re-parse the source at import (~30 ms).
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    model: str = Field(default=DEFAULT_MODEL, alias="model_name")
    """Jockey model name, sent as `model` (the only documented value is
    `"jockey1.0"`) and reported as `response_metadata["model_name"]`."""

    instructions: str | None = None
    """Default system prompt, used when neither the call's `instructions=` nor a
    system message in the input gives one."""

    session_id: str | None = None
    """Continue this Jockey session (`sess_…`). Normally left unset: the session
    is taken from the last Jockey answer in the input."""

    include: list[str] | None = None
    """Extra output to request; `["intermediate_outputs"]` asks for Jockey's
    commentary and tool steps."""

    selections: list[dict[str, str]] | None = None
    """Items (`{"kind": "item", "id": "ksi_…"}`) or collections (`"collection"`,
    `"ksic_…"`) that `{{sel:N}}` tokens in the question refer to."""

    stream_idle_timeout: float | None = Field(default=600.0, gt=0)
    """Seconds a stream may go without progress (answer text, Jockey's steps,
    the end) before it is abandoned with `JockeyTimeoutError` (default 600:
    Jockey answers take 30 s to 3 min). Keepalives, comments, status events
    and unknown events are not progress. `None`: no limit. Bytes that never
    complete an event count as silence: the read timeout applies to them."""

    max_event_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """The largest line or event a stream may send, in bytes (default 8 MiB;
    a whole answer's snapshot is far smaller). A larger one ends the stream
    with `JockeyStreamInterruptedError`, keeping what had arrived."""

    max_answer_events: int = Field(default=50_000, ge=1)
    """The most events one answer may send, keepalives included (default
    50,000; a long answer sends a few thousand). Past it the stream ends with
    `JockeyStreamInterruptedError`, keeping what had arrived. It bounds what a
    server that never stops costs: LangChain keeps every chunk of a stream
    until it ends, about 2 KB each."""

    extra_body: dict[str, Any] | None = None
    """Extra top-level fields for the request body, for API parameters this
    version does not know. May not repeat a field ChatJockey sets."""

    streaming: bool = False
    """Whether `invoke` reports each token to callbacks as it arrives
    (LangChain's convention). On the wire every call streams."""

    temperature: float | None = None
    """Accepted for LangChain compatibility; Jockey has no temperature."""

    max_tokens: int | None = None
    """Accepted for LangChain compatibility; Jockey has no token limit option."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Accepted for LangChain compatibility; Jockey has no stop sequences."""

    stream_usage: bool = True
    """Whether answers carry Jockey's token usage on their last chunk (also a
    call option). Every call streams on the wire, `invoke` included, so
    `False` leaves usage out of every answer: one rule, whichever path
    LangChain takes (a v1 or v3 stream listener makes core stream an invoke)."""

    cache: BaseCache | bool | None = Field(default=False, exclude=True)
    """Jockey answers are not cached by default, even with a global
    `set_llm_cache`: each answer is a turn of a server-side session, and a
    cached one served to another conversation would hand it that session.
    `True` (the global cache) or a `BaseCache` caches `invoke` and `batch`
    answers; an answer served from a cache carries no `session_id`, so a
    follow-up to it starts a new session (the history goes as a transcript)."""

    @field_validator("selections")
    @classmethod
    def _check_selections(
        cls, value: list[dict[str, str]] | None
    ) -> list[dict[str, str]] | None:
        if value:
            check_selections(value)
        return value

    @property
    def _llm_type(self) -> str:
        return "jockey-chat"

    @property
    def request_fields(self) -> dict[str, Any]:
        """The fields that go into a request, by option name (call options win)."""
        return {
            "model": self.model,
            "knowledge_store_id": self.knowledge_store_id,
            "instructions": self.instructions,
            "session_id": self.session_id,
            "include": self.include,
            "selections": self.selections,
            "extra_body": self.extra_body,
        }

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Everything that changes the answer, never the key (this is traced).
        return {**self.request_fields, "base_url": self.base_url}

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        del stop
        return LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that answers with an object of `schema`.

        Jockey fills in a JSON schema given as `text.format` (its only
        structured-output mechanism): `method="json_mode"` and
        `"function_calling"` warn and use it too. Streaming yields
        progressively filled objects: partial dicts, or for Pydantic models
        unvalidated partial objects and then the validated one.

        Args:
            schema: A Pydantic model (v2 or v1), a TypedDict or a JSON schema
                dict. Its title (made valid) names the format.
            method: Only `"json_schema"` exists for Jockey.
            include_raw: Return `{"raw", "parsed", "parsing_error"}` instead of
                raising when the answer cannot be parsed (for example when it
                was truncated: `status == "incomplete"`).
            strict: Sent as `text.format.strict`, which Jockey accepts and
                ignores today.
            **kwargs: Not supported; named in the error.

        Returns:
            A runnable whose output is the parsed object (or the raw dict).
        """
        return structured(self, schema, method, include_raw, strict, kwargs)

    # -- requests --------------------------------------------------------------

    def _turn(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
    ) -> Turn:
        """Validate and build the request body. Raises before any I/O on bad input."""
        return Turn(messages, call_options(self, stop, kwargs))

    @property
    def _limits(self) -> Limits:
        # No complete event for as long as no byte may take: the read timeout.
        return Limits(
            max_event_bytes=self.max_event_bytes,
            max_events=self.max_answer_events,
            event_timeout=self._timeout.read,
            idle=self.stream_idle_timeout,
        )

    def _reducer(self, kwargs: Mapping[str, Any]) -> ResponseReducer:
        usage = kwargs.get("stream_usage")
        return ResponseReducer(
            kwargs.get("model") or self.model,
            usage=self.stream_usage if usage is None else bool(usage),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # invoke streams on the wire too and aggregates: a non-streaming request
        # sends no bytes for the 30 s - 3 min an answer takes, which idle proxies
        # cut, while a stream carries keepalives. Tokens reach callbacks only
        # when the caller streams (core then calls `_stream` itself).
        del run_manager
        return generate_from_stream(self._stream(messages, stop, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager
        return await agenerate_from_stream(self._astream(messages, stop, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        client = self._clients.sync(self.http_client)
        turn = self._turn(messages, stop, kwargs)
        while True:  # twice at most: `turn.restart` says yes once
            request = self._build(client, "responses", body=turn.body)
            reducer = self._reducer(kwargs)
            chunks = reducer.chunks(
                iter_events(client, request, self._policy, self._limits)
            )
            try:
                with reducer.guard(), closing(chunks):
                    for chunk in chunks:
                        turn.mark(chunk.message)
                        if run_manager is not None:
                            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
            except JockeyError as err:
                if not turn.restart(err):
                    raise
            else:
                return

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        client = await self._clients.async_(self.http_async_client)
        turn = self._turn(messages, stop, kwargs)
        while True:  # twice at most: `turn.restart` says yes once
            request = self._build(client, "responses", body=turn.body)
            reducer = self._reducer(kwargs)
            chunks = reducer.achunks(
                aiter_events(client, request, self._policy, self._limits)
            )
            try:
                with reducer.guard():
                    async with aclosing(chunks):
                        async for chunk in chunks:
                            turn.mark(chunk.message)
                            if run_manager is not None:
                                await run_manager.on_llm_new_token(
                                    chunk.text, chunk=chunk
                                )
                            yield chunk
            except JockeyError as err:
                if not turn.restart(err):
                    raise
            else:
                return
