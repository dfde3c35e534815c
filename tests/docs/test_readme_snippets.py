"""Every snippet of the README and of docs/*.md works as written, against the emulator.

Each page's Python blocks run in order, in one session, twice: pasted into
`python -i` (fed line by line to `code.InteractiveConsole`, which needs a blank
line to close an indented block before an unindented line, and at the end of a
block that ends indented) and saved as one script, run by a fresh interpreter.
No key is set: the pages' setup block points at the emulator (its URL replaced
by the test's), and the keyless library and the upload state are in temporary
directories. A block whose first line is `# needs: …` needs a real service and
is not run. The README's shell block that serves the agent runs with port 2024
held, so `langgraph dev` has to move, and the block has to find where.
"""

from __future__ import annotations

import code
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from langchain_jockey.emulator import Emulator
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
SETUP_URL = "http://127.0.0.1:8600/v1.3"
NEEDS = "# needs:"  # the first line of a block that needs a real service, and what
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, lang: str = "python") -> list[str]:
    """The page's fenced blocks of `lang`, in order."""
    text = page.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def runnable(page: Path) -> list[str]:
    return [b for b in blocks(page) if not b.startswith(NEEDS)]


PYTHON_PAGES = [p for p in PAGES if runnable(p)]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def keyless(tmp_path: Path) -> dict[str, str]:
    """The environment of a reader with no key, and nothing in the home directory."""
    env = {k: v for k, v in os.environ.items() if "TWELVE" not in k}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # KnowledgeStore's state_dir
    return env


class Console(code.InteractiveConsole):
    """`python -i` as a paste sees it, keeping every error instead of printing it."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__(namespace, filename="<stdin>")
        self.errors: list[str] = []

    def showsyntaxerror(self, *args: Any, **kwargs: Any) -> None:
        self.errors.append(traceback.format_exc())

    def showtraceback(self) -> None:
        self.errors.append(traceback.format_exc())


def test_marked_blocks_say_what_they_need() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.startswith(NEEDS):
                assert len(block.splitlines()[0]) > len(NEEDS) + 3, page


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_a_page_that_uses_the_store_sets_up_the_emulator_once_first(
    page: Path,
) -> None:
    setup, *rest = runnable(page)
    if not any("STORE_ID" in b for b in (setup, *rest)):
        return  # self-contained: it starts its own emulator
    assert SETUP_URL in setup
    assert "STORE_ID = " in setup
    assert not any(SETUP_URL in block for block in rest)
    assert not any('"ks_…"' in block for block in rest)  # placeholders don't run


def check_output(page: Path, printed: str) -> None:
    """What the README's snippets print: cited answers, and progress per step."""
    if page.name != "README.md":
        return
    assert "[1]" in printed  # cited answers
    progress = [line for line in printed.splitlines() if line.startswith("progress:")]
    # One line per step Jockey takes (a search and its result), not one per word.
    assert progress == [
        "progress: server_tool_call",
        "progress: server_tool_result",
    ], progress


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_every_snippet_pastes_into_python_i(
    page: Path, emulator: Emulator, keyless: dict[str, str], capsys
) -> None:
    console = Console({"__name__": "__console__"})
    with mock.patch.dict(os.environ, keyless, clear=True):
        for number, block in enumerate(runnable(page)):
            more = False
            for line in block.replace(SETUP_URL, emulator.base_url).splitlines():
                more = console.push(line)
                if console.errors:
                    pytest.fail(
                        f"{page_id(page)} block {number}, at {line!r}:\n"
                        f"{console.errors[0]}\n{block}"
                    )
            assert not more, (
                f"{page_id(page)} block {number} leaves `python -i` waiting for a "
                f"blank line: end it with one\n{block}"
            )
    check_output(page, capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_every_snippet_runs_as_a_script(
    page: Path, emulator: Emulator, keyless: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "snippets.py"
    code_text = "\n".join(runnable(page)).replace(SETUP_URL, emulator.base_url)
    script.write_text(code_text, encoding="utf-8")
    done = subprocess.run(  # noqa: S603 - this interpreter, the page's own code
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**keyless, "HOME": str(tmp_path)},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, f"{page_id(page)}:\n{done.stderr[-3000:]}"
    check_output(page, done.stdout)


# -- the shell block that serves the agent ------------------------------------


def server_block() -> str:
    (block,) = [b for b in blocks(ROOT / "README.md", "bash") if "langgraph dev" in b]
    return block


def test_the_server_block_is_the_same_in_the_readme_and_the_agents_page() -> None:
    assert server_block() in blocks(ROOT / "docs" / "agents.md", "bash")


@contextlib.contextmanager
def held(port: int) -> Iterator[None]:
    """`port` taken on loopback meanwhile (by this socket, or already by another)."""
    sock = socket.socket()
    try:
        with contextlib.suppress(OSError):  # taken already: as good
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield
    finally:
        sock.close()


@pytest.mark.slow
def test_the_server_block_finds_the_port_langgraph_dev_took_when_2024_is_taken(
    keyless: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = f"{Path(sys.executable).parent}/"
    script = "\n".join(
        line for line in server_block().splitlines() if "/pip install " not in line
    )  # installed already
    script = re.sub(r"(\.\./\.\./)?\.venv/bin/", bin_dir, script)
    script = script.replace("8600", str(free_port()))
    env = {
        **keyless,
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "LANGGRAPH_DISABLE_FILE_PERSISTENCE": "true",  # no .langgraph_api/ in examples
    }
    output = tmp_path / "output.txt"
    with held(2024), output.open("w") as sink:
        proc = subprocess.Popen(  # noqa: S603 - bash running the README's block
            ["bash", "-c", script],  # noqa: S607
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the servers it starts: one group to stop
        )
        try:
            proc.wait(timeout=150)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    out = output.read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, out[-3000:]
    served = re.search(r"LangGraph Server at http://127\.0\.0\.1:(\d+), graph", out)
    assert served, out[-3000:]
    assert served.group(1) != "2024"  # it found the port langgraph dev moved to
    assert "  [jockey] In Under-12 football final" in out
    assert re.search(r"\[session sess_\S+\]", out)
