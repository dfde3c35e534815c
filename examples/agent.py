"""An agent that asks Jockey, streamed live: the planner's decisions, Jockey's progress
and tokens, then the cited moments.

A tool-calling planner (langchain's `create_agent`) gets `JockeyTool` and asks
it about the videos; one stream (`stream_mode=["messages", "custom", "updates"]`)
shows everything as it happens. Jockey's tokens are told apart from the
planner's by their metadata (`ls_provider == "twelvelabs"`, tag "jockey").

Offline, the planner is a small scripted tool-calling model (it says so). With
OPENAI_API_KEY or ANTHROPIC_API_KEY set and langchain-openai or
langchain-anthropic installed, that model plans instead.
Needs: pip install "langchain-jockey[agents]"
"""

from __future__ import annotations

import sys
import os
from _common import jockey, mmss

try:  # not in the base install
    from langchain.agents import create_agent
except ImportError:
    sys.exit('This example needs the agents extra: pip install -e ".[agents]"')
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_jockey import JockeyTool
from langchain_jockey.emulator import ScriptedPlanner

QUESTION = "Who saves the penalty in the final, and what happens right after?"


def planner() -> tuple[BaseChatModel, str]:
    """A real model when a key and its package are there, else the scripted one."""
    for key, spec in (
        ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
        ("ANTHROPIC_API_KEY", "anthropic:claude-3-5-haiku-latest"),
    ):
        if os.environ.get(key):
            try:
                from langchain.chat_models import init_chat_model

                return init_chat_model(spec), spec
            except ImportError:
                pass
    script = [
        ("ask_video_expert", {"question": "Who saves the penalty?"}),
        ("ask_video_expert", {"question": "What happens right after the save?"}),
    ]
    scripted = ScriptedPlanner(calls=script, final="According to the videos: {first}")
    return scripted, "a scripted tool-calling model (offline stand-in)"


with jockey() as llm:
    model, name = planner()
    print(f"Planner: {name}")
    agent = create_agent(
        model, tools=[JockeyTool(llm=llm, store_name="the demo videos")]
    )
    line = ""  # what the current output line shows: "", "progress" or "jockey"

    def open_line(kind: str, prefix: str) -> None:
        """Begin a line of `kind` unless one is already open."""
        global line
        if line != kind:
            print(("\n" if line else "") + prefix, end="", flush=True)
            line = kind

    def close_line() -> None:
        global line
        if line:
            print()
            line = ""

    for kind, data in agent.stream(
        {"messages": [HumanMessage(QUESTION)]},
        stream_mode=["messages", "custom", "updates"],
    ):
        if kind == "custom" and data.get("source") == "jockey":
            if data["type"] == "commentary":
                open_line("progress", "  [jockey progress] ")
                print(data["text"].strip("\n"), end="", flush=True)
            else:
                close_line()
                for step in data["steps"]:
                    print(f"  [jockey step] {step['type']} {step.get('name') or ''}")
        elif kind == "messages":
            message, meta = data
            if meta.get("ls_provider") == "twelvelabs" and message.text:
                open_line("jockey", "  [jockey] ")
                print(message.text, end="", flush=True)
        elif kind == "updates":
            for node, update in data.items():
                for message in (update or {}).get("messages", []):
                    if isinstance(message, AIMessage) and message.tool_calls:
                        close_line()
                        for call in message.tool_calls:
                            question = call["args"].get("question")
                            print(f"[planner] asks {call['name']}: {question}")
                    elif isinstance(message, ToolMessage) and message.status == "error":
                        close_line()  # the planner reads why; so do you
                        print(f"  [jockey failed] {message.text}")
                    elif isinstance(message, ToolMessage):
                        close_line()
                        print("  [cited moments]")
                        for note in message.artifact.get("citations", []):
                            start, end = note.get("start_sec"), note.get("end_sec")
                            span = (
                                f" {mmss(start)}–{mmss(end)}"
                                if start is not None
                                else ""
                            )
                            print(f"    {note.get('title')}{span}")
                        print(f"  [session {message.artifact.get('session_id')}]")
                    elif isinstance(message, AIMessage) and node == "model":
                        close_line()
                        print(f"[planner] {message.text}")
