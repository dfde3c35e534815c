"""ChatJockey as a LangChain model: configuration, clients, secrets, plumbing."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

import langchain_jockey
from langchain_jockey import ChatJockey
from tests.support import API_KEY, STORE, serve, sse, transcript


def test_public_names_are_exported_and_documented() -> None:
    for name in langchain_jockey.__all__:
        obj = getattr(langchain_jockey, name)
        if name != "__version__":
            assert obj.__doc__, name


def test_every_field_has_an_attribute_docstring() -> None:
    import ast
    import inspect

    from langchain_core.language_models import BaseChatModel

    own = set(ChatJockey.model_fields) - set(BaseChatModel.model_fields)
    assert {"knowledge_store_id", "api_key", "base_url", "max_retries"} <= own
    documented = set()
    for klass in ChatJockey.__mro__[: ChatJockey.__mro__.index(BaseChatModel)]:
        (cls,) = ast.parse(inspect.getsource(klass)).body
        for node, after in zip(cls.body, cls.body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
            ):
                documented.add(node.target.id)
    assert own <= documented, own - documented


def test_defaults() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    assert model.model == "jockey1.0"
    assert model.base_url == "https://api.twelvelabs.io/v1.3"
    assert model.max_retries == 2
    assert model.streaming is False


def test_unknown_constructor_argument_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="knowledge_store"):
        ChatJockey(api_key="k", knowledge_store="ks_typo")


def test_model_name_alias_and_stop_sequences_alias_are_accepted() -> None:
    model = ChatJockey(model_name="jockey1.0", stop_sequences=["x"], api_key="k")
    assert model.model == "jockey1.0"
    assert model.stop == ["x"]


def test_bad_selections_are_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="ksi_"):
        ChatJockey(api_key="k", selections=[{"kind": "item", "id": "ksic_1"}])


def test_community_env_var_name_for_the_key_is_accepted(monkeypatch) -> None:
    monkeypatch.delenv("TWELVE_LABS_API_KEY", raising=False)
    monkeypatch.setenv("TWELVELABS_API_KEY", "tlk_community")
    assert ChatJockey().api_key.get_secret_value() == "tlk_community"
    monkeypatch.setenv("TWELVE_LABS_API_KEY", "tlk_official")
    assert ChatJockey().api_key.get_secret_value() == "tlk_official"


def test_construction_creates_no_http_client() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    assert model._clients._sync is None
    assert model._clients._async == {}


def test_default_sync_client_is_created_once_and_reused() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    first = model._clients.sync(None)
    assert model._clients.sync(None) is first
    model.close()
    assert model._clients._sync is None
    assert first.is_closed


def test_default_async_client_is_one_per_event_loop() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)

    async def get() -> httpx.AsyncClient:
        client = await model._clients.async_(None)
        assert await model._clients.async_(None) is client
        return client

    first = asyncio.run(get())
    second = asyncio.run(get())
    assert first is not second
    # Each loop's client was closed when its loop shut down, and forgotten.
    assert first.is_closed
    assert second.is_closed
    assert model._clients._async == {}


def test_given_clients_are_used_and_not_closed() -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    list(model.stream("q"))
    model.close()
    assert not model.http_client.is_closed
    assert len(server.requests) == 1


def test_the_key_is_in_no_repr_dump_trace_params_or_log(caplog) -> None:
    server = serve(sse("plain_answer"))
    model = server.model()
    caplog.set_level(logging.DEBUG)
    list(model.stream("q"))
    assert server.requests[0].headers["x-api-key"] == API_KEY  # it was sent...
    for text in (
        repr(model),
        str(model),
        str(model.model_dump()),
        str(model._identifying_params),
        str(model._get_ls_params()),
        str(model.asdict()) if hasattr(model, "asdict") else "",
        caplog.text,
    ):
        assert API_KEY not in text  # ...and shown nowhere
    assert "responses" in caplog.text  # the request was logged


def test_ls_params_follow_a_per_call_model() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    assert model._get_ls_params() == {
        "ls_provider": "twelvelabs",
        "ls_model_name": "jockey1.0",
        "ls_model_type": "chat",
    }
    assert model._get_ls_params(model="jockey2")["ls_model_name"] == "jockey2"


def test_identifying_params_hold_what_changes_the_answer() -> None:
    model = ChatJockey(
        api_key="k",
        knowledge_store_id=STORE,
        instructions="brief",
        include=["intermediate_outputs"],
    )
    params = model._identifying_params
    assert params["knowledge_store_id"] == STORE
    assert params["instructions"] == "brief"
    assert params["include"] == ["intermediate_outputs"]
    assert model._llm_type == "jockey-chat"


ENV_SETTINGS = [
    ("API_KEY", lambda m: m.api_key.get_secret_value()),
    ("BASE_URL", lambda m: m.base_url),
    ("KNOWLEDGE_STORE_ID", lambda m: m.knowledge_store_id),
]


@pytest.fixture
def clean_env(monkeypatch):
    for name, _ in ENV_SETTINGS:
        for prefix in ("TWELVE_LABS_", "TWELVELABS_"):
            monkeypatch.delenv(prefix + name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("name", "read"), ENV_SETTINGS)
@pytest.mark.parametrize("prefix", ["TWELVE_LABS_", "TWELVELABS_"])
def test_every_setting_is_read_from_either_env_spelling(
    clean_env, prefix, name, read
) -> None:
    clean_env.setenv(prefix + name, "http://127.0.0.1:9/v1.3")
    assert read(ChatJockey()) == "http://127.0.0.1:9/v1.3"


@pytest.mark.parametrize(("name", "read"), ENV_SETTINGS)
def test_twelve_labs_spelling_wins_when_both_are_set(clean_env, name, read) -> None:
    clean_env.setenv("TWELVELABS_" + name, "http://127.0.0.1:1/community")
    clean_env.setenv("TWELVE_LABS_" + name, "http://127.0.0.1:2/official")
    assert read(ChatJockey()) == "http://127.0.0.1:2/official"


def test_base_url_from_env_is_where_requests_and_the_key_go(clean_env) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=transcript("plain_answer"),
        )

    clean_env.setenv("TWELVE_LABS_BASE_URL", "http://127.0.0.1:8600/v1.3")
    model = ChatJockey(
        api_key="k",
        knowledge_store_id=STORE,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    model.invoke("q")
    assert str(seen[0].url) == "http://127.0.0.1:8600/v1.3/responses"


@pytest.mark.parametrize(
    "make",
    [
        lambda: ChatJockey(api_key="k", knowledge_store="ks_typo"),
        lambda: ChatJockey(api_key="k", max_retries=-1),
        lambda: ChatJockey(api_key="k", selections=[{"kind": "item", "id": "x"}]),
        lambda: ChatJockey(api_key="k", knowledge_store_id=STORE).invoke(""),
        lambda: ChatJockey(api_key="k", knowledge_store_id=STORE).invoke(
            "q", nonsense=1
        ),
        lambda: ChatJockey(api_key="k", knowledge_store_id=STORE).invoke(
            "q", selections="ksi_1"
        ),
        lambda: ChatJockey(api_key="", knowledge_store_id=STORE).invoke("q"),
        lambda: ChatJockey(api_key="k").with_structured_output(int),
        lambda: ChatJockey(api_key="k").with_structured_output(dict, junk=1),
    ],
    ids=[
        "unknown-argument",
        "bad-field-value",
        "bad-selections",
        "empty-question",
        "unknown-call-option",
        "selections-of-wrong-type",
        "no-api-key",
        "bad-schema",
        "unknown-structured-option",
    ],
)
def test_every_input_error_is_a_jockey_error_and_a_value_error(make) -> None:
    with pytest.raises(langchain_jockey.JockeyInputError) as caught:
        make()
    assert isinstance(caught.value, langchain_jockey.JockeyError)
    assert isinstance(caught.value, ValueError)


def test_a_mistyped_argument_holding_the_key_is_named_but_not_shown() -> None:
    with pytest.raises(langchain_jockey.JockeyInputError) as caught:
        ChatJockey(api_kye=API_KEY)
    assert "api_kye" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None  # pydantic's error, which shows it, is gone


@pytest.mark.parametrize("timeout", [0, -1, httpx.Timeout(5.0, read=-2.0)])
@pytest.mark.parametrize("cls", [ChatJockey, langchain_jockey.KnowledgeStoreRetriever])
def test_a_timeout_that_is_not_positive_is_refused_at_construction(cls, timeout):
    # Sync httpx would raise a bare ValueError from the socket, async a timeout.
    with pytest.raises(
        langchain_jockey.JockeyInputError, match="timeout: .* more than 0"
    ):
        cls(api_key="k", knowledge_store_id=STORE, timeout=timeout)
    assert cls(api_key="k", knowledge_store_id=STORE, timeout=0.5).timeout == 0.5


def test_langchains_own_model_setup_still_runs() -> None:
    from langchain_core.language_models import FakeListChatModel

    plain = FakeListChatModel(responses=["x"])
    assert ChatJockey(api_key="k", knowledge_store_id=STORE).metadata == plain.metadata


def test_close_and_context_managers_close_the_clients_chatjockey_created() -> None:
    with ChatJockey(api_key="k", knowledge_store_id=STORE) as model:
        client = model._clients.sync(None)
    assert client.is_closed

    async def go() -> tuple[httpx.AsyncClient, httpx.Client]:
        async with ChatJockey(api_key="k", knowledge_store_id=STORE) as amodel:
            aclient = await amodel._clients.async_(None)
            sclient = amodel._clients.sync(None)
        assert amodel._clients._async == {}
        return aclient, sclient

    aclient, sclient = asyncio.run(go())
    assert aclient.is_closed
    assert sclient.is_closed


def test_bind_tools_with_tools_names_jockey_tool_and_without_binds_kwargs() -> None:
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    with pytest.raises(langchain_jockey.JockeyInputError, match="JockeyTool"):
        model.bind_tools([weather])
    bound = model.bind_tools([], response_format={"type": "text"})
    assert bound.kwargs == {"response_format": {"type": "text"}}


def test_profile_says_native_structured_output_and_no_tool_calling() -> None:
    profile = ChatJockey(api_key="k").profile
    assert profile is not None
    assert profile["structured_output"] is True
    assert profile["tool_calling"] is False


def test_an_openai_style_response_format_becomes_jockeys_text_format() -> None:
    server = serve(sse("plain_answer"))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    model = server.model()
    model.invoke(
        "q",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "My answer", "schema": schema, "strict": True},
        },
    )
    fmt = server.json_bodies[0]["text"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["name"] == "My_answer"
    assert fmt["schema"]["properties"] == schema["properties"]
    assert fmt["strict"] is True
    with pytest.raises(langchain_jockey.JockeyInputError, match="response_format"):
        model.invoke("q", response_format={"type": "xml"})


@pytest.mark.parametrize(
    ("argument", "meant"),
    [("knowledge_store", "knowledge_store_id"), ("max_retry", "max_retries")],
)
def test_a_mistyped_argument_says_which_one_was_meant(argument, meant) -> None:
    with pytest.raises(langchain_jockey.JockeyInputError) as caught:
        ChatJockey(api_key="k", **{argument: "x"})
    assert f"{argument}: unknown, did you mean {meant!r}?" in str(caught.value)
