"""LangChain's v3 streaming (`stream_events(version="v3")`, beta upstream), pinned.

Under a v3 graph stream, LangGraph's messages handler takes protocol events
(`on_stream_event`) and drops the chunks `stream` reports, so JockeyTool
reads `ChatJockey.stream_events(version="v3")` there: Jockey's tokens and its
progress still arrive live, before the tool's result. v1 and v2 are pinned in
test_agents.py. A change upstream shows up here.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.stream.transformers import CustomTransformer

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from tests.agents.test_agents import FIRST, agent_for
from tests.support import v3_stream

pytestmark = pytest.mark.filterwarnings("ignore:The v3 streaming protocol")


def graph_events(mode: str, agent: Any) -> list[tuple[str, Any]]:
    """What a v3 graph stream shows, in order: (kind, detail)."""
    value = {"messages": [HumanMessage("Tell me about the save")]}
    options = {"version": "v3", "transformers": [CustomTransformer]}

    def kind(event: dict[str, Any]) -> tuple[str, Any]:
        method, data = event["method"], event["params"]["data"]
        if method == "custom" and data.get("source") == "jockey":
            return "progress", data
        if method == "tools":
            return data["event"], data
        if method == "messages" and isinstance(data[0], dict):
            protocol, meta = data
            if meta.get("ls_provider") == "twelvelabs":
                return "jockey-" + protocol["event"], protocol
        return method, data

    if mode == "sync":
        return [kind(e) for e in agent.stream_events(value, **options)]

    async def go() -> list[tuple[str, Any]]:
        run = await agent.astream_events(value, **options)
        return [kind(e) async for e in run]

    return asyncio.run(go())


def test_under_v3_jockey_tokens_and_progress_stream_before_the_tool_result(
    mode: str, emulator: Emulator
) -> None:
    seen = graph_events(mode, agent_for(emulator, questions=[FIRST]))
    kinds = [k for k, _ in seen]
    finished = kinds.index("tool-finished")
    deltas = [
        d["delta"]["text"]
        for k, d in seen[:finished]
        if k == "jockey-content-block-delta" and d["delta"]["type"] == "text-delta"
    ]
    assert len(deltas) > 3  # live, token by token
    progress = [d for k, d in seen[:finished] if k == "progress"]
    assert {p["type"] for p in progress} == {"commentary", "step"}
    steps = [s for p in progress if p["type"] == "step" for s in p["steps"]]
    assert [s["type"] for s in steps] == ["server_tool_call", "server_tool_result"]
    assert steps[0]["name"]
    result = seen[finished][1]["output"]
    assert "".join(deltas) in result.content  # the streamed text is the answer
    assert result.artifact["session_id"].startswith("sess_")


def test_under_v3_each_jockey_delta_is_one_event_with_citations_at_the_end(
    mode: str, emulator: Emulator
) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), include=["intermediate_outputs"])
    chunks = list(llm.stream(FIRST))
    answer, events = v3_stream(mode, llm, FIRST)

    def deltas(kind: str) -> list[str]:
        return [
            e["delta"][kind.split("-")[0]]
            for e in events
            if e["event"] == "content-block-delta" and e["delta"]["type"] == kind
        ]

    texts = [c.text for c in chunks if c.text]
    reasoning = [
        c.additional_kwargs["reasoning_content"]
        for c in chunks
        if c.additional_kwargs.get("reasoning_content")
    ]
    assert deltas("text-delta") == texts
    assert deltas("reasoning-delta") == reasoning
    finished = [e["content"] for e in events if e["event"] == "content-block-finish"]
    kinds = [b["type"] for b in finished]
    assert kinds == ["reasoning", "server_tool_call", "server_tool_result", "text"]
    notes = finished[-1]["annotations"]
    assert notes
    assert all(n["type"] == "citation" for n in notes)
    assert {"start_sec", "end_sec", "item_id"} <= set(notes[0]["extras"])
    assert answer.output_message.response_metadata["session_id"].startswith("sess_")


def test_v1_and_v2_graph_streams_still_get_chunks(emulator: Emulator) -> None:
    # The v3 path is taken only when a v3 handler listens.
    agent = agent_for(emulator, questions=[FIRST])
    value = {"messages": [HumanMessage("Tell me")]}
    tokens = [
        m
        for m, meta in agent.stream(value, stream_mode="messages")
        if meta.get("ls_provider") == "twelvelabs" and m.text
    ]
    assert len(tokens) > 3

    async def v2() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            events = [e async for e in agent.astream_events(value, version="v2")]
        return sum(
            e["event"] == "on_chat_model_stream" and "jockey" in e.get("tags", [])
            for e in events
        )

    assert asyncio.run(v2()) > 3
