from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, Emulator


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.base_url, headers={"x-api-key": DEMO_API_KEY}, timeout=30
    ) as c:
        yield c


def body(
    question: str = "When do the fishing boats leave?", **extra: Any
) -> dict[str, Any]:
    return {
        "knowledge_store_id": DEMO_STORE_ID,
        "input": [{"type": "message", "role": "user", "content": question}],
        **extra,
    }


def frames(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE frame, as a raw client sees them."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((name, "\n".join(data)))
    return out


def stream_events(
    client: httpx.Client, payload: dict[str, Any], **headers: str
) -> list[dict[str, Any]]:
    """POST a streaming request; return its JSON events (asserting the framing)."""
    response = client.post(
        "/responses", json={**payload, "stream": True}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    got = frames(response.text)
    assert got[-1] == (None, "[DONE]")
    events = []
    for name, data in got[:-1]:
        event = json.loads(data)
        assert name == event["type"]  # the event line repeats the JSON type
        events.append(event)
    return events


def answer_text(events: list[dict[str, Any]]) -> str:
    final = {
        e["item"]["id"]
        for e in events
        if e["type"] == "response.output_item.added"
        and e["item"].get("phase") == "final_answer"
    }
    return "".join(
        e["delta"]
        for e in events
        if e["type"] == "response.output_text.delta" and e["item_id"] in final
    )
