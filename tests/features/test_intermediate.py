"""include=["intermediate_outputs"]: Jockey's commentary and tool steps stream live as reasoning."""

from __future__ import annotations

import asyncio
import json

from langchain_core.callbacks import BaseCallbackHandler

from langchain_jockey import ChatJockey
from tests.support import merged, run

QUESTION = "Who saves the penalty?"
INCLUDE = {"include": ["intermediate_outputs"]}


def test_reasoning_and_steps_stream_before_the_answer_and_stay_out_of_text(
    mode, llm
) -> None:
    chunks = run(mode, llm, QUESTION, method="stream", **INCLUDE)
    first_text = next(i for i, c in enumerate(chunks) if c.text)
    early = chunks[:first_text]
    assert any(c.additional_kwargs.get("reasoning_content") for c in early)
    steps = [s for c in early for s in c.additional_kwargs.get("jockey_steps", [])]
    assert [s["type"] for s in steps] == ["function_call", "function_call_output"]
    assert json.loads(steps[0]["arguments"])["query"] == QUESTION
    total = merged(chunks)
    assert "Searching" in total.additional_kwargs["reasoning_content"]
    assert "Searching" not in total.text
    plain = run(mode, llm, QUESTION)
    assert total.text == plain.text  # the answer is unchanged


def test_invoke_carries_the_same_reasoning_and_steps(mode, llm) -> None:
    message = run(mode, llm, QUESTION, **INCLUDE)
    streamed = merged(run(mode, llm, QUESTION, method="stream", **INCLUDE))
    assert (
        message.additional_kwargs["reasoning_content"]
        == streamed.additional_kwargs["reasoning_content"]
    )
    assert [s["type"] for s in message.additional_kwargs["jockey_steps"]] == [
        "function_call",
        "function_call_output",
    ]
    blocks = [b["type"] for b in message.content_blocks]
    assert blocks == ["reasoning", "server_tool_call", "server_tool_result", "text"]


def test_reasoning_reaches_astream_events_while_the_answer_is_prepared(llm) -> None:
    async def collect() -> list:
        return [
            e
            async for e in llm.astream_events(QUESTION, version="v2", **INCLUDE)
            if e["event"] == "on_chat_model_stream"
        ]

    events = asyncio.run(collect())
    first_text = next(i for i, e in enumerate(events) if e["data"]["chunk"].text)
    assert any(
        e["data"]["chunk"].additional_kwargs.get("reasoning_content")
        for e in events[:first_text]
    )


class _Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.tokens: list[str] = []

    def on_llm_new_token(self, token, *, chunk=None, **kwargs) -> None:  # type: ignore[override]
        self.tokens.append(token)
        if chunk is not None:
            self.reasoning.append(
                chunk.message.additional_kwargs.get("reasoning_content", "")
            )


def test_callbacks_see_reasoning_live(emulator) -> None:
    handler = _Tokens()
    llm = ChatJockey(**emulator.chat_kwargs(), streaming=True, callbacks=[handler])
    message = llm.invoke(QUESTION, **INCLUDE)
    assert "".join(handler.reasoning) == message.additional_kwargs["reasoning_content"]
    assert "".join(handler.tokens) == message.text
