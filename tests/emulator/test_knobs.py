"""Realism knobs: thinking time with keepalives, pacing, rate limits, many streams."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from langchain_jockey.emulator import DEMO_API_KEY, Emulator
from tests.emulator.conftest import answer_text, body, frames, stream_events


def test_first_token_delay_sends_keepalives_sharing_the_sequence(client) -> None:
    with (
        Emulator(first_token_delay=0.5, keepalive_interval=0.1) as emu,
        httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as c,
    ):
        events = stream_events(c, body())
    kinds = [e["type"] for e in events]
    first_item = kinds.index("response.output_item.added")
    assert kinds[2:first_item].count("keepalive") >= 3
    assert set(kinds[2:first_item]) == {"keepalive"}
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert all(
        set(e) == {"type", "sequence_number"}
        for e in events
        if e["type"] == "keepalive"
    )


def test_delta_delay_paces_the_stream() -> None:
    with (
        Emulator(delta_delay=0.02) as emu,
        httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as c,
    ):
        started = time.monotonic()
        events = stream_events(c, body())
        elapsed = time.monotonic() - started
    deltas = sum(e["type"] == "response.output_text.delta" for e in events)
    assert elapsed >= 0.02 * deltas * 0.9


def test_rate_limit_answers_429_with_retry_after() -> None:
    with (
        Emulator(rate_limit=2, rate_window=30) as emu,
        httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as c,
    ):
        assert c.post("/responses", json=body()).status_code == 200
        assert c.post("/responses", json=body()).status_code == 200
        limited = c.post("/responses", json=body())
    assert limited.status_code == 429
    assert limited.json()["code"] == "too_many_requests"
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    assert "try again later after 20" in limited.json()["message"]


def test_two_hundred_concurrent_streams_each_get_their_own_session(emulator) -> None:
    questions = [
        "When do the fishing boats leave?",
        "Who saves a penalty?",
        "How is the loaf shaped?",
        "Where does the rider crash?",
    ]

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, str, str]:
        question = questions[i % len(questions)]
        async with client.stream(
            "POST", "/responses", json=body(question, stream=True)
        ) as response:
            text = (await response.aread()).decode()
        got = frames(text)
        assert got[-1] == (None, "[DONE]")
        events = [json.loads(data) for _, data in got[:-1]]
        sessions = {e["response"]["session_id"] for e in events if "response" in e}
        assert len(sessions) == 1
        return question, sessions.pop(), answer_text(events)

    async def main() -> list[tuple[str, str, str]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=emulator.base_url,
            headers={"x-api-key": DEMO_API_KEY},
            limits=limits,
            timeout=60,
        ) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    results = asyncio.run(main())
    assert len({session for _, session, _ in results}) == 200
    with httpx.Client(
        base_url=emulator.base_url, headers={"x-api-key": DEMO_API_KEY}
    ) as c:
        expected = {q: answer_text(stream_events(c, body(q))) for q in questions}
    for question, _, text in results:
        assert text == expected[question]


def test_length_header_gives_exactly_that_many_deltas(client) -> None:
    from langchain_jockey.emulator import LENGTH_HEADER

    events = stream_events(client, body(), **{LENGTH_HEADER: "1234"})
    assert sum(e["type"] == "response.output_text.delta" for e in events) == 1234
    assert events[-1]["response"]["usage"]["output_tokens"] == 1234
    assert (
        client.post(
            "/responses", json=body(), headers={LENGTH_HEADER: "lots"}
        ).status_code
        == 400
    )
