"""Shared by the examples: a ChatJockey on the live API, or on the local emulator.

With TWELVE_LABS_API_KEY (and TWELVE_LABS_KNOWLEDGE_STORE_ID) set, the examples
ask the live Jockey API. Without a key they start the local Jockey emulator on a
free loopback port, paced like the real service, and say so in one line.
JOCKEY_EMULATOR_FIRST_TOKEN_DELAY / JOCKEY_EMULATOR_DELTA_DELAY change the pace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_jockey import ChatJockey


def live() -> bool:
    """Whether a key for the live API is configured."""
    return bool(
        os.environ.get("TWELVE_LABS_API_KEY") or os.environ.get("TWELVELABS_API_KEY")
    )


@contextmanager
def jockey(**kwargs: Any) -> Iterator[ChatJockey]:
    """A ChatJockey for the live API if a key is set, else for the emulator."""
    if live():
        print("Using the live Jockey API (TWELVE_LABS_API_KEY is set).", flush=True)
        yield ChatJockey(**kwargs)
        return
    from langchain_jockey.emulator import Emulator

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
