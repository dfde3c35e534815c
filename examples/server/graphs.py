"""Two graphs for LangGraph Server, both answered by TwelveLabs Jockey.

- `jockey_agent`: a tool-calling planner (langchain's `create_agent`) with
  `JockeyTool`. Offline the planner is `ScriptedPlanner`, which asks the video
  expert each user question as it is; with OPENAI_API_KEY or ANTHROPIC_API_KEY
  set and langchain-openai or langchain-anthropic installed, that model plans.
- `jockey_chat`: `ChatJockey` over `MessagesState`, one answer per user message.

Both read their connection from the environment (TWELVE_LABS_BASE_URL,
TWELVE_LABS_API_KEY, TWELVE_LABS_KNOWLEDGE_STORE_ID), so the same files serve
the local emulator and the live API. There is one ChatJockey per process,
shared by every run and thread: it holds no conversation state (each thread's
Jockey session travels in its messages, which the server checkpoints), and its
key never leaves this process. Served by `langgraph dev` (see langgraph.json
and docs/deploy.md).
"""

from __future__ import annotations

import os

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langgraph.graph import START, MessagesState, StateGraph

from langchain_jockey import ChatJockey, JockeyTool
from langchain_jockey.emulator import ScriptedPlanner

MODELS = (
    ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic:claude-3-5-haiku-latest"),
)


def planner() -> BaseChatModel:
    """A real model when a key and its package are there, else the scripted one."""
    for key, spec in MODELS:
        if os.environ.get(key):
            try:
                from langchain.chat_models import init_chat_model  # noqa: PLC0415

                return init_chat_model(spec)
            except ImportError:
                pass
    return ScriptedPlanner(
        calls=[("ask_video_expert", {"question": "{question}"})],
        final="According to the videos: {first}",
    )


def jockey() -> ChatJockey:
    """The process's ChatJockey, from the environment; says what is missing."""
    llm = ChatJockey()
    missing = [
        name
        for name, value in (
            ("TWELVE_LABS_API_KEY", llm.api_key),
            ("TWELVE_LABS_KNOWLEDGE_STORE_ID", llm.knowledge_store_id),
        )
        if not value
    ]
    if missing:
        msg = (
            f"Set {' and '.join(missing)} (and TWELVE_LABS_BASE_URL for anything "
            "but the live API). Offline: start the emulator with "
            "`python -m langchain_jockey.emulator --port 8600` and set them to the "
            "URL, key and store it prints (docs/deploy.md)."
        )
        raise RuntimeError(msg)
    return llm


LLM = jockey()

jockey_agent = create_agent(planner(), tools=[JockeyTool(llm=LLM)], name="jockey_agent")


async def answer(state: MessagesState) -> dict[str, list]:
    """Jockey answers the conversation so far (it continues the thread's session)."""
    return {"messages": [await LLM.ainvoke(state["messages"])]}


jockey_chat = (
    StateGraph(MessagesState)
    .add_node("jockey", answer)
    .add_edge(START, "jockey")
    .compile(name="jockey_chat")
)
