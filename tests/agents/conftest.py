"""The emulator and a scripted planner, for agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_jockey.emulator import Emulator, ScriptedPlanner


def planner(questions: list[str]) -> ScriptedPlanner:
    """A planner that asks the video expert each question, then says "Planner: …"."""
    calls = [("ask_video_expert", {"question": q}) for q in questions]
    return ScriptedPlanner(calls=calls, final="Planner: {first}")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(keepalive_interval=0.05) as emu:
        yield emu


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param
