from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_jockey import ChatJockey


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test once through the sync API and once through the async API."""
    return request.param


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def stream(mode: str) -> Callable[..., list[AIMessageChunk]]:
    """`stream` or `astream`, collected into a list."""

    def go(chat: ChatJockey, value: Any, /, **kwargs: Any) -> list[AIMessageChunk]:
        if mode == "sync":
            return list(chat.stream(value, **kwargs))

        async def collect() -> list[AIMessageChunk]:
            return [c async for c in chat.astream(value, **kwargs)]

        return _run(collect())

    return go


@pytest.fixture
def invoke(mode: str) -> Callable[..., Any]:
    """`invoke` or `ainvoke`."""

    def go(chat: ChatJockey, value: Any, /, **kwargs: Any) -> Any:
        if mode == "sync":
            return chat.invoke(value, **kwargs)
        return _run(chat.ainvoke(value, **kwargs))

    return go
