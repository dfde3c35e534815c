"""Two processes of one machine sharing one `state_dir`, adding at the same time.

The same content takes turns (a lock per content hash, and per file while it
is sent before its hash is known); different files never wait for each other.
Each child is a new Python process on an emulator in this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import connect, uploads

pytestmark = pytest.mark.slow  # each child imports LangChain: a second or two

CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("TWELVE_LABS_", "TWELVELABS_"))
}
WAIT = 60.0  # seconds: only reached when a process hangs

CHILD = """
import asyncio, json, os, sys, time
from pathlib import Path
from langchain_jockey import KnowledgeStore

store_id, folder, state, meet, me, other, role, mode = sys.argv[1:9]
meet = Path(meet)
store = KnowledgeStore(
    knowledge_store_id=store_id,
    base_url=os.environ["JOCKEY_TEST_URL"],
    api_key=os.environ["JOCKEY_TEST_KEY"],
    state_dir=Path(state),
    poll_interval=0.02,
)


def wait_for(name):
    deadline = time.monotonic() + 60
    while not (meet / name).exists():
        if time.monotonic() > deadline:
            sys.exit(f"{me}: waited for {name} in vain")
        time.sleep(0.01)


held = []


def on_progress(event):
    if role == "meet" and event.kind == "hashing":
        # Every source waits until the other process has listed its store too:
        # neither has sent anything when both go on.
        (meet / me).touch()
        wait_for(other)
    if role == "hold" and event.kind == "uploading" and not held:
        held.append(True)  # a file of this process is being sent: its lock held
        (meet / me).touch()
        wait_for("go")


if mode == "sync":
    results = store.add(folder, on_progress=on_progress)
else:
    results = asyncio.run(store.aadd(folder, on_progress=on_progress))
print(json.dumps([[r.source, r.item_id, r.uploaded] for r in results]))
"""


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """The children a test starts; any still running at its end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.communicate()


def start(
    children: list[subprocess.Popen[str]],
    emu: Emulator,
    store: KnowledgeStore,
    folder: Path,
    *args: str,
) -> subprocess.Popen[str]:
    """A child adding `folder` to `store`: `me other role mode` (see CHILD)."""
    env = {**CLEAN_ENV, "JOCKEY_TEST_URL": emu.base_url, "JOCKEY_TEST_KEY": emu.api_key}
    meet = store.state_dir.parent / "meet"
    meet.mkdir(exist_ok=True)
    argv = [store.knowledge_store_id, folder, store.state_dir, meet, *args]
    child = subprocess.Popen(  # noqa: S603 - this interpreter, our script
        [sys.executable, "-c", textwrap.dedent(CHILD), *map(str, argv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    return child


def results(child: subprocess.Popen[str]) -> list[Any]:
    out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err
    return json.loads(out)


def library(folder: Path, *names: str, size: int) -> Path:
    """Videos of different sizes and content under `folder`."""
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        sample_video(folder / name, size=size + 1000 * i)
    return folder


def test_two_processes_adding_the_same_folder_at_once_upload_each_file_once(
    mode, emulator, tmp_path, children
):
    store = KnowledgeStore.create("together", **connect(emulator, tmp_path))
    names = [f"clip_{i}.mp4" for i in range(6)]
    folder = library(tmp_path / "v", *names, size=150_000)
    one = start(children, emulator, store, folder, "one", "two", "meet", mode)
    two = start(children, emulator, store, folder, "two", "one", "meet", mode)
    first, second = results(one), results(two)
    assert [item for _, item, _ in first] == [item for _, item, _ in second]
    assert len(store.items()) == 6
    assert len(uploads(emulator)) == 6
    sent = [uploaded for *_, uploaded in first + second]
    assert sent.count(True) == 6  # each file by one process or the other


def test_two_processes_adding_different_files_never_wait_for_each_other(
    mode, emulator, tmp_path, children
):
    store = KnowledgeStore.create("apart", **connect(emulator, tmp_path))
    mine = library(tmp_path / "mine", "a.mp4", "b.mp4", size=150_000)
    theirs = library(tmp_path / "theirs", "c.mp4", "d.mp4", size=170_000)
    held = start(children, emulator, store, mine, "held", "-", "hold", mode)
    meet = tmp_path / "meet"
    deadline = time.monotonic() + WAIT
    while not (meet / "held").exists():  # it is sending a file, its lock held
        assert held.poll() is None, held.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    other = start(children, emulator, store, theirs, "other", "-", "plain", mode)
    assert all(uploaded for *_, uploaded in results(other))
    assert held.poll() is None  # the other finished while this one held its lock
    (meet / "go").touch()
    assert all(uploaded for *_, uploaded in results(held))
    assert len(store.items()) == 4
