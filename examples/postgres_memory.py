"""A Jockey conversation kept in Postgres: any process can continue any thread.

A LangGraph chat graph (ChatJockey over `MessagesState`, as in sessions.py)
compiled with langgraph-checkpoint-postgres's saver. Each run asks one question
on a thread; the thread's messages live in Postgres, and the Jockey session
rides in them (on the last answer), so a second process, on this machine or
another, continues the same conversation and the same Jockey session. Needs the
`postgres` extra: pip install "langchain-jockey[postgres]".

    export DATABASE_URL=postgresql://user:password@127.0.0.1:5432/jockey
    python examples/postgres_memory.py --thread user-1 "Who scores first?"
    python examples/postgres_memory.py --thread user-1 --async "What happens next?"

`--database-url` wins over DATABASE_URL; `--async` uses AsyncPostgresSaver
(`ainvoke`) instead of PostgresSaver. The last line printed is
`session: <session_id>`. A thread outlives its Jockey session: if Jockey no
longer has it (expired, or the server restarted), ChatJockey asks again in a
new session with the thread's history folded in, and this prints so before
the session line; the next run continues the new session.

With TWELVE_LABS_API_KEY set, it asks the Jockey API. Without a key, the
session must outlive each process, so the emulator runs on its own, shared by
every run: start it in another terminal and point TWELVE_LABS_BASE_URL at it
(runs then use its demo key and store):

    python -m langchain_jockey.emulator --port 8600
    export TWELVE_LABS_BASE_URL=http://127.0.0.1:8600/v1.3

(In Python, `langchain_jockey.emulator.spawn()` starts one and returns its URL.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from langchain_core.messages import AIMessage, HumanMessage

try:  # not in the base install
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph import START, MessagesState, StateGraph
except ImportError:
    sys.exit('This example needs the postgres extra: pip install -e ".[postgres]"')

from _common import emulator_url, jockey, live

from langchain_jockey import ChatJockey

FIRST_QUESTION = "When does the first goal come after the corner kick?"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="*", help=f"default: {FIRST_QUESTION!r}")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="postgresql://… (default: env DATABASE_URL)",
    )
    parser.add_argument("--thread", default="user-1", help="the conversation's id")
    parser.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="AsyncPostgresSaver and ainvoke (default: PostgresSaver and invoke)",
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url postgresql://…")
    if not (live() or emulator_url()):
        parser.error(
            "no TWELVE_LABS_API_KEY and no TWELVE_LABS_BASE_URL: a session must "
            "outlive this process, so start the emulator apart "
            "(python -m langchain_jockey.emulator --port 8600) and "
            "export TWELVE_LABS_BASE_URL=http://127.0.0.1:8600/v1.3"
        )
    return args


def chat_graph(llm: ChatJockey, *, use_async: bool) -> StateGraph:
    def ask(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    async def aask(state: MessagesState) -> dict:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("jockey", aask if use_async else ask)
    graph.add_edge(START, "jockey")
    return graph


def where(url: str) -> str:
    """The database, without its password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def report(args: argparse.Namespace, earlier: list[Any], answer: AIMessage) -> None:
    saver = "AsyncPostgresSaver" if args.use_async else "PostgresSaver"
    print(
        f"Thread {args.thread!r} in Postgres at {where(args.database_url)} "
        f"({saver}): {len(earlier)} earlier messages."
    )
    print(f"You: {args.question}\nJockey: {answer.text}")
    if answer.response_metadata.get("session_restarted"):
        print("(Jockey no longer had the thread's session: it goes on in a new one.)")
    print(f"session: {answer.response_metadata['session_id']}")


def run_sync(args: argparse.Namespace, llm: ChatJockey) -> None:
    config = {"configurable": {"thread_id": args.thread}}
    with PostgresSaver.from_conn_string(args.database_url) as saver:
        saver.setup()  # creates or migrates the checkpoint tables
        app = chat_graph(llm, use_async=False).compile(checkpointer=saver)
        earlier = app.get_state(config).values.get("messages", [])
        state = app.invoke({"messages": [HumanMessage(args.question)]}, config)
    report(args, earlier, state["messages"][-1])


async def run_async(args: argparse.Namespace, llm: ChatJockey) -> None:
    config = {"configurable": {"thread_id": args.thread}}
    async with AsyncPostgresSaver.from_conn_string(args.database_url) as saver:
        await saver.setup()
        app = chat_graph(llm, use_async=True).compile(checkpointer=saver)
        earlier = (await app.aget_state(config)).values.get("messages", [])
        state = await app.ainvoke({"messages": [HumanMessage(args.question)]}, config)
    report(args, earlier, state["messages"][-1])


args = arguments()
args.question = " ".join(args.question) or FIRST_QUESTION
with jockey(instructions="Be brief.") as llm:
    try:
        if args.use_async:
            asyncio.run(run_async(args, llm))
        else:
            run_sync(args, llm)
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0]
        print(f"Postgres at {where(args.database_url)}: {first}", file=sys.stderr)
        raise SystemExit(1) from None
