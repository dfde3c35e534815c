"""Consumers that stop early, and connection reuse, over real loopback sockets."""

from __future__ import annotations

import asyncio

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from tests.reliability.conftest import checked_out

QUESTION = "When do the fishing boats leave?"


@pytest.fixture
def slow():
    """Deltas 20 ms apart, so a stream is still open when the consumer stops."""
    with Emulator(delta_delay=0.02) as emu:
        yield emu


def test_break_releases_the_connection(slow) -> None:
    llm = ChatJockey(**slow.chat_kwargs())
    for chunk in llm.stream(QUESTION):
        assert chunk.text
        assert (
            checked_out(llm._clients.sync(None)) == 1
        )  # the probe sees the open stream
        break
    assert checked_out(llm._clients.sync(None)) == 0
    assert len(slow.requests) == 1


def test_generator_close_releases_the_connection(slow) -> None:
    llm = ChatJockey(**slow.chat_kwargs())
    chunks = llm.stream(QUESTION)
    next(chunks)
    chunks.close()
    assert checked_out(llm._clients.sync(None)) == 0


async def _settle(llm: ChatJockey) -> None:
    # Core's astream leaves the generator it wraps to the loop's async-generator
    # finalizer, which closes it (and the response) a few loop iterations later.
    for _ in range(100):
        if checked_out(await llm._clients.async_(None)) == 0:
            return
        await asyncio.sleep(0)


async def test_async_break_releases_the_connection(slow) -> None:
    llm = ChatJockey(**slow.chat_kwargs())
    async for _ in llm.astream(QUESTION):
        assert checked_out(await llm._clients.async_(None)) == 1
        break
    await _settle(llm)
    assert checked_out(await llm._clients.async_(None)) == 0


async def test_aclose_releases_the_connection(slow) -> None:
    llm = ChatJockey(**slow.chat_kwargs())
    chunks = llm.astream(QUESTION)
    await chunks.__anext__()
    await chunks.aclose()
    await _settle(llm)
    assert checked_out(await llm._clients.async_(None)) == 0


async def test_task_cancellation_mid_stream_releases_the_connection(slow) -> None:
    llm = ChatJockey(**slow.chat_kwargs())
    got: list[str] = []

    async def consume() -> None:
        async for chunk in llm.astream(QUESTION):
            got.append(chunk.text)

    task = asyncio.create_task(consume())
    while len(got) < 2:
        await asyncio.sleep(0.005)
    assert checked_out(await llm._clients.async_(None)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(await llm._clients.async_(None)) == 0
    assert len(slow.requests) == 1


def test_an_answer_closes_its_connection_when_its_events_are_complete(
    mode, emulator
) -> None:
    # Closed, not drained: what a server sends after the terminal event is
    # never waited for (anthropic-sdk and openai-python do the same). The
    # price is a new connection per answer, which the benchmarks measure.
    llm = ChatJockey(**emulator.chat_kwargs())
    if mode == "sync":
        for _ in range(3):
            list(llm.stream(QUESTION))
            llm.invoke(QUESTION)
            pool = llm._clients.sync(None)._transport._pool
            assert checked_out(llm._clients.sync(None)) == 0
            assert all(c.is_closed() for c in pool.connections)
        return

    async def go() -> None:
        for _ in range(3):
            [c async for c in llm.astream(QUESTION)]
            await llm.ainvoke(QUESTION)
            client = await llm._clients.async_(None)
            assert checked_out(client) == 0
            assert all(c.is_closed() for c in client._transport._pool.connections)

    asyncio.run(go())


# Run in a child with -X dev and -W error::ResourceWarning: an unclosed socket
# or transport is reported on stderr as it is collected.
_CLIENTS_PER_LOOP = """
import asyncio, gc
from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator

with Emulator(delta_delay=0) as emu:
    llm = ChatJockey(**emu.chat_kwargs())
    for _ in range(3):  # a new event loop each time, as asyncio.run makes
        asyncio.run(llm.ainvoke("Who scores first?"))
    llm.invoke("Who scores first?")
    llm.close()

    async def scoped():
        async with ChatJockey(**emu.chat_kwargs()) as scoped_llm:
            await scoped_llm.ainvoke("Who scores first?")
            scoped_llm.invoke("Who scores first?")

    asyncio.run(scoped())
    del llm
    gc.collect()
print("clean exit")
"""


def test_async_clients_are_closed_with_their_event_loop_no_resource_warning() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            _CLIENTS_PER_LOOP,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "clean exit" in result.stdout
    assert "ResourceWarning" not in result.stderr, result.stderr
    assert "unclosed" not in result.stderr, result.stderr
