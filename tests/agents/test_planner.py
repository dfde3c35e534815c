"""ScriptedPlanner, the offline stand-in for a planner: its script runs once per
user message (a thread served by LangGraph Server holds several), and an argument
that is exactly "{question}" becomes that message's text."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_jockey.emulator import ScriptedPlanner

PLANNER = ScriptedPlanner(
    calls=[("ask_video_expert", {"question": "{question}", "note": "{first}"})],
    final="Answer: {first}",
)


def test_the_script_starts_again_at_each_user_message() -> None:
    first = PLANNER.invoke([HumanMessage("Who saves the penalty?")])
    (call,) = first.tool_calls
    assert call["args"] == {"question": "Who saves the penalty?", "note": "{first}"}
    result = ToolMessage("The keeper.\n\nCited moments: …", tool_call_id=call["id"])
    done = PLANNER.invoke([HumanMessage("Who saves the penalty?"), first, result])
    assert done.content == "Answer: The keeper."
    history = [HumanMessage("Who saves the penalty?"), first, result, done]
    again = PLANNER.invoke([*history, HumanMessage("And then?")])
    (second,) = again.tool_calls
    assert second["args"]["question"] == "And then?"
    assert second["id"] != call["id"]  # tool call ids stay unique in the thread
    assert isinstance(again, AIMessage)
