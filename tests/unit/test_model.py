"""ChatJockey as a LangChain model: configuration, clients, secrets, plumbing."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

import langchain_jockey
from langchain_jockey import ChatJockey
from tests.support import API_KEY, STORE, serve, sse


def test_public_names_are_exported_and_documented() -> None:
    for name in langchain_jockey.__all__:
        obj = getattr(langchain_jockey, name)
        if name != "__version__":
            assert obj.__doc__, name


def test_every_field_has_an_attribute_docstring() -> None:
    import ast
    import inspect

    own = set(ChatJockey.model_fields) - set(ChatJockey.__mro__[1].model_fields)
    assert {"knowledge_store_id", "api_key", "base_url", "max_retries"} <= own
    (cls,) = ast.parse(inspect.getsource(ChatJockey)).body
    documented = set()
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
    assert model._client is None
    assert model._async_clients == {}


def test_default_sync_client_is_created_once_and_reused() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)
    first = model._sync_client()
    assert model._sync_client() is first
    model.close()
    assert model._client is None
    assert first.is_closed


def test_default_async_client_is_one_per_event_loop() -> None:
    model = ChatJockey(api_key="k", knowledge_store_id=STORE)

    async def get() -> httpx.AsyncClient:
        client = model._async_client()
        assert model._async_client() is client
        return client

    first = asyncio.run(get())
    second = asyncio.run(get())
    assert first is not second
    assert list(model._async_clients.values()) == [second]  # closed loops are pruned


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
