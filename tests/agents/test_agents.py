"""Jockey in agent pipelines: JockeyTool under create_agent, streaming, sessions,
errors, cancellation, and ChatJockey as a Jockey-only agent. Against the emulator."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel, Field

from langchain_jockey import ChatJockey, JockeyAuthenticationError, JockeyTool
from langchain_jockey.emulator import FAULT_HEADER
from tests.agents.conftest import planner

FIRST, SECOND = "Who saves the penalty?", "What happens right after that?"


def agent_for(emulator, questions=(FIRST, SECOND), **llm_kwargs: Any):
    llm = ChatJockey(**{**emulator.chat_kwargs(), **llm_kwargs})
    tool = JockeyTool(llm=llm, store_name="the demo videos")
    return create_agent(planner(list(questions)), tools=[tool])


def run(mode: str, agent, text: str, **kwargs: Any) -> dict[str, Any]:
    value = {"messages": [HumanMessage(text)]}
    if mode == "sync":
        return agent.invoke(value, **kwargs)
    return asyncio.run(agent.ainvoke(value, **kwargs))


def stream(mode: str, agent, text: str, **kwargs: Any) -> list[tuple[str, Any]]:
    value = {"messages": [HumanMessage(text)]}
    modes = ["messages", "custom", "updates"]
    if mode == "sync":
        return list(agent.stream(value, stream_mode=modes, **kwargs))

    async def go() -> list[tuple[str, Any]]:
        return [
            part async for part in agent.astream(value, stream_mode=modes, **kwargs)
        ]

    return asyncio.run(go())


def tool_results(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


def test_the_agent_calls_jockey_and_gets_cited_moments(mode, emulator) -> None:
    state = run(mode, agent_for(emulator, questions=[FIRST]), "Tell me about the save")
    (result,) = tool_results(state)
    assert result.status == "success"
    artifact = result.artifact
    assert artifact["provider"] == "twelvelabs"
    assert artifact["session_id"].startswith("sess_")
    assert artifact["citations"]
    assert artifact["usage"]["total_tokens"] > 0
    listed = re.findall(
        r"^\[(\d+)\] (.+) (\d\d:\d\d)–(\d\d:\d\d)$", result.content, re.M
    )
    assert len(listed) == len(artifact["citations"])
    for (number, title, start, end), note in zip(listed, artifact["citations"]):
        assert note["title"] == title
        assert start <= end
        assert f"[{number}]" in result.content.split("Cited moments:")[0]
    assert state["messages"][-1].content.startswith("Planner: ")


def test_a_second_call_in_the_conversation_continues_the_jockey_session(
    mode, emulator
) -> None:
    before = len(emulator.requests)
    state = run(mode, agent_for(emulator), "Tell me about the save")
    first, second = tool_results(state)
    assert first.artifact["session_id"] == second.artifact["session_id"]
    sent = emulator.requests[before:]
    assert "session_id" not in sent[0].body
    assert sent[1].body["session_id"] == first.artifact["session_id"]
    assert sent[1].body["input"][0]["content"] == SECOND  # only the new question


def test_two_conversations_never_share_a_session(mode, emulator) -> None:
    agent = agent_for(emulator, questions=[FIRST])
    one = tool_results(run(mode, agent, "a"))[0].artifact["session_id"]
    two = tool_results(run(mode, agent, "b"))[0].artifact["session_id"]
    assert one != two


def test_an_explicit_session_in_config_wins(mode, emulator) -> None:
    agent = agent_for(emulator, questions=[FIRST])
    first = tool_results(run(mode, agent, "a"))[0].artifact["session_id"]
    config = {"configurable": {"jockey_session_id": first}}
    again = tool_results(run(mode, agent, "b", config=config))[0]
    assert again.artifact["session_id"] == first
    assert emulator.requests[-1].body["session_id"] == first


def test_streaming_shows_progress_then_jockey_tokens_then_the_planner(
    mode, emulator
) -> None:
    parts = stream(mode, agent_for(emulator, questions=[FIRST]), "Tell me")
    kinds = []
    for kind, data in parts:
        if kind == "custom" and data.get("source") == "jockey":
            kinds.append("progress")
        elif kind == "messages":
            message, meta = data
            if isinstance(message, ToolMessage):
                kinds.append("tool-result")
            elif meta.get("ls_provider") == "twelvelabs" and message.text:
                assert "jockey" in meta.get("tags", [])
                assert isinstance(message, AIMessageChunk)
                kinds.append("jockey-token")
            elif meta.get("langgraph_node") == "model" and message.text:
                kinds.append("planner")
    assert kinds.index("progress") < kinds.index("jockey-token")
    last_token = len(kinds) - 1 - kinds[::-1].index("jockey-token")
    assert kinds.count("jockey-token") > 3  # live, token by token
    assert last_token < kinds.index("tool-result") < kinds.index("planner")


def test_outside_a_graph_progress_reaches_callbacks(emulator) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Progress(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        def on_custom_event(self, name, data, **kwargs) -> None:
            if name == "jockey_progress":
                self.events.append(data)

    handler = Progress()
    tool = JockeyTool(llm=ChatJockey(**emulator.chat_kwargs()))
    call = {
        "name": tool.name,
        "args": {"question": FIRST},
        "id": "c1",
        "type": "tool_call",
    }
    result = tool.invoke(call, config={"callbacks": [handler]})
    assert isinstance(result, ToolMessage)
    assert any(e["type"] == "commentary" for e in handler.events)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("status=400;times=9", "BadRequest"),
        ("status=404;times=9", "NotFound"),
        ("status=429;times=9;retry_after=0", "RateLimit"),
        ("drop_after=8", "StreamInterrupted"),
    ],
)
def test_failures_the_agent_can_act_on_become_error_results(
    mode, emulator, fault, words
) -> None:
    agent = agent_for(
        emulator,
        questions=[FIRST],
        default_headers={FAULT_HEADER: fault},
        max_retries=1,
    )
    (result,) = tool_results(run(mode, agent, "Tell me"))
    assert result.status == "error"
    assert words in result.content
    assert "could not answer" in result.content


def test_authentication_errors_raise(mode, emulator) -> None:
    agent = agent_for(emulator, questions=[FIRST], api_key="tlk_wrong")
    with pytest.raises(JockeyAuthenticationError):
        run(mode, agent, "Tell me")


def test_cancelling_the_agent_run_closes_the_jockey_stream() -> None:
    from tests.reliability.hostile import CREATED, chunk, delta, head, hostile, trickle

    def slow(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED + delta("The keeper "))
        trickle(server, conn, b'data: {"type":"keepalive"}\n\n', every=0.05, limit=30)

    with hostile(slow) as server:
        llm = ChatJockey(base_url=server.url, api_key="k", knowledge_store_id="ks_x")
        agent = create_agent(planner([FIRST]), tools=[JockeyTool(llm=llm)])

        async def main() -> None:
            async def consume() -> None:
                value = {"messages": [HumanMessage("Tell me")]}
                async for kind, data in agent.astream(value, stream_mode=["messages"]):
                    message, _ = data if kind == "messages" else (None, None)
                    if getattr(message, "text", "") == "The keeper ":
                        started.set()

            started = asyncio.Event()
            task = asyncio.ensure_future(consume())
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        started_at = time.monotonic()
        asyncio.run(main())
        assert server.hung_up.wait(10)  # the server saw the connection close
        assert time.monotonic() - started_at < 20


def test_50_concurrent_conversations_keep_their_own_sessions(emulator) -> None:
    llm = ChatJockey(**emulator.chat_kwargs())
    tool = JockeyTool(llm=llm)  # one tool, shared by every conversation
    agents = [create_agent(planner([FIRST, SECOND]), tools=[tool]) for _ in range(50)]

    async def main() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    a.ainvoke({"messages": [HumanMessage(f"#{i}")]})
                    for i, a in enumerate(agents)
                )
            )
        )

    states = asyncio.run(main())
    sessions = []
    for state in states:
        first, second = tool_results(state)
        assert first.artifact["session_id"] == second.artifact["session_id"]
        sessions.append(first.artifact["session_id"])
    assert len(set(sessions)) == 50


class Save(BaseModel):
    """The penalty save."""

    player: str = Field(description="who saves it")
    start_sec: float


def test_a_jockey_only_agent_answers_with_native_structured_output(
    mode, emulator
) -> None:
    agent = create_agent(ChatJockey(**emulator.chat_kwargs()), response_format=Save)
    state = run(mode, agent, FIRST)
    assert isinstance(state["structured_response"], Save)
    body = emulator.requests[-1].body
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["schema"]["properties"].keys() >= {"player"}


def test_an_agent_giving_chatjockey_tools_fails_naming_jockey_tool(emulator) -> None:
    from langchain_core.tools import tool

    from langchain_jockey import JockeyInputError

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    agent = create_agent(ChatJockey(**emulator.chat_kwargs()), tools=[weather])
    with pytest.raises(JockeyInputError, match="JockeyTool"):
        agent.invoke({"messages": [HumanMessage("hi")]})


def test_a_jockey_node_takes_a_history_with_other_agents_tool_calls(
    mode, emulator
) -> None:
    from langchain_core.messages import AIMessage

    history = [
        HumanMessage("When did Red play, and who saved the penalty?"),
        AIMessage(
            "", tool_calls=[{"name": "schedule", "args": {"team": "Red"}, "id": "s1"}]
        ),
        ToolMessage("Saturday, 10:00", tool_call_id="s1", name="schedule"),
        AIMessage("Red played on Saturday at 10:00."),
        HumanMessage(FIRST),
    ]
    llm = ChatJockey(**emulator.chat_kwargs())
    answer = (
        llm.invoke(history) if mode == "sync" else asyncio.run(llm.ainvoke(history))
    )
    assert answer.text
    sent = emulator.requests[-1].body["input"][0]["content"]
    assert 'Assistant called schedule with {"team": "Red"}' in sent
    assert "Tool result (schedule): Saturday, 10:00" in sent
    assert sent.endswith(FIRST)


def test_selections_come_from_the_config_not_the_model(mode, emulator) -> None:
    from langchain_jockey.emulator import STORES

    bread = next(iter(STORES.values())).videos[3].item_id
    config = {"configurable": {"jockey_selections": [{"kind": "item", "id": bread}]}}
    state = run(mode, agent_for(emulator, questions=[FIRST]), "Tell me", config=config)
    assert emulator.requests[-1].body["selections"] == [{"kind": "item", "id": bread}]
    (result,) = tool_results(state)
    assert {c["item_id"] for c in result.artifact["citations"]} <= {bread}
