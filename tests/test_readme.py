"""The README's two quickstart commands stay true, and CI runs the test one verbatim."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from langchain_jockey.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_quickstart_has_exactly_two_commands() -> None:
    main, tests = quickstart_commands()
    assert "examples/quickstart.py" in main
    assert "pytest" in tests
    assert (ROOT / "examples" / "quickstart.py").exists()
    # What pip cannot install (Chromium, PostgreSQL) is provisioned first.
    assert tests.startswith("bash tests/provision.sh && ")
    assert (ROOT / "tests" / "provision.sh").exists()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, tests = quickstart_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines


SETUP_URL = "http://127.0.0.1:8600/v1.3"
NEEDS = "# needs:"  # the first line of a block that needs a real service, and what


def python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", readme, re.DOTALL)


def test_the_readme_shows_its_emulator_setup_once_before_every_other_block() -> None:
    setup, *rest = python_blocks()
    assert SETUP_URL in setup
    assert "STORE_ID = " in setup
    assert not any(SETUP_URL in block for block in rest)
    assert not any('"ks_…"' in block for block in rest)  # placeholders don't run


def test_every_python_block_in_the_readme_runs_against_the_emulator(capsys) -> None:
    blocks = python_blocks()
    marked = [b for b in blocks if b.startswith(NEEDS)]
    assert all(len(b.splitlines()[0]) > len(NEEDS) + 3 for b in marked)  # says what
    env = {k: v for k, v in os.environ.items() if "TWELVE" not in k}
    with Emulator() as emulator, mock.patch.dict(os.environ, env, clear=True):
        namespace: dict[str, Any] = {"__name__": "readme"}
        for number, block in enumerate(blocks):
            if block.startswith(NEEDS):
                continue
            code = block.replace(SETUP_URL, emulator.base_url)
            try:
                # dont_inherit: not this file's `from __future__ import annotations`
                compiled = compile(
                    code, f"README block {number}", "exec", dont_inherit=True
                )
                exec(compiled, namespace)  # noqa: S102
            except Exception as exc:
                pytest.fail(f"README python block {number} failed: {exc!r}\n{block}")
    printed = capsys.readouterr().out
    assert "[1]" in printed  # the snippets printed cited answers
    assert "progress:" in printed  # and the agent's live progress
