"""The README's main command: examples/quickstart.py streams an answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def demo_answer() -> str:
    body = (ROOT / "examples" / "demo_transcript.sse").read_text(encoding="utf-8")
    events = [
        json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")
    ]
    return "".join(
        e["delta"] for e in events if e["type"] == "response.output_text.delta"
    )


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
    while b"A: In the" not in seen:
        byte = proc.stdout.read(1)
        assert byte, f"quickstart ended before streaming an answer: {seen!r}"
        seen += byte
    # The first token was printed while the answer was still streaming.
    assert proc.poll() is None
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    out = (seen + rest).decode()
    assert "replaying a recorded Jockey transcript offline" in out
    assert f"A: {demo_answer()}\n" in out
    assert "status completed" in out
    assert "8412 in / 71 out tokens" in out
