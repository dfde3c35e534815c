"""The official TwelveLabs SDK, pointed at the emulator, parses everything it sends.

The SDK validates every event and response with its pydantic models, so a
field of the wrong type or shape in the emulator's output fails here. Its
concatenated deltas also equal ChatJockey's text for the same request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from twelvelabs import AsyncTwelveLabs, TwelveLabs

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import DEMO_STORE_ID, STORES

MARKET = STORES[DEMO_STORE_ID].videos[1].item_id
SCHEMA = {
    "type": "object",
    "properties": {
        "moments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "start_sec": {"type": "number"},
                },
            },
        }
    },
}
CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "structured": {
        "text": {"format": {"type": "json_schema", "name": "moments", "schema": SCHEMA}}
    },
    "intermediate": {"include": ["intermediate_outputs"]},
    "selections": {
        "selections": [{"kind": "item", "id": MARKET}],
        "question": "What is sold in {{sel:0}}?",
    },
    "instructions": {"instructions": "Use bullet points."},
}


@pytest.fixture
def sdk(emulator) -> TwelveLabs:
    return TwelveLabs(api_key=emulator.api_key, base_url=emulator.base_url)


def _request(case: dict[str, Any]) -> dict[str, Any]:
    args = dict(case)
    question = args.pop("question", "When do the fishing boats leave?")
    return {
        "knowledge_store_id": DEMO_STORE_ID,
        "input": [{"type": "message", "role": "user", "content": question}],
        **args,
    }


def _final_text(response: Any) -> str:
    return "".join(
        part.text
        for item in response.output
        if item.type == "message" and item.phase == "final_answer"
        for part in item.content
    )


@pytest.mark.parametrize("case", list(CASES))
def test_sdk_parses_the_stream_and_its_deltas_match_chatjockey(
    sdk, emulator, case
) -> None:
    events = list(sdk.responses.create_stream(**_request(CASES[case])))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    completed = events[-1].response
    assert completed.usage.output_tokens > 0
    assert completed.created_at is not None  # parsed as a datetime
    answer_ids = {
        e.item.id
        for e in events
        if e.type == "response.output_item.added" and e.item.phase == "final_answer"
    }
    deltas = "".join(
        e.delta
        for e in events
        if e.type == "response.output_text.delta" and e.item_id in answer_ids
    )
    assert deltas == _final_text(completed)

    request = _request(CASES[case])
    options = {
        k: v
        for k, v in request.items()
        if k in ("instructions", "include", "selections", "text")
    }
    llm = ChatJockey(**emulator.chat_kwargs())
    assert llm.invoke(request["input"][0]["content"], **options).text == deltas


@pytest.mark.parametrize("case", list(CASES))
def test_sdk_parses_the_non_streaming_response(sdk, case) -> None:
    response = sdk.responses.create(**_request(CASES[case]))
    assert response.status == "completed"
    assert response.object == "response"
    assert response.session_id.startswith("sess_")
    assert _final_text(response)
    if case != "structured":
        annotation = response.output[-1].content[0].annotations[0]
        assert annotation.type == "video_citation"
        assert annotation.start_sec < annotation.end_sec


def test_sdk_follow_up_in_a_session(sdk) -> None:
    first = sdk.responses.create(**_request({}))
    follow = list(
        sdk.responses.create_stream(
            **_request({"question": "What happens next?"}), session_id=first.session_id
        )
    )
    assert follow[0].response.session_id == first.session_id
    assert follow[-1].response.status == "completed"


def test_async_sdk_parses_the_stream(emulator) -> None:
    async def main() -> list[Any]:
        client = AsyncTwelveLabs(api_key=emulator.api_key, base_url=emulator.base_url)
        return [
            e
            async for e in client.responses.create_stream(
                **_request(CASES["intermediate"])
            )
        ]

    events = asyncio.run(main())
    assert "response.function_call_arguments.done" in [e.type for e in events]
