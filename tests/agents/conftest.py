"""A scripted planner, for agent tests."""

from __future__ import annotations

from langchain_jockey.emulator import ScriptedPlanner


def planner(questions: list[str]) -> ScriptedPlanner:
    """A planner that asks the video expert each question, then says "Planner: …"."""
    calls = [("ask_video_expert", {"question": q}) for q in questions]
    return ScriptedPlanner(calls=calls, final="Planner: {first}")
