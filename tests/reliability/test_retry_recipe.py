"""The README's retry advice: `max_retries`, and `with_retry` made safe by `is_retryable`.

A plain `with_retry()` sends a question again after its stream dropped
mid-answer, into the same session: a second turn. The recipe retries only
what never started.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_jockey import ChatJockey, JockeyStreamInterruptedError
from langchain_jockey.emulator import FAULT_HEADER, Emulator
from tests.support import run


def safe(llm: ChatJockey) -> Any:
    """The README's recipe."""
    return llm.with_retry(
        retry_if_exception_type=lambda err: getattr(err, "is_retryable", False),
        stop_after_attempt=3,
    )


def sent(emulator: Emulator, question: str) -> int:
    """How many times `question` reached the emulator."""
    return sum(
        r.path.endswith("/responses")
        and r.body.get("input", [{}])[0].get("content") == question
        for r in emulator.requests
    )


def faulty(emulator: Emulator, fault: str) -> ChatJockey:
    headers = {FAULT_HEADER: fault}
    return ChatJockey(**emulator.chat_kwargs(), default_headers=headers, max_retries=0)


def test_a_plain_with_retry_asks_again_after_a_stream_dropped_mid_answer(
    emulator: Emulator, mode: str
) -> None:
    question = f"Who saves the penalty? (plain, {mode})"
    naive = faulty(emulator, "drop_after=4").with_retry(
        stop_after_attempt=3, wait_exponential_jitter=False
    )
    with pytest.raises(JockeyStreamInterruptedError):
        run(mode, naive, question)
    assert sent(emulator, question) == 3  # the question went out three times


def test_the_recipe_does_not_ask_again_after_a_stream_dropped_mid_answer(
    emulator: Emulator, mode: str
) -> None:
    question = f"Who saves the penalty? (recipe, {mode})"
    with pytest.raises(JockeyStreamInterruptedError) as caught:
        run(mode, safe(faulty(emulator, "drop_after=4")), question)
    assert sent(emulator, question) == 1
    assert caught.value.is_retryable is False
    assert caught.value.session_id  # continue there, as the README says


def test_the_recipe_retries_what_never_started(emulator: Emulator, mode: str) -> None:
    question = f"Who saves the penalty? (503, {mode})"
    answer = run(mode, safe(faulty(emulator, "status=503;times=1")), question)
    assert answer.response_metadata["status"] == "completed"
    assert sent(emulator, question) == 2


def test_max_retries_alone_retries_what_never_started(
    emulator: Emulator, mode: str
) -> None:
    question = f"Who saves the penalty? (max_retries, {mode})"
    llm = ChatJockey(
        **emulator.chat_kwargs(), default_headers={FAULT_HEADER: "status=503;times=1"}
    )
    assert run(mode, llm, question).response_metadata["status"] == "completed"
    assert sent(emulator, question) == 2
