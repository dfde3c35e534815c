"""`python -m langchain_jockey.emulator` and import isolation."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import pytest

from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, spawn
from tests.emulator.conftest import body, frames


def test_cli_serves_on_loopback_until_interrupted() -> None:
    proc, url = spawn("--delta-delay", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        store = httpx.get(
            f"{url}/knowledge-stores/{DEMO_STORE_ID}",
            headers={"x-api-key": DEMO_API_KEY},
        )
        assert store.json()["_id"] == DEMO_STORE_ID
        response = httpx.post(
            f"{url}/responses",
            json=body(stream=True),
            headers={"x-api-key": DEMO_API_KEY},
        )
        assert frames(response.text)[-1] == (None, "[DONE]")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pipes() -> set[str]:
    """The pipes this process holds open (by inode)."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed since it was listed
            target = fd.readlink().name
            if target.startswith("pipe:"):
                found.add(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_spawn_leaves_no_pipe_open() -> None:
    with warnings.catch_warnings():  # what earlier tests left is not ours
        warnings.simplefilter("ignore")
        gc.collect()
    before = _pipes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proc, url = spawn()
        try:
            assert (proc.stdin, proc.stdout, proc.stderr) == (None, None, None)
            assert _pipes() == before
            answer = httpx.get(f"{url}/knowledge-stores", headers={"x-api-key": "k"})
            assert answer.status_code == 401  # it serves
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        del proc
        gc.collect()
    assert _pipes() == before
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert [str(w.message) for w in leaks] == []


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
