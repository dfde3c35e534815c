"""Shared by the examples: a ChatJockey on the live API, or on the local emulator.

With TWELVE_LABS_API_KEY (and TWELVE_LABS_KNOWLEDGE_STORE_ID) set, the examples
ask the API at TWELVE_LABS_BASE_URL (the live one by default) and say which. Without a key they start the local Jockey emulator on a
free loopback port, paced like the real service, and say so in one line.
JOCKEY_EMULATOR_FIRST_TOKEN_DELAY / JOCKEY_EMULATOR_DELTA_DELAY change the pace.
Without a key but with TWELVE_LABS_BASE_URL set, they use the emulator already
serving there (`python -m langchain_jockey.emulator --port 8600`), with its demo
key and store: several processes then share its sessions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from langchain_jockey import ChatJockey, JockeyError
from langchain_jockey.chat_models import DEFAULT_BASE_URL


def live() -> bool:
    """Whether an API key is configured (either env spelling)."""
    return bool(
        os.environ.get("TWELVE_LABS_API_KEY") or os.environ.get("TWELVELABS_API_KEY")
    )


def emulator_url() -> str | None:
    """Without a key, TWELVE_LABS_BASE_URL (either spelling): an emulator run apart."""
    if live():
        return None
    return os.environ.get("TWELVE_LABS_BASE_URL") or os.environ.get(
        "TWELVELABS_BASE_URL"
    )


def endpoint(llm: ChatJockey) -> str:
    """Which Jockey a model talks to, from its base URL (not from the key)."""
    if llm.base_url.rstrip("/") == DEFAULT_BASE_URL:
        return f"the live Jockey API at {llm.base_url}"
    host = urlsplit(llm.base_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"a local Jockey server (an emulator?) at {llm.base_url}"
    return f"the Jockey API at {llm.base_url}"


@contextmanager
def jockey(**kwargs: Any) -> Iterator[ChatJockey]:
    """A ChatJockey for the configured API if a key is set, else for the emulator.

    A Jockey error ends the example with its one-line message, not a traceback.
    """
    try:
        with _jockey(**kwargs) as llm:
            yield llm
    except JockeyError as err:
        print(f"\n{type(err).__name__}: {err}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


@contextmanager
def _jockey(**kwargs: Any) -> Iterator[ChatJockey]:
    if live():
        llm = ChatJockey(**kwargs)
        print(f"Using {endpoint(llm)}.", flush=True)
        yield llm
        return
    from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, Emulator

    url = emulator_url()
    if url:
        store = os.environ.get("TWELVE_LABS_KNOWLEDGE_STORE_ID") or os.environ.get(
            "TWELVELABS_KNOWLEDGE_STORE_ID", DEMO_STORE_ID
        )
        print(
            f"No TWELVE_LABS_API_KEY: using the Jockey emulator at {url} "
            "(TWELVE_LABS_BASE_URL), with its demo key.",
            flush=True,
        )
        yield ChatJockey(
            base_url=url, api_key=DEMO_API_KEY, knowledge_store_id=store, **kwargs
        )
        return

    pace = {
        "first_token_delay": float(
            os.environ.get("JOCKEY_EMULATOR_FIRST_TOKEN_DELAY", "0.8")
        ),
        "delta_delay": float(os.environ.get("JOCKEY_EMULATOR_DELTA_DELAY", "0.03")),
        "keepalive_interval": 0.25,
    }
    with Emulator(**pace) as emulator:
        print(
            f"No TWELVE_LABS_API_KEY: using the local Jockey emulator at {emulator.base_url}.",
            flush=True,
        )
        yield ChatJockey(**emulator.chat_kwargs(), **kwargs)


def mmss(seconds: float) -> str:
    """Seconds as mm:ss."""
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"
