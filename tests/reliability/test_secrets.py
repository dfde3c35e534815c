"""The API key appears nowhere but the x-api-key header of the requests."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_jockey import (
    ChatJockey,
    JockeyAuthenticationError,
    JockeyConnectionError,
    KnowledgeStore,
)
from langchain_jockey.emulator import FAULT_HEADER, Emulator

SECRET = "tlk_super_secret_0123456789abcdef"


class _Trace(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized, messages, **kwargs: Any) -> None:  # type: ignore[override]
        self.seen.append(repr(serialized))
        self.seen.append(repr(kwargs))

    def on_llm_end(self, response, **kwargs: Any) -> None:
        self.seen.append(repr(response))

    def on_llm_error(self, error, **kwargs: Any) -> None:
        self.seen.append(repr(error))
        self.seen.append(str(error))
        self.seen.append(repr(kwargs))


@pytest.fixture
def emulator():
    with Emulator(api_keys=(SECRET,)) as emu:
        yield emu


def test_the_key_is_in_no_repr_dump_param_trace_log_or_pickle(
    emulator, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    monkeypatch.setenv("TWELVE_LABS_API_KEY", SECRET)
    llm = ChatJockey(
        base_url=emulator.base_url, knowledge_store_id=emulator.knowledge_store_id
    )
    trace = _Trace()
    message = llm.invoke("Who saves the penalty?", config={"callbacks": [trace]})
    list(llm.stream("Who saves the penalty?", config={"callbacks": [trace]}))
    assert message.text and emulator.requests[-1].key_accepted  # the key did its job
    places = {
        "repr": repr(llm),
        "str": str(llm),
        "model_dump": repr(llm.model_dump()),
        "model_dump_json": llm.model_dump_json(),
        "identifying_params": repr(llm._identifying_params),
        "invocation_params": repr(llm._get_invocation_params()),
        "langsmith_params": repr(llm._get_ls_params()),
        "callbacks": "\n".join(trace.seen),
        "message": repr(message),
        "pickle": pickle.dumps(llm).decode("latin-1"),
        "logs": caplog.text,
    }
    assert "responses" in caplog.text  # requests were logged at DEBUG
    leaks = [name for name, text in places.items() if SECRET in text]
    assert leaks == []


def test_errors_never_carry_the_key(emulator) -> None:
    wrong = SECRET[::-1]
    llm = ChatJockey(
        base_url=emulator.base_url,
        knowledge_store_id=emulator.knowledge_store_id,
        api_key=wrong,
    )
    trace = _Trace()
    with pytest.raises(JockeyAuthenticationError) as info:
        llm.invoke("q", config={"callbacks": [trace]})
    err = info.value
    text = "\n".join(
        [
            str(err),
            repr(err),
            repr(err.body),
            repr(vars(err)),
            pickle.dumps(err).decode("latin-1"),
            *trace.seen,
        ]
    )
    assert wrong not in text
    assert SECRET not in text

    good = ChatJockey(
        base_url=emulator.base_url,
        knowledge_store_id=emulator.knowledge_store_id,
        api_key=SECRET,
        default_headers={FAULT_HEADER: "drop_after=6"},
    )
    with pytest.raises(Exception) as dropped:
        list(good.stream("q"))
    assert SECRET not in str(dropped.value) + repr(vars(dropped.value))


def test_a_transport_failure_chains_a_cause_whose_request_has_no_key() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = ChatJockey(
        base_url=f"http://127.0.0.1:{port}/v1.3",
        knowledge_store_id="ks_x",
        api_key=SECRET,
        max_retries=0,
    )
    with pytest.raises(JockeyConnectionError) as info:
        llm.invoke("q")
    cause = info.value.__cause__
    assert cause is not None
    assert cause.request.headers["x-api-key"] == "[redacted]"
    assert str(cause.request.url).endswith("/v1.3/responses")


def test_a_knowledge_store_pickles_without_its_key(emulator, monkeypatch) -> None:
    monkeypatch.delenv("TWELVE_LABS_API_KEY", raising=False)
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    store = KnowledgeStore(
        base_url=emulator.base_url,
        knowledge_store_id=emulator.knowledge_store_id,
        api_key=SECRET,
    )
    store.items()  # its claims and clients are in use
    data = pickle.dumps(store)
    assert SECRET.encode() not in data
    clone = pickle.loads(data)
    assert clone.api_key is None
    assert clone.knowledge_store_id == store.knowledge_store_id
    monkeypatch.setenv("TWELVE_LABS_API_KEY", SECRET)
    assert pickle.loads(data).api_key.get_secret_value() == SECRET  # from the env


def test_a_knowledge_store_deep_copies_with_its_key_and_works(emulator, mode) -> None:
    store = KnowledgeStore(
        base_url=emulator.base_url,
        knowledge_store_id=emulator.knowledge_store_id,
        api_key=SECRET,
    )
    store.items()
    clone = copy.deepcopy(store)
    assert clone.api_key.get_secret_value() == SECRET
    items = clone.items() if mode == "sync" else asyncio.run(clone.aitems())
    assert emulator.requests[-1].key_accepted
    assert items == store.items()
