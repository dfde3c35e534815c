from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from langchain_jockey import ChatJockey, JockeyError
from langchain_jockey.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test (overriding the shared one): fault counters and
    request logs start empty."""
    with Emulator(keepalive_interval=0.05, max_stall=10) as emu:
        yield emu


def checked_out(client: httpx.Client | httpx.AsyncClient) -> int:
    """Connections of the client's pool checked out by a request in flight.

    httpcore keeps a request in `_requests` until its response is closed, and
    the connection it holds is neither idle nor closed until then.
    """
    pool = client._transport._pool  # type: ignore[union-attr]
    busy = [c for c in pool.connections if not c.is_idle() and not c.is_closed()]
    return max(len(busy), len(pool._requests))


@dataclass
class Outcome:
    """What a consumer got from one streamed answer."""

    text: str
    message: Any
    error: JockeyError | None
    busy: int  # connections still checked out afterwards


def consume(mode: str, llm: ChatJockey, question: str, **kwargs: Any) -> Outcome:
    """Stream an answer to the end (or the error), then inspect the pool."""
    if mode == "sync":
        chunks: list[Any] = []
        error = None
        try:
            chunks.extend(llm.stream(question, **kwargs))
        except JockeyError as exc:
            error = exc
        return _outcome(chunks, error, checked_out(llm._clients.sync(None)))

    async def go() -> Outcome:
        chunks: list[Any] = []
        error = None
        try:
            async for chunk in llm.astream(question, **kwargs):
                chunks.append(chunk)
        except JockeyError as exc:
            error = exc
        return _outcome(chunks, error, checked_out(await llm._clients.async_(None)))

    return asyncio.run(go())


def _outcome(chunks: list[Any], error: JockeyError | None, busy: int) -> Outcome:
    message = None
    if chunks:
        message = chunks[0]
        for chunk in chunks[1:]:
            message += chunk
    return Outcome("".join(c.text for c in chunks), message, error, busy)
