"""Fixtures shared by every test directory.

- `mode`: run a test once through the sync API and once through the async one.
- `emulator`: one Jockey emulator for the whole run (each request gets its own
  session, so tests do not see each other). `tests/reliability/` overrides it
  with a fresh one per test (fault counters and request logs start empty).
- `llm`: a ChatJockey on that emulator.
- `media_dir`: where emulators keep the demo videos' stand-in media for the run
  (made once, when first asked for: a few seconds each).

The run is spread over worker processes (pytest-xdist, `-n auto` in
pyproject.toml): `pytest_xdist_auto_num_workers` says how many. Each worker has
its own session fixtures and its own data directory (below).

For the whole run (each worker's), `XDG_DATA_HOME` and `LANGCHAIN_JOCKEY_LIBRARY` name a
temporary directory, so the keyless tools' library (and any emulator they
start on it, stopped at the end) is never in the home directory.

Helpers tests import (`run`, `merged`, the scripted server) are in `support.py`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from langchain_jockey.emulator._home import LIBRARY_ENV, stop

_DATA_HOME = pytest.StashKey[Path]()


# Most tests wait on sockets, subprocesses and emulator timings rather than on the
# CPU: on 2 cores, 4 workers ran the suite in 296 s against 825 s in one process.
WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for `-n auto`: `WORKERS`, none for a pytest that a test started.

    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, says how many instead.
    """
    if "PYTEST_XDIST_WORKER" in os.environ:  # a test's own pytest run: one process
        return 0
    return int(os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", WORKERS))


def pytest_configure(config: pytest.Config) -> None:
    """Keep the run's data (the keyless library) in a temporary directory."""
    home = Path(tempfile.mkdtemp(prefix="jockey-test-data-"))
    config.stash[_DATA_HOME] = home
    os.environ["XDG_DATA_HOME"] = str(home)
    os.environ[LIBRARY_ENV] = str(home / "langchain-jockey" / "library")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the library's emulator if a test started one, and remove the data."""
    home = config.stash.get(_DATA_HOME, None)
    if home is not None:
        with contextlib.suppress(RuntimeError, TimeoutError):
            stop(home / "langchain-jockey" / "library")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test once through the sync API and once through the async API."""
    return str(request.param)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo videos' stand-in media, shared by the run's emulators."""
    return tmp_path_factory.mktemp("emulator-media")


@pytest.fixture(scope="session")
def emulator(media_dir: Path) -> Iterator[Emulator]:
    """One emulator for the run, with frequent keepalives."""
    with Emulator(keepalive_interval=0.05, media_dir=media_dir) as emu:
        yield emu


@pytest.fixture
def llm(emulator: Emulator) -> ChatJockey:
    """A ChatJockey on the shared emulator."""
    return ChatJockey(**emulator.chat_kwargs())
