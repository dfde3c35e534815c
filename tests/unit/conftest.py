"""`stream` and `invoke` as fixtures, sync or async by the shared `mode`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import run


@pytest.fixture
def stream(mode: str) -> Callable[..., Any]:
    """`stream` or `astream`, collected into a list."""
    return lambda chat, value, /, **kwargs: run(mode, chat, value, "stream", **kwargs)


@pytest.fixture
def invoke(mode: str) -> Callable[..., Any]:
    """`invoke` or `ainvoke`."""
    return lambda chat, value, /, **kwargs: run(mode, chat, value, **kwargs)
