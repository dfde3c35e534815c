"""JockeyTool's sessions in an agent: a conversation outlives its Jockey session
(#31 item 1), and a session id from the run's config is honoured only when the
tool trusts it (#31 item 2). Against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.stream.transformers import CustomTransformer

from langchain_jockey import ChatJockey, JockeyTool
from langchain_jockey.emulator import ScriptedPlanner

FIRST, SECOND, THIRD = (
    "When does the first goal come after the corner kick?",
    "What happens next?",
    "And after that?",
)
LOST = "no longer has this conversation's session"


def agent(emulator, **tool_kwargs: Any):
    """An agent that asks the video expert each user message, with memory."""
    tool = JockeyTool(llm=ChatJockey(**emulator.chat_kwargs()), **tool_kwargs)
    planner = ScriptedPlanner(
        calls=[("ask_video_expert", {"question": "{question}"})],
        final="Planner: {first}",
    )
    return create_agent(planner, tools=[tool], checkpointer=InMemorySaver())


def ask(mode: str, app, text: str, config: dict[str, Any], *, v3: bool = False):
    """One user turn on the thread; the Jockey tool result it produced."""
    value = {"messages": [HumanMessage(text)]}
    if v3:  # LangGraph's v3 streaming: JockeyTool reads stream_events there
        options = {"version": "v3", "transformers": [CustomTransformer]}
        if mode == "sync":
            for _ in app.stream_events(value, config=config, **options):
                pass
        else:

            async def go() -> None:
                async for _ in await app.astream_events(
                    value, config=config, **options
                ):
                    pass

            asyncio.run(go())
        state = app.get_state(config).values
    elif mode == "sync":
        state = app.invoke(value, config=config)
    else:
        state = asyncio.run(app.ainvoke(value, config=config))
    result = [m for m in state["messages"] if isinstance(m, ToolMessage)][-1]
    assert result.status == "success", result.content
    return result


@pytest.mark.filterwarnings("ignore:The v3 streaming protocol")
@pytest.mark.parametrize("v3", [False, True], ids=["v1", "v3"])
def test_the_tool_asks_again_in_a_new_session_and_the_next_call_continues_it(
    mode, emulator, v3
) -> None:
    app = agent(emulator)
    config = {"configurable": {"thread_id": f"tool-restart-{mode}-{v3}"}}
    first = ask(mode, app, FIRST, config, v3=v3)
    old = first.artifact["session_id"]
    assert emulator.expire_sessions(old) == 1
    before = len(emulator.requests)
    with pytest.warns(UserWarning, match=LOST):
        second = ask(mode, app, SECOND, config, v3=v3)
    refused, asked = (r.body for r in emulator.requests[before:])
    assert refused["session_id"] == old
    assert "session_id" not in asked
    assert asked["input"][0]["content"] == (  # the earlier Jockey Q&A, folded
        f"Conversation so far:\nUser: {FIRST}\nAssistant: {first.content}\n\n"
        f"New message:\n{SECOND}"
    )
    assert second.artifact["session_restarted"] is True
    new = second.artifact["session_id"]
    assert new != old

    third = ask(mode, app, THIRD, config, v3=v3)
    body = emulator.requests[-1].body
    assert body["session_id"] == new == third.artifact["session_id"]
    assert body["input"][0]["content"] == THIRD  # only the question
    assert "session_restarted" not in third.artifact


def test_a_config_session_is_ignored_unless_the_tool_trusts_it(mode, emulator) -> None:
    other = ChatJockey(**emulator.chat_kwargs()).invoke(FIRST)
    foreign = other.response_metadata["session_id"]  # another conversation's
    config = {"configurable": {"thread_id": f"untrusted-{mode}"}}
    config["configurable"]["jockey_session_id"] = foreign
    result = ask(mode, agent(emulator, trust_config_session=False), FIRST, config)
    assert "session_id" not in emulator.requests[-1].body
    assert result.artifact["session_id"] != foreign
    trusted = {"configurable": {**config["configurable"], "thread_id": f"t-{mode}"}}
    result = ask(mode, agent(emulator), SECOND, trusted)  # the library's default
    assert result.artifact["session_id"] == foreign
