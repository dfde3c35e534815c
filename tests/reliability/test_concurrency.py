"""One shared ChatJockey under load: no cross-talk between concurrent answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from langchain_jockey.emulator._answers import compose
from langchain_jockey.emulator._store import STORES
from tests.reliability.conftest import checked_out

QUESTIONS = [
    "When do the fishing boats leave?",
    "Who saves the penalty?",
    "How is the loaf shaped?",
    "Where does the rider crash?",
]


def expected(i: int) -> tuple[str, str]:
    """Question i, and the answer only request i can get (its own ticket number first)."""
    question = QUESTIONS[i % len(QUESTIONS)]
    instructions = f'Start your answer with "Ticket {i}:"'
    store = next(iter(STORES.values()))
    return question, compose(
        store, question, None, instructions=instructions, within=None
    ).text


def check(results: list[tuple[int, str, str]], n: int) -> None:
    assert sorted(i for i, _, _ in results) == list(range(n))
    assert all(
        text == expected(i)[1] for i, text, _ in results
    )  # each answer is its own
    assert len({text for _, text, _ in results}) == n
    assert len({session for _, _, session in results}) == n


async def _run(llm: ChatJockey, n: int) -> list[tuple[int, str, str]]:
    async def one(i: int) -> tuple[int, str, str]:
        question, _ = expected(i)
        chunks = [
            c
            async for c in llm.astream(
                question, instructions=f'Start your answer with "Ticket {i}:"'
            )
        ]
        total = chunks[0]
        for chunk in chunks[1:]:
            total += chunk
        return i, total.text, total.response_metadata["session_id"]

    return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.slow
def test_500_concurrent_astreams_on_one_instance() -> None:
    # A pool wide enough not to queue: httpcore re-scans queued requests against
    # every connection on each request start and close (O(queued x connections)),
    # which at 400 queued streams costs tens of seconds of CPU by itself.
    with Emulator() as emu:

        async def main() -> tuple[list[tuple[int, str, str]], int]:
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=500))
            llm = ChatJockey(**emu.chat_kwargs(), http_async_client=client)
            results = await _run(llm, 500)
            busy = checked_out(client)
            await client.aclose()
            return results, busy

        results, busy = asyncio.run(main())
    check(results, 500)
    assert busy == 0


def test_the_pool_stays_bounded_under_load() -> None:
    with Emulator(delta_delay=0.001) as emu:

        async def main() -> tuple[list[tuple[int, str, str]], int, int]:
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=10))
            llm = ChatJockey(**emu.chat_kwargs(), http_async_client=client)
            results = await _run(llm, 120)
            pool = client._transport._pool
            return results, len(pool.connections), checked_out(client)

        results, connections, busy = asyncio.run(main())
    check(results, 120)
    assert connections <= 10
    assert busy == 0


def test_50_threads_streaming_on_one_instance() -> None:
    with Emulator() as emu:
        llm = ChatJockey(**emu.chat_kwargs())

        def one(i: int) -> tuple[int, str, str]:
            question, _ = expected(i)
            chunks = list(
                llm.stream(
                    question, instructions=f'Start your answer with "Ticket {i}:"'
                )
            )
            total = chunks[0]
            for chunk in chunks[1:]:
                total += chunk
            return i, total.text, total.response_metadata["session_id"]

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(50)))
        assert checked_out(llm._clients.sync(None)) == 0
    check(results, 50)


@pytest.mark.slow
def test_1000_concurrent_long_answers_on_the_default_pool_none_queued() -> None:
    # Every answer is held open for 3 s of keepalives before its first token, so
    # all 1000 are open at once. The default pool (1,000 connections) must take
    # them all: the emulator sees every request while none has finished.
    with Emulator(first_token_delay=3.0, keepalive_interval=0.5) as emu:

        async def main() -> tuple[list[tuple[int, str, str]], int]:
            llm = ChatJockey(**emu.chat_kwargs())
            run = asyncio.ensure_future(_run(llm, 1000))
            seen_open = 0
            while not run.done():
                await asyncio.sleep(0.05)
                seen_open = max(seen_open, len(emu.requests))
                if seen_open == 1000:
                    break
            assert not run.done(), "answers finished before all 1000 were open"
            results = await run
            await llm.aclose()
            return results, seen_open

        results, seen_open = asyncio.run(main())
    assert seen_open == 1000
    check(results, 1000)


def test_a_full_pool_says_which_limit_fired_and_how_to_raise_it() -> None:
    from langchain_jockey import JockeyTimeoutError

    with Emulator(first_token_delay=2.0, keepalive_interval=0.2) as emu:

        async def main() -> list[object]:
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1))
            llm = ChatJockey(
                **emu.chat_kwargs(),
                http_async_client=client,
                timeout=httpx.Timeout(10.0, pool=0.3),
                max_retries=0,
            )
            outcomes = await asyncio.gather(
                llm.ainvoke(QUESTIONS[0]),
                llm.ainvoke(QUESTIONS[1]),
                return_exceptions=True,
            )
            await client.aclose()
            return outcomes

        outcomes = asyncio.run(main())
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], JockeyTimeoutError)
    assert "pool" in str(errors[0])
    assert "max_connections" in str(errors[0])
