"""A multi-turn conversation with memory: LangGraph keeps the messages, Jockey the session.

LangGraph's checkpointer (InMemorySaver here, a database saver in production)
keeps each conversation's messages under its `thread_id`. ChatJockey reads the
Jockey session from the last answer in those messages, so every turn continues
the same server-side session and sends only the new question. Needs the
`langgraph` extra: pip install "langchain-jockey[langgraph]".

Without LangGraph, keep the list yourself: `history.append(llm.invoke(history))`.
"""

from __future__ import annotations

import sys
from langchain_core.messages import HumanMessage

try:  # not in the base install
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, MessagesState, StateGraph
except ImportError:
    sys.exit('This example needs the langgraph extra: pip install -e ".[langgraph]"')

from _common import jockey

QUESTIONS = [
    "When does the first goal come after the corner kick?",
    "What happens next?",
    "And after that?",
]

with jockey(instructions="Be brief.") as llm:

    def ask(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("jockey", ask)
    graph.add_edge(START, "jockey")
    app = graph.compile(checkpointer=InMemorySaver())

    config = {"configurable": {"thread_id": "user-1"}}  # one conversation
    for question in QUESTIONS:
        state = app.invoke({"messages": [HumanMessage(question)]}, config)
        answer = state["messages"][-1]
        print(
            f"You: {question}\nJockey: {answer.text}\n  (session {answer.response_metadata['session_id']})\n"
        )
