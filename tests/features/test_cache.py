"""A LangChain cache never merges two conversations into one Jockey session.

Each Jockey answer is a turn of a server-side session. ChatJockey is not cached
unless its own `cache=` asks, and an answer served from a cache carries no
`session_id`, so a follow-up to it never continues another conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from tests.support import merged

OPENING = "Who saves the penalty?"
FOLLOW_UP = "What happens next?"


@pytest.fixture
def global_cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


def answer(mode: str, how: str, llm: ChatJockey, messages: list[BaseMessage]) -> Any:
    """One answer to `messages` by invoke, stream (aggregated) or batch."""
    if mode == "sync":
        if how == "invoke":
            return llm.invoke(messages)
        if how == "batch":
            return llm.batch([messages])[0]
        return merged(list(llm.stream(messages)))

    async def go() -> Any:
        if how == "invoke":
            return await llm.ainvoke(messages)
        if how == "batch":
            return (await llm.abatch([messages]))[0]
        return merged([c async for c in llm.astream(messages)])

    return asyncio.run(go())


def conversation(mode: str, how: str, llm: ChatJockey) -> list[AIMessage]:
    """An opening question and a follow-up; the two answers."""
    history: list[BaseMessage] = [HumanMessage(OPENING)]
    first = answer(mode, how, llm, history)
    history += [first, HumanMessage(FOLLOW_UP)]
    return [first, answer(mode, how, llm, history)]


@pytest.mark.parametrize("how", ["invoke", "stream", "batch"])
def test_a_global_cache_does_not_merge_two_conversations(
    emulator: Emulator, global_cache: InMemoryCache, mode: str, how: str
) -> None:
    llm = ChatJockey(**emulator.chat_kwargs())
    one = conversation(mode, how, llm)
    two = conversation(mode, how, llm)

    sessions = [[m.response_metadata["session_id"] for m in c] for c in (one, two)]
    assert sessions[0][0] == sessions[0][1]  # each conversation keeps its session
    assert sessions[1][0] == sessions[1][1]
    assert sessions[0][0] != sessions[1][0]  # and never the other's
    assert not any(m.response_metadata.get("cached") for m in one + two)


@pytest.mark.parametrize("how", ["invoke", "batch"])
def test_an_answer_served_from_the_models_cache_continues_no_session(
    emulator: Emulator, mode: str, how: str
) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), cache=InMemoryCache())
    one = conversation(mode, how, llm)
    two = conversation(mode, how, llm)

    assert two[0].response_metadata["cached"] is True
    assert two[0].response_metadata["id"] == one[0].response_metadata["id"]
    assert "session_id" not in two[0].response_metadata
    # The follow-up to the cached answer is a new session, not the first one's.
    assert (
        two[1].response_metadata["session_id"] != one[0].response_metadata["session_id"]
    )
    assert (
        one[0].response_metadata["session_id"] == one[1].response_metadata["session_id"]
    )


def test_cache_true_uses_the_global_cache_with_the_same_policy(
    emulator: Emulator, global_cache: InMemoryCache
) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), cache=True)
    first = llm.invoke(OPENING)
    again = llm.invoke(OPENING)
    assert again.text == first.text
    assert again.response_metadata["cached"] is True
    assert "session_id" not in again.response_metadata


def test_chatjockey_is_not_cached_by_default() -> None:
    assert ChatJockey(knowledge_store_id="ks_x", api_key="k").cache is False


def test_the_cache_key_holds_no_setting_in_plain_text(emulator: Emulator) -> None:
    cache = InMemoryCache()
    llm = ChatJockey(
        **{**emulator.chat_kwargs(), "base_url": emulator.base_url + "?token=t0ps"},
        default_headers={"authorization": "Bearer proxy-secret"},
        cache=cache,
    )
    llm.invoke(OPENING)
    ((prompt, key),) = cache._cache
    assert key.startswith("langchain_jockey:")
    for secret in ("t0ps", "proxy-secret", emulator.api_key):
        assert secret not in key
        assert secret not in prompt
    # Equal settings share the key; other settings do not.
    assert llm._get_llm_string() == llm._get_llm_string()
    assert (
        llm._get_llm_string() != ChatJockey(**emulator.chat_kwargs())._get_llm_string()
    )
