"""Fixtures shared by every test directory.

- `mode`: run a test once through the sync API and once through the async one.
- `emulator`: one Jockey emulator for the whole run (each request gets its own
  session, so tests do not see each other). `tests/reliability/` overrides it
  with a fresh one per test (fault counters and request logs start empty).
- `llm`: a ChatJockey on that emulator.

Helpers tests import (`run`, `merged`, the scripted server) are in `support.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test once through the sync API and once through the async API."""
    return str(request.param)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One emulator for the run, with frequent keepalives."""
    with Emulator(keepalive_interval=0.05) as emu:
        yield emu


@pytest.fixture
def llm(emulator: Emulator) -> ChatJockey:
    """A ChatJockey on the shared emulator."""
    return ChatJockey(**emulator.chat_kwargs())
