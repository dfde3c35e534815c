"""`python -m langchain_jockey.emulator` and import isolation."""

from __future__ import annotations

import subprocess
import sys

import httpx

from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, spawn
from tests.emulator.conftest import body, frames


def test_cli_serves_on_loopback_until_interrupted() -> None:
    proc, url = spawn("--delta-delay", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert DEMO_STORE_ID in proc.stdout.readline()
        response = httpx.post(
            f"{url}/responses",
            json=body(stream=True),
            headers={"x-api-key": DEMO_API_KEY},
        )
        assert frames(response.text)[-1] == (None, "[DONE]")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_rejects_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_jockey.emulator",
            "--port",
            "0",
            "--fault",
            "nope=1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_importing_the_package_does_not_import_the_emulator() -> None:
    code = "import sys, langchain_jockey; print(any(m.startswith('langchain_jockey.emulator') for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
