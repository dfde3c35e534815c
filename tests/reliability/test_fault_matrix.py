"""The fault matrix: every fault the emulator injects, as a ChatJockey user meets it.

Each row asserts the typed error (or the success), the text received so far and
the session kept on the error, the number of requests the server saw, and that
the connection went back to the pool (none left checked out). Sync and async.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from langchain_jockey import (
    ChatJockey,
    JockeyAuthenticationError,
    JockeyBadRequestError,
    JockeyNotFoundError,
    JockeyRateLimitError,
    JockeyServerError,
    JockeyStreamInterruptedError,
    JockeyTimeoutError,
)
from langchain_jockey.emulator import FAULT_HEADER
from tests.reliability.conftest import consume

QUESTION = "When do the fishing boats leave?"


@dataclass
class Row:
    fault: str | None
    error: type[Exception] | None
    requests: int
    deltas_before: int | None = None  # answer deltas received before the error
    settings: dict[str, Any] = field(default_factory=dict)


MATRIX = {
    "drop_after_events": Row(
        "drop_after=8", JockeyStreamInterruptedError, 1, deltas_before=4
    ),
    "response_failed_after_deltas": Row(
        "fail_after=3", JockeyServerError, 1, deltas_before=3
    ),
    "error_event_then_failed": Row(
        "error_after=2", JockeyServerError, 1, deltas_before=2
    ),
    "malformed_json_line": Row(
        "malformed_after=2", JockeyStreamInterruptedError, 1, deltas_before=2
    ),
    "unknown_event_types": Row("unknown_events", None, 1),
    "stall_with_keepalives_only": Row(
        "stall_after=2",
        JockeyTimeoutError,
        1,
        deltas_before=2,
        settings={"stream_idle_timeout": 0.3},
    ),
    "silent_stall": Row(
        "silent_stall_after=2",
        JockeyTimeoutError,
        1,
        deltas_before=2,
        settings={"timeout": httpx.Timeout(5, read=0.3)},
    ),
    "429_retry_after_then_success": Row("status=429;retry_after=1", None, 2),
    "429_plan_limit_exceeded": Row(
        "status=429;code=plan_limit_exceeded;times=99;retry_after=0",
        JockeyRateLimitError,
        1,
    ),
    "5xx_storm_beyond_max_retries": Row(
        "status=503;times=99;retry_after=0",
        JockeyServerError,
        3,
        settings={"max_retries": 2},
    ),
    "400_bad_request": Row(
        None,
        JockeyBadRequestError,
        1,
        settings={"extra_body": {"no_such_parameter": True}},
    ),
    # Jockey no longer has the session: asked again once, in a new session
    "400_unknown_session": Row(
        None,
        None,
        2,
        settings={"session_id": "sess_0195d0e0-0000-7000-8000-00000000dead"},
    ),
    "401": Row(None, JockeyAuthenticationError, 1, settings={"api_key": "tlk_wrong"}),
    "404_unknown_store": Row(
        None,
        JockeyNotFoundError,
        1,
        settings={"knowledge_store_id": "ks_0195d0e0-0000-7000-8000-00000000dead"},
    ),
    "truncated_answer": Row("truncate_after=3", None, 1),
}


def expected_deltas(emulator, n: int) -> str:
    """The first n answer deltas the emulator sends for QUESTION."""
    from langchain_jockey.emulator._answers import compose, pieces
    from langchain_jockey.emulator._store import STORES

    answer = compose(
        STORES[emulator.knowledge_store_id],
        QUESTION,
        None,
        instructions=None,
        within=None,
    )
    return "".join(pieces(answer.text)[:n])


@pytest.mark.parametrize("name", list(MATRIX))
def test_fault(mode, emulator, name) -> None:
    row = MATRIX[name]
    headers = {FAULT_HEADER: row.fault} if row.fault else {}
    llm = ChatJockey(
        **{**emulator.chat_kwargs(), **row.settings}, default_headers=headers
    )
    outcome = consume(mode, llm, QUESTION)

    assert len(emulator.requests) == row.requests
    assert outcome.busy == 0  # the connection was released
    if row.error is None:
        assert outcome.error is None, outcome.error
        assert outcome.message.response_metadata["session_id"].startswith("sess_")
        return
    assert type(outcome.error) is row.error, outcome.error
    if row.deltas_before is not None:
        assert outcome.error.partial_text == expected_deltas(
            emulator, row.deltas_before
        )
        assert (
            outcome.text == outcome.error.partial_text
        )  # what the consumer saw, no more
        assert outcome.error.session_id.startswith("sess_")
        assert outcome.error.response_id.startswith("resp_")
    else:
        assert outcome.error.status_code in (400, 401, 404, 429, 503)
        assert outcome.text == ""


def test_truncated_answer_reports_status_and_reason(mode, emulator) -> None:
    llm = ChatJockey(
        **emulator.chat_kwargs(), default_headers={FAULT_HEADER: "truncate_after=3"}
    )
    outcome = consume(mode, llm, QUESTION)
    meta = outcome.message.response_metadata
    assert meta["status"] == "incomplete"
    assert meta["incomplete_details"] == {"reason": "max_output_tokens"}
    assert outcome.text == expected_deltas(emulator, 3)


def test_plan_limit_is_not_retryable(mode, emulator) -> None:
    llm = ChatJockey(
        **emulator.chat_kwargs(),
        default_headers={FAULT_HEADER: "status=429;code=plan_limit_exceeded;times=9"},
    )
    outcome = consume(mode, llm, QUESTION)
    assert outcome.error.code == "plan_limit_exceeded"
    assert outcome.error.is_retryable is False


def test_a_failed_turn_can_be_resumed_with_its_session(mode, emulator) -> None:
    llm = ChatJockey(**emulator.chat_kwargs())
    broken = ChatJockey(
        **emulator.chat_kwargs(), default_headers={FAULT_HEADER: "drop_after=8"}
    )
    first = consume(mode, llm, "Who saves the penalty?")
    session = first.message.response_metadata["session_id"]
    failed = consume(mode, broken, "What happens next?", session_id=session)
    assert failed.error.session_id == session
    resumed = consume(
        mode, llm, "What happens next?", session_id=failed.error.session_id
    )
    assert resumed.error is None
    assert resumed.message.response_metadata["session_id"] == session
