"""Integration suite: replay cassettes by default; record with --record-mode.

Re-record everything (writes `cassettes/`):

    .venv/bin/python -m pytest tests/integration --record-mode=rewrite

against the emulator, started automatically, or against the live API when
TWELVE_LABS_API_KEY and TWELVE_LABS_KNOWLEDGE_STORE_ID are set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import Emulator
from tests.integration import vcr_setup


@dataclass
class Target:
    """Where requests go: the cassettes, the emulator or the live API."""

    kind: str  # "replay" | "emulator" | "live"
    base_url: str
    api_key: str
    knowledge_store_id: str
    emulator: Emulator | None = None

    def chat_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "knowledge_store_id": self.knowledge_store_id,
        }


_TARGET: Target | None = None


def _recording(config: pytest.Config) -> bool:
    return config.getoption("--record-mode", default="none") not in (None, "none")


def target() -> Target:
    """The current target (set up when the session starts)."""
    assert _TARGET is not None, "the integration conftest did not configure a target"
    return _TARGET


def pytest_configure(config: pytest.Config) -> None:
    global _TARGET  # noqa: PLW0603 - one target per test session
    if not _recording(config):
        _TARGET = Target(
            "replay",
            f"{vcr_setup.PUBLIC_URL}/v1.3",
            "replay-key",
            vcr_setup.recorded_store(),
        )
        return
    configured = ChatJockey()  # reads every setting from either env spelling
    if configured.api_key and configured.knowledge_store_id:
        _TARGET = Target(
            "live",
            configured.base_url,
            configured.api_key.get_secret_value(),
            configured.knowledge_store_id,
        )
    else:
        emulator = Emulator().start()
        _TARGET = Target(
            "emulator",
            emulator.base_url,
            emulator.api_key,
            emulator.knowledge_store_id,
            emulator,
        )
    vcr_setup.save_recording(_TARGET.kind, _TARGET.knowledge_store_id)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _TARGET is not None and _TARGET.emulator is not None:
        _TARGET.emulator.stop()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.fspath).startswith(here) or _TARGET is None:
            continue
        if _TARGET.kind == "replay" and item.get_closest_marker("vcr"):
            # Replay opens no socket at all (unix sockets stay, for event loops).
            item.add_marker(pytest.mark.disable_socket)
        elif _TARGET.kind == "live":
            # Recording live is the one time these tests may leave loopback.
            item.add_marker(pytest.mark.enable_socket)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    """`<Class>.<test>` for class tests, `<module>.<test>` for functions."""
    owner = (
        request.cls.__name__
        if request.cls
        else request.module.__name__.rsplit(".", 1)[-1]
    )
    return f"{owner}.{request.node.name}"


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    t = target()
    secrets = [t.api_key] if t.kind != "replay" else []
    return vcr_setup.vcr_config(secrets)


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_serializer("readable_yaml", vcr_setup.ReadableYaml())
    vcr.register_matcher("json_body", vcr_setup.json_body)
