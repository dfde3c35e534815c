"""Keyless runs share one persistent local library (#32 item 9): `ingest` without a
key keeps its store in the library, served by one background emulator that later
commands join, and the next steps it prints (`ask`, a `ChatJockey` line) work as
printed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.__main__ import main
from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, sample_video
from langchain_jockey.emulator._home import (
    LIBRARY_ENV,
    holder,
    library_dir,
    serve_library,
    stop,
)
from tests.ingest.test_data_dir import dead_pid
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
DEAD_URL = "http://127.0.0.1:9/v1.3"  # nothing answers there (the discard port)
KEY = {"x-api-key": DEMO_API_KEY}


@pytest.fixture
def library(monkeypatch, tmp_path) -> Iterator[Path]:
    """No key; the library in a directory of this test, its emulator stopped after."""
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    root = tmp_path / "library"
    monkeypatch.setenv(LIBRARY_ENV, str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield root
    stop(root)


def folder_of(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return sample_video(folder / "harbour.mp4", seconds=30)


def ingest(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with `args`, as a user runs `python …`."""
    return subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def printed(out: str, start: str) -> str:
    """The line of `out` that starts with `start`, without it."""
    return next(line for line in out.splitlines() if line.startswith(start))[
        len(start) :
    ]


def test_the_library_is_under_xdg_data_home_unless_named(monkeypatch, tmp_path):
    monkeypatch.delenv(LIBRARY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert library_dir() == tmp_path / "data" / "langchain-jockey" / "library"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG rule
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert library_dir() == tmp_path / "home/.local/share/langchain-jockey/library"
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "mine"))
    assert library_dir() == tmp_path / "mine"


def test_the_test_run_never_uses_the_home_directory():
    home = Path.home().resolve()
    assert home not in library_dir().resolve().parents
    assert home not in Path(os.environ["XDG_DATA_HOME"]).resolve().parents


@pytest.mark.slow
def test_ingest_keeps_its_store_and_the_printed_next_steps_work(
    library, capsys, tmp_path
):
    video = folder_of(tmp_path, "v")
    code, out, err = ingest(capsys, str(video), "--create", "Mine")
    assert code == 0, out + err
    served = holder(library)
    assert served is not None
    assert served.url is not None
    assert f"using the local library's Jockey emulator at {served.url}" in out
    assert "started now, in the background" in out
    store_id = printed(out, "Knowledge store: ")
    # The command ended; its emulator did not, and it holds the store.
    ask_line = printed(out, "Ask it: ")
    argv = shlex.split(ask_line)
    assert argv[:3] == ["python", "-m", "langchain_jockey"]
    asked = python(*argv[1:])  # the printed command, with this interpreter
    assert asked.returncode == 0, asked.stderr
    assert "already running" in asked.stdout
    assert "Harbour" in asked.stdout  # the answer cites the video, by its title
    item = httpx.get(
        f"{served.url}/knowledge-stores/{store_id}/items",
        headers={"x-api-key": DEMO_API_KEY},
    ).json()["data"][0]["_id"]
    assert item in asked.stdout.splitlines()[-1]  # the citation names its item
    # The ChatJockey line works as printed, while the emulator runs.
    line = out.strip().splitlines()[-1]
    assert line.startswith("ChatJockey(base_url=")
    llm = eval(line, {"ChatJockey": ChatJockey})  # noqa: S307 - our own printed line
    answer = llm.invoke("What happens in these videos?")
    cited = [c["extras"] for b in answer.content_blocks for c in b["annotations"]]
    assert [c["item_id"] for c in cited] == [item]


@pytest.mark.slow
def test_a_second_keyless_command_joins_the_running_emulator(library, capsys, tmp_path):
    code, out, _ = ingest(capsys, str(folder_of(tmp_path, "a")), "--create", "A")
    assert code == 0
    first = holder(library)
    assert first is not None
    code, out, err = ingest(capsys, str(folder_of(tmp_path, "b")), "--create", "B")
    assert code == 0, out + err
    assert f"Jockey emulator at {first.url} (already running" in out
    assert holder(library) == first  # the same process serves both
    listed = httpx.get(
        f"{first.url}/knowledge-stores",
        params={"page_limit": 50},
        headers={"x-api-key": DEMO_API_KEY},
    ).json()["data"]
    assert {"A", "B"} <= {s["name"] for s in listed}


@pytest.mark.slow
def test_two_keyless_commands_at_once_start_one_emulator(library, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVE_LABS_")}
    commands = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our module
            [
                sys.executable,
                "-m",
                "langchain_jockey",
                "ingest",
                str(folder_of(tmp_path, name)),
                "--create",
                name,
                "--no-progress",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("one", "two")
    ]
    outs = [proc.communicate(timeout=120) for proc in commands]
    assert [proc.returncode for proc in commands] == [0, 0], outs
    served = holder(library)
    assert served is not None
    for out, _ in outs:
        assert f"Jockey emulator at {served.url} (" in out
    said = sorted("started now" in out for out, _ in outs)
    assert said == [False, True]  # one started it, the other joined it


@pytest.mark.slow
@pytest.mark.parametrize("pid", ["dead", "alive, not an emulator"])
def test_a_stale_library_lock_is_taken_over(library, capsys, tmp_path, pid):
    library.mkdir(parents=True)
    stale = {"pid": dead_pid() if pid == "dead" else os.getpid()}
    # A port free now: the emulator started in its place may take it again, and
    # must not take the discard port that other tests count on nothing serving
    # (root may bind port 9; under xdist a test elsewhere then got this one's 401).
    stale["url"] = f"http://127.0.0.1:{free_port()}/v1.3"
    (library / "emulator.lock").write_text(json.dumps(stale))
    code, out, err = ingest(capsys, str(folder_of(tmp_path, "v")), "--create", "S")
    assert code == 0, out + err
    assert "started now" in out
    served = holder(library)
    assert served is not None
    assert served.pid not in {stale["pid"], None}
    assert served.url is not None  # it answers there (on the old port, if free)
    stores = httpx.get(f"{served.url}/knowledge-stores", headers=KEY)
    assert "S" in {s["name"] for s in stores.json()["data"]}


HOLD = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "url": sys.argv[2]}).encode())
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_live_holder_that_does_not_answer_is_named_not_taken_over(
    library, capsys, tmp_path
):
    library.mkdir(parents=True)
    holding = subprocess.Popen(  # noqa: S603 - this interpreter
        [sys.executable, "-c", HOLD, str(library / "emulator.lock"), DEAD_URL],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holding.stdout is not None
        assert holding.stdout.readline().strip() == "held"
        code, out, err = ingest(capsys, str(folder_of(tmp_path, "v")), "--create", "S")
    finally:
        holding.kill()
        holding.wait()
    assert code == 2
    assert f"pid {holding.pid}" in err
    assert "does not answer" in err
    assert "Created" not in out


def test_ask_streams_the_answer_then_its_citations(monkeypatch, capsys, emulator):
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", emulator.base_url)
    code = main(["ask", "--store", DEMO_STORE_ID, "When do the fishing boats leave?"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    url = emulator.base_url
    assert lines[0] == f"No TWELVE_LABS_API_KEY: using the Jockey emulator at {url}."
    assert "[1]" in lines[1]  # the answer, with its markers
    cited = [line for line in lines if line.startswith("[1] ")]
    assert len(cited) == 1
    assert "Harbour at dawn" in cited[0] or "Fish market" in cited[0]
    assert " ksi_" in cited[0]
    assert "\u2013" in cited[0]  # a time range


def test_ask_with_a_key_but_no_store_is_refused_before_any_request(
    library, monkeypatch, capsys
):
    monkeypatch.setenv("TWELVE_LABS_API_KEY", "tlk_not_sent")
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", "http://127.0.0.1:9/v1.3")
    code = main(["ask", "Anything?"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--store" in err
    assert not library.exists()


def test_ask_without_a_key_or_a_store_asks_the_emulators_demo_store(
    monkeypatch, capsys, emulator
):
    """As `web` does: a keyless user's first question needs no store id."""
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", emulator.base_url)
    code = main(["ask", "When do the fishing boats leave?"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"demo store ({DEMO_STORE_ID})" in out
    assert [line for line in out.splitlines() if line.startswith("[1] ")]


@pytest.mark.slow
def test_the_librarys_emulator_stops_when_idle_or_told_and_starts_again(library):
    served = serve_library(library, idle_exit=0.5)
    assert served.started
    deadline = time.monotonic() + 30
    while holder(library) is not None:  # no request: it stops by itself
        assert time.monotonic() < deadline, "it never stopped"
        time.sleep(0.1)
    again = serve_library(library)
    assert again.started
    assert again.url == served.url  # on the port it had: printed URLs keep working
    stopped = python("-m", "langchain_jockey.emulator", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert (
        f"Stopped the emulator (pid {again.pid}) serving {library}." in stopped.stdout
    )
    assert holder(library) is None
