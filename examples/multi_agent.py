"""A LangGraph graph where another agent and a Jockey node share `state["messages"]`.

The "scout" is a tool-calling agent (scripted here, offline) that looks up the
match schedule with a tool. The "jockey" node then answers from the videos,
given the whole conversation: the scout's tool calls and tool results are
folded into the transcript Jockey reads, as text. Tokens stream live from both
nodes (`stream_mode="messages"`). Needs: pip install "langchain-jockey[agents]"
"""

from __future__ import annotations

import sys
from _common import jockey

try:  # not in the base install
    from langchain.agents import create_agent
except ImportError:
    sys.exit('This example needs the agents extra: pip install -e ".[agents]"')
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_jockey.emulator import ScriptedPlanner


@tool
def match_schedule(team: str) -> str:
    """When and where a team plays."""
    return f"{team} played the Under-12 final on Saturday at 10:00, on pitch 2."


with jockey() as llm:
    # A stand-in tool-calling agent (offline): one schedule lookup, then a summary.
    scripted = ScriptedPlanner(
        calls=[("match_schedule", {"team": "Red"})], final="Scout: {last}"
    )
    scout = create_agent(scripted, tools=[match_schedule])

    def ask_jockey(state: MessagesState) -> dict:
        question = HumanMessage("From the videos: who saves the penalty in that final?")
        return {"messages": [question, llm.invoke([*state["messages"], question])]}

    graph = StateGraph(MessagesState)
    graph.add_node("scout", scout)
    graph.add_node("jockey", ask_jockey)
    graph.add_edge(START, "scout")
    graph.add_edge("scout", "jockey")
    graph.add_edge("jockey", END)
    app = graph.compile()

    node = None
    for message, meta in app.stream(
        {"messages": [HumanMessage("When did Red play the final, and who saved?")]},
        stream_mode="messages",
        subgraphs=False,
    ):
        if isinstance(message, ToolMessage):
            print(f"\n[scout tool result] {message.content}")
            node = None
            continue
        if isinstance(message, HumanMessage) or not message.text:
            continue
        where = "jockey" if meta.get("ls_provider") == "twelvelabs" else "scout"
        if where != node:
            node = where
            print(f"\n[{where}] ", end="")
        print(message.text, end="", flush=True)
    print()
