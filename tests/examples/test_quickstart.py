"""The README's main command: examples/quickstart.py streams an answer from the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from quickstart import QUESTION  # noqa: E402


@pytest.mark.slow
def test_quickstart_streams_tokens_before_it_finishes() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TWELVE_LABS_API_KEY", "TWELVELABS_API_KEY")
    }
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "examples" / "quickstart.py")],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    seen = b""
    while b"A: In " not in seen:
        byte = proc.stdout.read(1)
        assert byte, f"quickstart ended before streaming an answer: {seen!r}"
        seen += byte
    assert proc.poll() is None  # the first token was printed while the answer streamed
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    out = (seen + rest).decode()
    assert "using the local Jockey emulator at http://127.0.0.1:" in out
    with Emulator() as emu:
        expected = ChatJockey(**emu.chat_kwargs()).invoke(QUESTION).text
    assert f"A: {expected}\n" in out
    assert "[1]" in expected
    # It asks when the boats leave first: the leaving moment is cited first.
    assert expected.startswith(
        "In Harbour at dawn (timelapse), the fishing boats leave the harbour"
    )
    assert "status completed" in out
