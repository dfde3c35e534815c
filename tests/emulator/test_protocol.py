"""The emulator's wire format against docs/protocol.md, as a raw httpx client sees it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from langchain_jockey.emulator import DEMO_STORE_ID
from tests.emulator.conftest import answer_text, body, stream_events

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_stream_follows_the_documented_event_order(client) -> None:
    events = stream_events(client, body())
    kinds = [e["type"] for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 10  # token-sized pieces
    assert kinds[4 + deltas :] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_created_snapshot_has_session_rfc3339_time_and_both_type_fields(client) -> None:
    created = stream_events(client, body())[0]["response"]
    assert re.fullmatch(f"resp_{UUID}", created["id"])
    assert re.fullmatch(f"sess_{UUID}", created["session_id"])
    assert created["type"] == created["object"] == "response"
    assert created["status"] == "in_progress"
    assert created["incomplete_details"] is None
    assert created["output"] == []
    assert created["knowledge_store_id"] == DEMO_STORE_ID
    assert "usage" not in created
    assert RFC3339.match(created["created_at"])
    datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))


def test_items_parts_and_annotations_arrive_as_documented(client) -> None:
    events = stream_events(client, body())
    by_type = {e["type"]: e for e in events}
    added = by_type["response.output_item.added"]["item"]
    assert added["type"] == "message"
    assert added["phase"] == "final_answer"
    assert added["status"] == "in_progress"
    assert added["content"] == [{"type": "output_text", "text": "", "annotations": []}]
    assert by_type["response.content_part.added"]["part"] == {
        "type": "output_text",
        "text": "",
        "annotations": [],
    }
    text = answer_text(events)
    assert by_type["response.output_text.done"]["text"] == text
    part = by_type["response.content_part.done"]["part"]
    assert part["text"] == text
    assert part["annotations"]  # filled in on content_part.done
    assert by_type["response.output_item.done"]["item"]["status"] == "completed"
    assert all("object" not in e for e in events)  # events have no object field
    final = by_type["response.completed"]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0] == part
    assert set(final["usage"]) == {"input_tokens", "output_tokens"}
    assert final["usage"]["output_tokens"] == sum(
        e["type"] == "response.output_text.delta" for e in events
    )


def test_item_ids_follow_the_session(client) -> None:
    events = stream_events(client, body())
    session = events[0]["response"]["session_id"]
    assert events[2]["item"]["id"] == f"msg_{session}_0"


def test_non_streaming_returns_the_final_response_object(client) -> None:
    streamed = stream_events(client, body())[-1]["response"]
    response = client.post("/responses", json=body(stream=False))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    obj = response.json()
    assert obj["status"] == "completed"
    assert set(obj) == set(streamed)
    assert (
        obj["output"][0]["content"][0]["text"]
        == streamed["output"][0]["content"][0]["text"]
    )
    # Equal but for the media URLs' tokens, which expire an hour after each
    # request: two requests a second apart get two.
    assert unsigned(obj["output"][0]["content"][0]["annotations"]) == unsigned(
        streamed["output"][0]["content"][0]["annotations"]
    )


def unsigned(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The annotations with each media URL's token (`expires.signature`) as `T`."""
    token = re.compile(r"/\d+\.[\w-]+/")
    return [
        {k: token.sub("/T/", v) if k.endswith("_url") else v for k, v in a.items()}
        for a in annotations
    ]


def test_connection_is_kept_alive_across_requests(client) -> None:
    for _ in range(3):
        stream_events(client, body())
    pool = client._transport._pool  # one connection served all three
    assert len(pool.connections) == 1
