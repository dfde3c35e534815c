"""Jockey features over recorded interactions: streaming, sessions, structured
output, citations, intermediate outputs, selections and error responses."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from langchain_jockey import (
    ChatJockey,
    JockeyAuthenticationError,
    JockeyNotFoundError,
)
from tests.integration.conftest import target
from tests.support import merged

pytestmark = pytest.mark.vcr

QUESTION = "When do the fishing boats leave?"


def llm(**kwargs) -> ChatJockey:
    return ChatJockey(**{**target().chat_kwargs(), **kwargs})


def test_stream_yields_deltas_then_one_terminal_chunk() -> None:
    chunks = list(llm().stream(QUESTION))
    assert len(chunks) > 5
    assert chunks[-1].chunk_position == "last"
    total = merged(chunks)
    assert total.text
    assert total.id.startswith("resp_")
    assert total.response_metadata["model_name"] == "jockey1.0"
    assert total.response_metadata["session_id"].startswith("sess_")
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1


async def test_astream_matches_the_recorded_answer() -> None:
    chunks = [c async for c in llm().astream(QUESTION)]
    assert merged(chunks).response_metadata["status"] == "completed"


def test_second_turn_continues_the_session() -> None:
    model = llm()
    history = [HumanMessage("Who saves the penalty?")]
    first = model.invoke(history)
    history += [first, HumanMessage("What happens next?")]
    second = model.invoke(history)
    assert (
        second.response_metadata["session_id"] == first.response_metadata["session_id"]
    )


class Moments(BaseModel):
    summary: str
    titles: list[str]


def test_structured_output() -> None:
    result = llm().with_structured_output(Moments).invoke(QUESTION)
    assert isinstance(result, Moments)
    assert result.titles
    parts = list(llm().with_structured_output(Moments).stream(QUESTION))
    assert len(parts) >= 4
    assert parts[-1] == result


def test_citations_are_annotations_on_the_text_block() -> None:
    message = llm().invoke("Who saves the penalty?")
    (block,) = [b for b in message.content_blocks if b["type"] == "text"]
    assert block["annotations"]
    for number, citation in enumerate(block["annotations"], 1):
        assert (
            block["text"][citation["start_index"] : citation["end_index"]]
            == f"[{number}]"
        )


def test_intermediate_outputs_arrive_as_reasoning() -> None:
    chunks = list(llm(include=["intermediate_outputs"]).stream(QUESTION))
    total = merged(chunks)
    assert total.additional_kwargs["reasoning_content"]
    assert total.additional_kwargs["jockey_steps"]
    assert total.additional_kwargs["reasoning_content"] not in total.text


def test_selections_narrow_the_answer() -> None:
    # The market walkthrough of the demo store; recorded against the emulator.
    item = "ksi_0195d0e0-0000-7000-8000-0000000000a2"
    message = llm().invoke(
        "What is sold in {{sel:0}}?", selections=[{"kind": "item", "id": item}]
    )
    assert {
        c["extras"]["item_id"] for c in message.content_blocks[-1]["annotations"]
    } == {item}


def test_wrong_key_is_an_authentication_error() -> None:
    with pytest.raises(JockeyAuthenticationError) as info:
        llm(api_key="tlk_wrong_key_for_the_cassette").invoke(QUESTION)
    assert info.value.status_code == 401


def test_unknown_store_is_not_found() -> None:
    with pytest.raises(JockeyNotFoundError):
        llm(knowledge_store_id="ks_00000000-0000-7000-8000-00000000dead").invoke(
            QUESTION
        )


def test_an_unknown_session_is_asked_again_in_a_new_session() -> None:
    dead = "sess_00000000-0000-7000-8000-00000000dead"
    with pytest.warns(UserWarning, match="no longer has this conversation's session"):
        answer = llm().invoke(QUESTION, session_id=dead)
    assert answer.response_metadata["session_restarted"] is True
    assert answer.response_metadata["session_id"] not in (None, dead)
