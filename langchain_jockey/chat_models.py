"""`ChatJockey`: TwelveLabs Jockey as a LangChain chat model.

Glue only: request building is in `_messages`, event handling in `_events`,
I/O in `_http`, errors in `errors`.
"""

from __future__ import annotations

import warnings
from collections.abc import (
    AsyncIterator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, closing
from operator import itemgetter
from typing import Any, Literal

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
)
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from typing_extensions import Self

from langchain_jockey import _blocks, _http
from langchain_jockey._events import PROVIDER, ResponseReducer, generation
from langchain_jockey._messages import (
    OPTION_NAMES,
    RequestOptions,
    build_body,
    check_selections,
    encode_body,
)
from langchain_jockey._reader import Limits
from langchain_jockey.errors import JockeyInputError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatJockey"]

DEFAULT_MODEL = "jockey1.0"
DEFAULT_BASE_URL = "https://api.twelvelabs.io/v1.3"

# LangChain passes these; Jockey has no such parameters (docs/protocol.md).
_IGNORED_OPTIONS = ("stop", "temperature", "max_tokens")
_PASSED_BY_CORE = ("stream",)
# LangChain's agents pass this (the OpenAI form); it becomes Jockey's `text`.
_TRANSLATED = ("response_format",)

_blocks.register()


# Each setting is read from TWELVE_LABS_<NAME> (the spelling the official SDK
# documents for its key) and else TWELVELABS_<NAME> (common in community code).
_key_from_env = secret_from_env(
    ["TWELVE_LABS_API_KEY", "TWELVELABS_API_KEY"], default=None
)
_store_from_env = from_env(
    ["TWELVE_LABS_KNOWLEDGE_STORE_ID", "TWELVELABS_KNOWLEDGE_STORE_ID"], default=None
)
_base_url_from_env = from_env(
    ["TWELVE_LABS_BASE_URL", "TWELVELABS_BASE_URL"], default=DEFAULT_BASE_URL
)


class ChatJockey(BaseChatModel):
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
        #     "id": "resp_…", "status": "completed", "incomplete_details": None,
        #     "session_id": "sess_…", "knowledge_store_id": "ks_…", "created_at": "…",
        #     "annotations": [Jockey's citations]}
        ```

    Per-call options: every request field can be set per call, e.g.
    `llm.invoke(question, session_id="sess_…", instructions="Answer in one line")`.
    """

    # Fields are documented by attribute docstrings, for readers and IDEs;
    # `use_attribute_docstrings` would re-parse the source at import (~30 ms).
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    model: str = Field(default=DEFAULT_MODEL, alias="model_name")
    """Jockey model name, sent as `model` (the only documented value is
    `"jockey1.0"`) and reported as `response_metadata["model_name"]`."""

    knowledge_store_id: str | None = Field(default_factory=_store_from_env)
    """The knowledge store (`ks_…`) to answer from. Required for every request.
    Default: env `TWELVE_LABS_KNOWLEDGE_STORE_ID`, else
    `TWELVELABS_KNOWLEDGE_STORE_ID`."""

    api_key: SecretStr | None = Field(default_factory=_key_from_env)
    """TwelveLabs API key, sent as `x-api-key`. Default: env `TWELVE_LABS_API_KEY`,
    else `TWELVELABS_API_KEY`. Never shown in reprs, logs or traces."""

    base_url: str = Field(default_factory=_base_url_from_env)
    """API root; requests go to `{base_url}/responses`. Default: env
    `TWELVE_LABS_BASE_URL`, else `TWELVELABS_BASE_URL`, else
    `https://api.twelvelabs.io/v1.3`."""

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

    timeout: float | httpx.Timeout | None = None
    """The longest wait, in seconds, to connect or for the next bytes of the
    answer; never a limit on the whole answer, which takes 30 s to 3 min. Every
    call streams and Jockey sends keepalives about every 10 s, so `timeout=60`
    fires only on a stalled connection. An `httpx.Timeout` sets each limit.
    Default (`None`): connect 10 s, read 60 s, write 60 s."""

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

    max_retry_wait: float = Field(default=60.0, ge=0)
    """The most seconds spent waiting between retries, in total. A server that
    asks (`Retry-After`) for longer gets no retry: its error is raised at
    once, with `retry_after` set."""

    max_retries: int = Field(default=2, ge=0)
    """Retries of a request that failed before any of its answer arrived (429
    except `plan_limit_exceeded`, 408, 5xx, connection failures). A stream is
    never retried once it has started."""

    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """An `httpx.Client` to use for sync calls (proxies, custom transports).
    Default: one created on first use and reused."""

    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """An `httpx.AsyncClient` to use for async calls. Default: one created on
    first use in each event loop and reused."""

    default_headers: dict[str, str] | None = None
    """Extra HTTP headers for every request."""

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

    _clients: _http.Clients = PrivateAttr(default_factory=_http.Clients)

    def __init__(self, **kwargs: Any) -> None:
        """Build a ChatJockey; bad arguments raise `JockeyInputError`.

        An unknown argument is named (Jockey parameters this version does not
        know can go in `extra_body`). Construction does no I/O.
        """
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            # Values are left out of the message (a mistyped argument name could
            # hold the key), and so is the ValidationError, which shows them.
            problems = exc.errors(include_input=False, include_url=False)
            msg = "ChatJockey got bad argument(s): " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}"
                for e in problems
            )
            if any(e["type"] == "extra_forbidden" for e in problems):
                msg += (
                    ". Request fields Jockey documents are fields of ChatJockey; "
                    "anything else can go in extra_body={…}."
                )
            raise JockeyInputError(msg) from None

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
    def lc_secrets(self) -> dict[str, str]:
        """Where the secret fields come from, for LangChain serialization."""
        return {"api_key": "TWELVE_LABS_API_KEY"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Everything that changes the answer, never the key (this is traced
        # and is the LLM-cache key).
        fields = [n for n in OPTION_NAMES if n in type(self).model_fields]
        return {
            **{name: getattr(self, name) for name in fields},
            "base_url": self.base_url,
        }

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        del stop
        return LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Jockey calls no client tools: give them to the model that plans instead.

        With no tools (as `create_agent(ChatJockey(...))` binds), this binds
        `kwargs`, such as the `response_format` of native structured output.

        Raises:
            JockeyInputError: if `tools` is not empty. In an agent, Jockey is
                the expert a tool-calling model asks: give that model
                `JockeyTool(llm=ChatJockey(...))`.
        """
        del tool_choice
        if tools:
            msg = (
                "ChatJockey cannot call your tools: Jockey runs its own tools on the "
                "server. In an agent, let a tool-calling model plan and give it "
                "JockeyTool(llm=ChatJockey(...)) next to your other tools."
            )
            raise JockeyInputError(msg)
        return self.bind(**kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        # create_agent reads this: native structured output (Jockey's
        # text.format), no client tool calling, text in and out.
        return ModelProfile(
            text_inputs=True,
            image_inputs=False,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            text_outputs=True,
            reasoning_output=True,
            tool_calling=False,
            tool_choice=False,
            structured_output=True,
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
        if kwargs:
            msg = f"with_structured_output got unknown argument(s) {sorted(kwargs)}."
            raise JockeyInputError(msg)
        if method != "json_schema":
            warnings.warn(
                f"Jockey has no {method!r}; ChatJockey uses method='json_schema' "
                "(Jockey's text.format) instead.",
                UserWarning,
                stacklevel=2,
            )
        # Imported on first use: parsers and schema conversion cost import time.
        from langchain_jockey._structured import (  # noqa: PLC0415
            JockeyJsonParser,
            is_pydantic_class,
            response_format,
        )

        llm = self.bind(
            text={"format": response_format(schema, strict=strict)},
            ls_structured_output_format={
                "kwargs": {"method": "json_schema", "strict": strict},
                "schema": schema,
            },
        )
        parser = JockeyJsonParser(
            pydantic_object=schema if is_pydantic_class(schema) else None
        )
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        on_error = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks(
            [on_error], exception_key="parsing_error"
        )

    # -- pickling ------------------------------------------------------------

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the API key and without HTTP clients.

        The unpickled model reads its key from the environment again and
        creates its clients on first use. A model given its own `http_client`
        or `http_async_client` cannot be pickled (httpx clients cannot be).
        """
        if self.http_client is not None or self.http_async_client is not None:
            msg = (
                "A ChatJockey with its own http_client / http_async_client cannot "
                "be pickled: httpx clients cannot be. Pickle one without them."
            )
            raise JockeyInputError(msg)
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickled model; its key comes from the environment."""
        super().__setstate__(state)
        if self.api_key is None:
            self.api_key = _key_from_env()

    # -- clients -------------------------------------------------------------

    def close(self) -> None:
        """Close the sync HTTP client ChatJockey created (not one you passed in).

        The model stays usable: a new client is created on the next call.
        """
        self._clients.close()

    async def aclose(self) -> None:
        """Close the clients ChatJockey created: this event loop's, and the sync one.

        Clients it created in other event loops close when those loops shut
        down. Clients you passed in are yours to close.
        """
        await self._clients.aclose()

    def __enter__(self) -> Self:
        """`with ChatJockey(...) as llm:` closes its clients at the end."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the clients ChatJockey created (see `close`)."""
        self.close()

    async def __aenter__(self) -> Self:
        """`async with ChatJockey(...) as llm:` closes its clients at the end."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the clients ChatJockey created (see `aclose`)."""
        await self.aclose()

    # -- requests --------------------------------------------------------------

    def _options(
        self, stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> RequestOptions:
        names = OPTION_NAMES
        known = {*names, *_IGNORED_OPTIONS, *_PASSED_BY_CORE, *_TRANSLATED}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            msg = (
                f"ChatJockey got unknown call option(s) {unknown}; it takes "
                f"{list(names)} (and ignores {list(_IGNORED_OPTIONS)})."
            )
            raise JockeyInputError(msg)
        ignored = {"stop": self.stop if stop is None else stop}
        for name in _IGNORED_OPTIONS:
            value = ignored.get(name, kwargs.get(name, getattr(self, name)))
            if value:
                warnings.warn(  # Python's registry shows it once per caller
                    f"Jockey has no {name!r} parameter: ChatJockey accepts it for "
                    "LangChain compatibility and does not send it.",
                    UserWarning,
                    stacklevel=5,
                )
        if kwargs.get("response_format") is not None:
            from langchain_jockey._structured import text_format  # noqa: PLC0415

            kwargs = {"text": text_format(kwargs["response_format"]), **kwargs}
        # A call's option wins over the field; the `instructions` field is only
        # the default, below system messages (see `RequestOptions`).
        fields = {n: getattr(self, n, None) for n in names if n != "instructions"}
        return RequestOptions(
            **{**fields, **{n: kwargs[n] for n in names if n in kwargs}},
            default_instructions=self.instructions,
        )

    def _request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
        client: httpx.Client | httpx.AsyncClient,
    ) -> httpx.Request:
        """Validate and build the request. Raises before any I/O on bad input."""
        body = build_body(messages, self._options(stop, kwargs))
        return _http.build_request(
            client,
            "POST",
            self.base_url,
            "responses",
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            timeout=self.timeout,
            headers=self.default_headers,
            content=encode_body(body),
        )

    @property
    def _policy(self) -> _http.RetryPolicy:
        return _http.RetryPolicy(
            max_retries=self.max_retries, max_wait=self.max_retry_wait
        )

    @property
    def _limits(self) -> Limits:
        # No complete event for as long as no byte may take: the read timeout.
        timeout = _http.DEFAULT_TIMEOUT if self.timeout is None else self.timeout
        read = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
        return Limits(
            max_event_bytes=self.max_event_bytes,
            event_timeout=read,
            idle=self.stream_idle_timeout,
        )

    def _reducer(self, kwargs: Mapping[str, Any]) -> ResponseReducer:
        return ResponseReducer(kwargs.get("model") or self.model)

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
        request = self._request(messages, stop, kwargs, client)
        reducer = self._reducer(kwargs)
        events = _http.iter_events(client, request, self._policy, self._limits)
        with reducer.guard(), closing(events):
            for event in events:
                message = reducer.feed(event)
                if message is not None:
                    chunk = generation(message)
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        client = await self._clients.async_(self.http_async_client)
        request = self._request(messages, stop, kwargs, client)
        reducer = self._reducer(kwargs)
        events = _http.aiter_events(client, request, self._policy, self._limits)
        with reducer.guard():
            async with aclosing(events):
                async for event in events:
                    message = reducer.feed(event)
                    if message is not None:
                        chunk = generation(message)
                        if run_manager is not None:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
