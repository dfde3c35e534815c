from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def llm(emulator: Emulator) -> ChatJockey:
    return ChatJockey(**emulator.chat_kwargs())


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def run(
    mode: str, runnable: Any, value: Any, method: str = "invoke", **kwargs: Any
) -> Any:
    """`invoke`/`stream` (collected) on a runnable, sync or async."""
    if mode == "sync":
        result = getattr(runnable, method)(value, **kwargs)
        return list(result) if method == "stream" else result

    async def go() -> Any:
        if method == "stream":
            return [x async for x in runnable.astream(value, **kwargs)]
        return await getattr(runnable, "a" + method)(value, **kwargs)

    return asyncio.run(go())


def merged(chunks: list[Any]) -> Any:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total
