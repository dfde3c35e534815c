"""Ask the served Jockey agent from the terminal, through the LangGraph SDK.

Streams one run of `jockey_agent` (served by `langgraph dev`, see
docs/deploy.md) with `stream_mode=["messages-tuple", "custom", "updates"]` and
prints what arrives, as it arrives, labelled by its source: the planner's tool
call (`[planner]`, the agent's `model` node), Jockey's progress (custom events,
one line per step) and its answer token by token (`[jockey]`), then the tool
result's cited moments and the Jockey session. `--graph jockey_chat` runs the
chat graph, whose only node is Jockey: its answer is printed once, as it
streams, then its session. `--thread` continues a conversation: the same
thread continues the same Jockey session.

    python examples/server/client.py "Who saves the penalty?"
    python examples/server/client.py --thread <id printed before> "And then?"

Needs the server extra: pip install "langchain-jockey[server]".
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

try:  # not in the base install
    from langgraph_sdk import get_sync_client
except ImportError:
    sys.exit('This example needs the server extra: pip install -e ".[server]"')

QUESTION = "Who saves the penalty in the final?"
MODES = ["messages-tuple", "custom", "updates"]


def mmss(seconds: float) -> str:
    """Seconds as mm:ss."""
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


class Printer:
    """Prints a streamed run; a line of tokens or progress stays open until
    something else arrives."""

    def __init__(self) -> None:
        self.line = ""  # "", "progress" or "jockey"
        self.failed = False
        self.streamed = False  # Jockey's answer tokens were printed as they came

    def open(self, kind: str, prefix: str) -> None:
        if self.line != kind:
            print(("\n" if self.line else "") + prefix, end="", flush=True)
            self.line = kind

    def close(self) -> None:
        if self.line:
            print(flush=True)
            self.line = ""

    def part(self, event: str, data: Any) -> None:
        if event == "custom" and data.get("source") == "jockey":
            if data["type"] == "commentary":
                self.open("progress", "  [jockey progress] ")
                print(data["text"].strip("\n"), end="", flush=True)
            else:
                self.close()
                for step in data["steps"]:
                    detail = step.get("name") or step.get("status") or ""
                    print(f"  [jockey step] {step['type']} {detail}")
        elif event == "messages":
            message, meta = data
            if meta.get("ls_provider") == "twelvelabs" and message.get("content"):
                self.open("jockey", "  [jockey] ")
                print(message["content"], end="", flush=True)
                self.streamed = True
        elif event == "updates":
            for node, update in data.items():
                for message in (update or {}).get("messages", []):
                    self.message(node, message)
        elif event == "error":
            self.close()
            print(f"[run failed] {data}")
            self.failed = True

    def message(self, node: str, message: dict[str, Any]) -> None:
        """One node's message, labelled by its source: the planner or Jockey."""
        self.close()
        source = "planner" if node == "model" else node  # create_agent's planner
        if message["type"] == "ai" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                question = call["args"].get("question")
                print(f"[{source}] asks {call['name']}: {question}")
        elif message["type"] == "tool" and message.get("status") == "error":
            print(f"  [tool error] {message['content']}")
        elif message["type"] == "tool":
            artifact = message.get("artifact") or {}
            print("  [cited moments]")
            for note in artifact.get("citations", []):
                start, end = note.get("start_sec"), note.get("end_sec")
                span = f" {mmss(start)}–{mmss(end)}" if start is not None else ""  # noqa: RUF001
                print(f"    {note.get('title')}{span}")
            print(f"  [session {artifact.get('session_id')}]")
        elif message["type"] == "ai" and source == "planner":
            print(f"[planner] {message['content']}")
        elif message["type"] == "ai":  # Jockey's own answer (the chat graph)
            if not self.streamed:  # else it was printed token by token
                print(f"  [{source}] {message['content']}")
            session = (message.get("response_metadata") or {}).get("session_id")
            print(f"  [session {session}]")
        self.streamed = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("LANGGRAPH_URL", "http://127.0.0.1:2024"),
        help="the server (default: $LANGGRAPH_URL, else langgraph dev's address)",
    )
    parser.add_argument("--thread", help="continue this thread (a conversation)")
    parser.add_argument("--graph", default="jockey_agent", help="the graph to run")
    parser.add_argument("question", nargs="*", help=f"default: {QUESTION!r}")
    args = parser.parse_args()

    client = get_sync_client(url=args.url)
    try:
        thread = args.thread or client.threads.create()["thread_id"]
    except httpx.TransportError as err:
        sys.exit(
            f"No LangGraph Server answered at {args.url} ({err}). Start one: "
            "cd examples/server && langgraph dev (docs/deploy.md)."
        )
    print(f"LangGraph Server at {args.url}, graph {args.graph}, thread {thread}")
    question = " ".join(args.question) or QUESTION
    printer = Printer()
    for part in client.runs.stream(
        thread,
        args.graph,
        input={"messages": [{"role": "user", "content": question}]},
        stream_mode=MODES,
    ):
        printer.part(part.event, part.data)
    printer.close()
    if printer.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
