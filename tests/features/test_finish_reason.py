"""`response_metadata["finish_reason"]`, as the partner packages set it.

`"stop"` for a completed answer, `"length"` for one cut at the output limit
(the emulator's `truncate_after` fault: `status: "incomplete"`, reason
`max_output_tokens`). One chunk carries it, so an aggregated stream has it
once, not `"stopstop"`. LangChain's v3 stream passes it on in the
`message-finish` event (core 1.8.3's bridge copies `response_metadata` there;
1.8.4 reads `finish_reason` from it).
"""

from __future__ import annotations

import pytest

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import FAULT_HEADER, Emulator
from tests.support import merged, run, v3_stream

QUESTION = "Who saves the penalty?"

pytestmark = pytest.mark.filterwarnings("ignore:The v3 streaming protocol")

ENDINGS = pytest.mark.parametrize(
    ("fault", "reason"),
    [(None, "stop"), ("truncate_after=3", "length")],
    ids=["completed", "cut"],
)


def _model(emulator: Emulator, fault: str | None) -> ChatJockey:
    headers = {FAULT_HEADER: fault} if fault else None
    return ChatJockey(**emulator.chat_kwargs(), default_headers=headers)


@ENDINGS
def test_invoke_and_stream_report_the_finish_reason_once(
    mode: str, emulator: Emulator, fault: str | None, reason: str
) -> None:
    llm = _model(emulator, fault)
    assert run(mode, llm, QUESTION).response_metadata["finish_reason"] == reason
    chunks = run(mode, llm, QUESTION, "stream")
    assert merged(chunks).response_metadata["finish_reason"] == reason
    carriers = [c for c in chunks if "finish_reason" in c.response_metadata]
    assert len(carriers) == 1
    assert carriers[0].chunk_position == "last"


@ENDINGS
def test_the_v3_message_finish_event_carries_the_finish_reason(
    mode: str, emulator: Emulator, fault: str | None, reason: str
) -> None:
    stream, events = v3_stream(mode, _model(emulator, fault), QUESTION)
    (finish,) = [e for e in events if e["event"] == "message-finish"]
    assert finish["metadata"]["finish_reason"] == reason
    assert stream.output_message.response_metadata["finish_reason"] == reason
