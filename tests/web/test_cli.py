"""`python -m langchain_jockey web`: what it says, what it refuses, how it stops."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from langchain_jockey.emulator import Emulator
from langchain_jockey.web._cli import _settings

ENV = {k: v for k, v in os.environ.items() if "TWELVE" not in k}


@contextmanager
def web(*flags: str, env: dict[str, str] | None = None) -> Iterator[tuple[Any, list]]:
    """The command, started; its process and the lines it printed (growing)."""
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "langchain_jockey", "web", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or ENV,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(iter(proc.stdout.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        reader.join(10)


def serving(proc: Any, lines: list[str]) -> str:
    """The URL once `Serving on …` is printed."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in lines:
            if line.startswith("Serving on "):
                return line.split()[-1]
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.05)
    pytest.fail(f"never served: {''.join(lines)}")


def stopped_within(proc: Any, seconds: float) -> float:
    started = time.monotonic()
    proc.wait(seconds)
    return time.monotonic() - started


@pytest.mark.slow
def test_without_a_key_it_says_so_serves_the_demo_store_and_stops_on_sigint() -> None:
    with web() as (proc, lines):
        url = serving(proc, lines)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        notice = lines[0]
        assert notice.startswith(
            "No TWELVE_LABS_API_KEY: using the local library's Jockey emulator"
        )
        assert "started now" in notice
        emulator = re.search(r"at (http://127\.0\.0\.1:\d+)/v1\.3 \(", notice)
        assert emulator
        store = httpx.get(f"{url}/api/store").json()["store"]
        assert store["name"].startswith("Demo")
        assert httpx.get(url).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert stopped_within(proc, 5) < 5
        assert proc.returncode == 0
        with pytest.raises(httpx.ConnectError):  # what it started stopped too
            httpx.get(emulator.group(1))


@pytest.mark.slow
def test_sigterm_stops_it_within_5_s_while_an_answer_streams() -> None:
    with Emulator(first_token_delay=60, keepalive_interval=0.05) as emu:
        env = {**ENV, "TWELVE_LABS_BASE_URL": emu.base_url}
        with web(env=env) as (proc, lines):
            url = serving(proc, lines)
            assert f"using the Jockey emulator at {emu.base_url}" in lines[0]
            with httpx.stream(
                "POST", f"{url}/api/ask", json={"question": "Who scores first?"}
            ) as response:
                next(response.iter_lines())  # the answer has begun
                proc.send_signal(signal.SIGTERM)
                assert stopped_within(proc, 5) < 5
            assert proc.returncode == 0


def test_another_interface_needs_an_allowed_host_and_gets_a_token() -> None:
    with web("--host", "0.0.0.0") as (proc, lines):  # noqa: S104 - refused before binding
        assert proc.wait(30) == 2
    assert "--allowed-host" in "".join(lines)
    args = argparse.Namespace(
        host="0.0.0.0",  # noqa: S104 - not bound here
        allowed_host=["jockey.lan"],
        token=None,
        store="ks_x",
        max_file_size=10,
        max_files=1,
    )
    settings = _settings(args, {})
    assert settings.token
    assert len(settings.token) >= 24
    assert settings.allowed_hosts == ("jockey.lan",)
    loopback = argparse.Namespace(**{**vars(args), "host": "127.0.0.1"})
    assert _settings(loopback, {}).token is None


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        env = {
            **ENV,
            "TWELVE_LABS_API_KEY": "tlk_x",
            "TWELVE_LABS_KNOWLEDGE_STORE_ID": "ks_x",
        }
        with web("--port", port, env=env) as (proc, lines):
            assert proc.wait(30) == 1
    assert "pass another --port" in "".join(lines)


def test_without_the_web_extra_it_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from langchain_jockey.__main__ import main\n"
        "raise SystemExit(main(['web']))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "pip install 'langchain-jockey[web]'" in result.stderr
