"""Citations as standard LangChain annotations, for invoke, the stream and output_version v1."""

from __future__ import annotations

import pytest

from langchain_jockey import ChatJockey
from tests.support import merged, run

QUESTIONS = [
    "When do the fishing boats leave?",
    "Who saves the penalty?",
    "Summarise the lifeboat drill",
]


def text_block(message):
    blocks = [b for b in message.content_blocks if b["type"] == "text"]
    assert len(blocks) == 1
    return blocks[0]


def check(message) -> None:
    block = text_block(message)
    text = block["text"]
    assert text == message.text
    citations = block["annotations"]
    assert citations
    raw = message.response_metadata["annotations"]
    assert len(raw) == len(citations)
    for number, (citation, note) in enumerate(zip(citations, raw, strict=True), 1):
        assert citation["type"] == "citation"
        assert (
            text[citation["start_index"] : citation["end_index"]] == f"[{number}]"
        )  # exclusive end
        assert (
            text[note["start_index"] : note["end_index"] + 1] == f"[{number}]"
        )  # Jockey's inclusive end
        extras = citation["extras"]
        assert extras["type"] == "video_citation"
        assert extras["item_id"].startswith("ksi_")
        assert 0 <= extras["start_sec"] < extras["end_sec"]
        assert {"title", "thumbnail_url", "hls_url"} <= set(extras)
        assert citation["title"] == extras["title"]
        assert citation["url"] == extras["hls_url"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_invoke_citations(mode, llm, question) -> None:
    check(run(mode, llm, question))


@pytest.mark.parametrize("question", QUESTIONS)
def test_streamed_citations(mode, llm, question) -> None:
    chunks = run(mode, llm, question, method="stream")
    assert all(not c.response_metadata.get("annotations") for c in chunks[:-1])
    check(merged(chunks))


def test_output_version_v1_puts_citations_in_content(mode, emulator) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), output_version="v1")
    for message in (
        run(mode, llm, QUESTIONS[0]),
        merged(run(mode, llm, QUESTIONS[0], method="stream")),
    ):
        assert isinstance(message.content, list)
        (block,) = [b for b in message.content if b["type"] == "text"]
        assert block["annotations"]
        assert (
            block["text"][
                block["annotations"][0]["start_index"] : block["annotations"][0][
                    "end_index"
                ]
            ]
            == "[1]"
        )
        assert message.response_metadata["output_version"] == "v1"


def test_an_answer_without_citations_has_none(llm) -> None:
    message = llm.invoke("Tell me about quantum chromodynamics")
    assert "annotations" not in text_block(message)
    assert message.response_metadata["annotations"] == []


def test_content_blocks_are_the_same_on_every_read_and_for_stream_and_invoke(
    mode, llm
) -> None:
    # Why the blocks are built as core's TypedDicts, not with its create_*
    # factories: those stamp a random "lc_…" id on every block they make, so
    # `content_blocks` (computed on each read) would differ from read to read.
    message = run(mode, llm, QUESTIONS[0])
    assert message.content_blocks == message.content_blocks
    streamed = merged(run(mode, llm, QUESTIONS[0], method="stream"))
    assert text_block(streamed)["annotations"] == text_block(message)["annotations"]
