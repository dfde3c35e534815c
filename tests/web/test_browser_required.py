"""Without Chromium the browser tests fail, saying how to install it; never skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_missing_chromium_fails_the_browser_tests_and_says_how_to_install_it() -> (
    None
):
    env = {**os.environ, "JOCKEY_CHROMIUM": "/nonexistent/chromium"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/web/test_page.py",
            "-q",
            "-k",
            "no_horizontal_scroll and 360",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert "skipped" not in result.stdout
    assert "bash tests/provision.sh" in result.stdout
    assert "apt-get install -y chromium" in result.stdout
