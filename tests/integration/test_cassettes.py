"""The cassettes: no secret in them, and a missing one fails loudly (no silent recording)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_jockey.emulator import DEMO_API_KEY
from tests.integration.conftest import target
from tests.integration.vcr_setup import CASSETTES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _replay_only() -> None:
    if target().kind != "replay":
        pytest.skip("checks the recorded cassettes; nothing to check while recording")


def cassettes() -> list[Path]:
    return sorted(CASSETTES.glob("*.yaml"))


def test_there_are_cassettes_for_the_suite() -> None:
    assert len(cassettes()) >= 30


@pytest.mark.parametrize(
    "secret",
    [
        DEMO_API_KEY,
        os.environ.get("TWELVE_LABS_API_KEY") or DEMO_API_KEY,
        "x-api-key",
        "tlk_",
    ],
)
def test_no_cassette_holds_a_key(secret: str) -> None:
    leaks = [
        p.name
        for p in cassettes()
        if secret.lower() in p.read_text(encoding="utf-8").lower()
    ]
    assert leaks == []


def test_cassettes_keep_only_content_headers() -> None:
    for path in cassettes():
        for line in path.read_text(encoding="utf-8").splitlines():
            if (
                line.startswith("      ")
                and line.strip().endswith(":")
                and not line.strip().startswith("-")
            ):
                assert line.strip() in {"content-type:", "retry-after:"}, (
                    path.name,
                    line,
                )


def test_a_missing_cassette_fails_the_run_and_names_it(tmp_path: Path) -> None:
    copy = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, copy)
    removed = copy / "test_jockey.test_structured_output.yaml"
    removed.unlink()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/integration/test_jockey.py::test_structured_output",
            "-q",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env={**os.environ, "JOCKEY_CASSETTES_DIR": str(copy)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "test_jockey.test_structured_output.yaml" in result.stdout
    assert "CannotOverwriteExistingCassetteException" in result.stdout
    assert not removed.exists()  # nothing was recorded


@pytest.mark.vcr
def test_replay_opens_no_socket() -> None:
    with pytest.raises(Exception, match="[Ss]ocket"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
