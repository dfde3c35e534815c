"""`langgraph dev` serving examples/server against the emulator, for the server tests.

One server for the session: the emulator runs in this process (so a test can
read what it received, and turn a fault on for one run), and `langgraph dev`
runs as a subprocess in examples/server, on a free loopback port, with the
emulator's URL, a key of its own and the demo store in its environment. Nothing
it does needs the network beyond loopback: analytics, the version check, the
browser, LangSmith tracing and file persistence are turned off.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey.emulator import Emulator, Fault
from tests.support import free_port

INSTALL = 'pip install -e ".[test]" (or ".[server]"), which brings langgraph-cli[inmem]'
try:
    from langgraph_sdk import get_client
    from langgraph_sdk.client import LangGraphClient
except ImportError as err:  # never a silent skip
    msg = f"the server tests need langgraph-sdk and langgraph-cli[inmem]: {INSTALL}"
    raise ImportError(msg) from err

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = ROOT / "examples" / "server"
KEY = f"tlk_server_test_{secrets.token_hex(12)}"  # unique: any copy of it is a leak
DELTA_DELAY = 0.03  # seconds between Jockey's deltas: tokens that arrive together fail
STARTUP = 60.0  # seconds `langgraph dev` may take to answer
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI's usage report
    "LANGGRAPH_NO_VERSION_CHECK": "true",  # the server's look-up on pypi.org
    "LANGSMITH_TRACING": "false",
    "LANGGRAPH_DISABLE_FILE_PERSISTENCE": "true",  # no .langgraph_api/ in examples
}
DROPPED = (  # set in the server's environment by the caller, never passed on
    "TWELVE_LABS_",
    "TWELVELABS_",
    "LANGSMITH_",
    "LANGCHAIN_",
    "OPENAI_",
    "ANTHROPIC_",
)
_API_LINE = re.compile(r"API: (?:\x1b\[[0-9;]*m)?(http://[0-9.]+:\d+)")


def langgraph_cli() -> str:
    """The `langgraph` command of this interpreter's environment; fails if missing."""
    found = Path(sys.executable).with_name("langgraph")
    if not found.exists():
        pytest.fail(
            f"the langgraph CLI is not installed ({found} is missing): {INSTALL}"
        )
    return str(found)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(
        api_keys=(KEY,),
        first_token_delay=0.1,
        delta_delay=DELTA_DELAY,
        keepalive_interval=0.05,
    ) as emu:
        yield emu


@contextmanager
def changed(emulator: Emulator, **settings: Any) -> Iterator[None]:
    """The emulator takes these `EmulatorConfig` settings meanwhile (per request)."""
    usual = emulator.server.config
    emulator.server.config = replace(usual, **settings)
    try:
        yield
    finally:
        emulator.server.config = usual


def fault(emulator: Emulator, spec: str) -> AbstractContextManager[None]:
    """Every request the emulator receives meanwhile gets the fault `spec`."""
    return changed(emulator, faults=(Fault.parse(spec),))


@pytest.fixture(scope="session")
def server(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of `langgraph dev` serving examples/server/langgraph.json."""
    command = [
        langgraph_cli(),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--n-jobs-per-worker",  # langgraph dev runs one run at a time by default
        "25",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(
        OFFLINE,
        TWELVE_LABS_BASE_URL=emulator.base_url,
        TWELVE_LABS_API_KEY=KEY,
        TWELVE_LABS_KNOWLEDGE_STORE_ID=emulator.knowledge_store_id,
    )
    log = tmp_path_factory.mktemp("langgraph-dev") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - the CLI of this environment
            command, cwd=SERVER_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield _wait_until_serving(proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The server's URL (from its banner: a taken port is silently replaced)."""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited ({proc.returncode}):\n{text[-3000:]}")
        match = _API_LINE.search(text)
        if match:
            try:
                if httpx.get(f"{match.group(1)}/ok", timeout=1).status_code == 200:
                    return match.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    pytest.fail(f"langgraph dev did not answer in {STARTUP:.0f} s:\n{text[-3000:]}")


@pytest.fixture
async def client(server: str) -> AsyncIterator[LangGraphClient]:
    """An async LangGraph SDK client of the server, closed after the test."""
    async with get_client(url=server) as client:
        yield client
