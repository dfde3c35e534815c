"""A LangGraph graph whose nodes ask Jockey, streamed token by token (stream_mode="messages").

The "research" node asks the question; the "follow_up" node continues the same
Jockey session (the answer in the graph state carries its session id). Needs
the `langgraph` extra: pip install "langchain-jockey[langgraph]".
"""

from __future__ import annotations

import sys
from langchain_core.messages import AIMessageChunk, HumanMessage

try:  # not in the base install
    from langgraph.graph import END, START, MessagesState, StateGraph
except ImportError:
    sys.exit('This example needs the langgraph extra: pip install -e ".[langgraph]"')

from _common import jockey

with jockey() as llm:

    def research(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    def follow_up(state: MessagesState) -> dict:
        question = HumanMessage("What happens next?")
        return {"messages": [question, llm.invoke([*state["messages"], question])]}

    graph = StateGraph(MessagesState)
    graph.add_node("research", research)
    graph.add_node("follow_up", follow_up)
    graph.add_edge(START, "research")
    graph.add_edge("research", "follow_up")
    graph.add_edge("follow_up", END)
    app = graph.compile()

    node = None
    for message, meta in app.stream(
        {"messages": [HumanMessage("Who saves the penalty?")]}, stream_mode="messages"
    ):
        if not isinstance(message, AIMessageChunk):
            continue  # the follow-up question the node added to the state
        if meta["langgraph_node"] != node:
            node = meta["langgraph_node"]
            print(f"\n[{node}] ", end="")
        print(message.text, end="", flush=True)
    print()
