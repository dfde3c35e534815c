"""LangChain messages -> Jockey request body (the README), without I/O."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_jockey import ChatJockey
from langchain_jockey._messages import RequestOptions, build_body, session_lost
from langchain_jockey.errors import error_class

STORE = "ks_1"


def body(messages, **options):
    opts = {"model": "jockey1.0", "knowledge_store_id": STORE, **options}
    return build_body(messages, RequestOptions(**opts))


def jockey_answer(text: str, session: str = "sess_A", store: str = STORE) -> AIMessage:
    return AIMessage(
        text, response_metadata={"session_id": session, "knowledge_store_id": store}
    )


def content(b) -> str:
    assert len(b["input"]) == 1
    item = b["input"][0]
    assert item["type"] == "message"
    assert item["role"] == "user"
    return item["content"]


def test_single_human_message_becomes_one_user_item() -> None:
    assert body([HumanMessage("hi")]) == {
        "model": "jockey1.0",
        "knowledge_store_id": STORE,
        "input": [{"type": "message", "role": "user", "content": "hi"}],
        "stream": True,
    }


def test_system_messages_become_instructions() -> None:
    b = body(
        [SystemMessage("Be brief."), SystemMessage("Use bullets."), HumanMessage("hi")]
    )
    assert b["instructions"] == "Be brief.\n\nUse bullets."
    assert content(b) == "hi"


def test_instructions_precedence_call_then_system_then_field() -> None:
    msgs = [SystemMessage("from system"), HumanMessage("hi")]
    assert (
        body(msgs, instructions="call", default_instructions="field")["instructions"]
        == "call"
    )
    assert body(msgs, default_instructions="field")["instructions"] == "from system"
    assert (
        body([HumanMessage("hi")], default_instructions="field")["instructions"]
        == "field"
    )


def test_session_continues_from_the_last_jockey_answer_and_sends_only_later_turns() -> (
    None
):
    msgs = [
        HumanMessage("first question"),
        jockey_answer("first answer", "sess_A"),
        HumanMessage("second"),
        jockey_answer("second answer", "sess_B"),
        HumanMessage("third"),
        HumanMessage("and more"),
    ]
    b = body(msgs)
    assert b["session_id"] == "sess_B"
    assert content(b) == "third\n\nand more"


def test_explicit_session_id_wins_over_the_history() -> None:
    msgs = [HumanMessage("q"), jockey_answer("a", "sess_A"), HumanMessage("next")]
    b = body(msgs, session_id="sess_EXPLICIT")
    assert b["session_id"] == "sess_EXPLICIT"
    assert content(b) == "next"


def test_answer_from_another_store_does_not_anchor_a_session() -> None:
    msgs = [
        HumanMessage("q"),
        jockey_answer("a", "sess_A", store="ks_other"),
        HumanMessage("next"),
    ]
    b = body(msgs)
    assert "session_id" not in b
    assert (
        content(b)
        == "Conversation so far:\nUser: q\nAssistant: a\n\nNew message:\nnext"
    )


def test_foreign_history_is_folded_into_a_labelled_transcript() -> None:
    msgs = [
        SystemMessage("sys"),
        SystemMessage("sys2"),
        HumanMessage("hello"),
        HumanMessage("there"),
        AIMessage("hi!"),
        AIMessage("how can I help?"),
        HumanMessage("what is in the videos?"),
    ]
    b = body(msgs)
    assert "session_id" not in b
    assert content(b) == (
        "Conversation so far:\nUser: hello\nUser: there\nAssistant: hi!\n"
        "Assistant: how can I help?\n\nNew message:\nwhat is in the videos?"
    )


def test_foreign_turns_after_a_jockey_answer_are_folded_into_the_session_turn() -> None:
    msgs = [
        HumanMessage("q"),
        jockey_answer("a"),
        HumanMessage("x"),
        AIMessage("y"),
        HumanMessage("z"),
    ]
    b = body(msgs)
    assert b["session_id"] == "sess_A"
    assert (
        content(b) == "Conversation so far:\nUser: x\nAssistant: y\n\nNew message:\nz"
    )


def test_text_blocks_are_joined_and_chat_messages_map_by_role() -> None:
    msgs = [
        ChatMessage(role="system", content="sys"),
        ChatMessage(role="user", content=[{"type": "text", "text": "a"}, "b"]),
    ]
    b = body(msgs)
    assert b["instructions"] == "sys"
    assert content(b) == "ab"


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "at least one message"),
        ([HumanMessage("")], "non-empty"),
        ([HumanMessage("x" * 10_001)], "10,000"),
        (
            [HumanMessage([{"type": "image_url", "image_url": {"url": "data:"}}])],
            "'image_url'",
        ),
        ([HumanMessage([{"type": "image", "url": "https://x/y.png"}])], "'image'"),
        (
            [HumanMessage("q"), ToolMessage("r", tool_call_id="1")],
            "last message must be a human",
        ),
        ([HumanMessage("q"), FunctionMessage("r", name="f")], "FunctionMessage"),
        (
            [
                HumanMessage("q"),
                AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
            ],
            "last message must be a human",
        ),
        ([HumanMessage("q"), AIMessage("a")], "last message must be a human"),
    ],
)
def test_unsupported_input_raises_a_value_error_naming_it(messages, fragment) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        body(messages)


def test_exactly_ten_thousand_characters_is_accepted() -> None:
    assert len(content(body([HumanMessage("x" * 10_000)]))) == 10_000


def test_folded_history_over_the_limit_keeps_the_newest_turns_marks_and_warns() -> None:
    msgs = [
        HumanMessage("a" * 6000),
        AIMessage("b" * 5000),
        HumanMessage("c" * 3000),
        AIMessage("d" * 2000),
        HumanMessage("the question"),
    ]
    with pytest.warns(UserWarning, match=r"the 2 oldest turn\(s\)") as caught:
        text = content(body(msgs))
    assert len(text) <= 10_000
    assert "a" * 100 not in text
    assert "b" * 100 not in text
    assert "User: " + "c" * 3000 in text
    assert "Assistant: " + "d" * 2000 in text
    assert text.endswith("the question")
    assert "11,017 characters" in str(caught[0].message)  # how much was left out
    assert text.startswith(  # and the transcript says so too: nothing cut silently
        "Conversation so far:\n[2 earlier turn(s) left out: the conversation is "
        "longer than Jockey's 10,000-character input]\nUser: ccc"
    )


def test_when_only_the_marker_fits_the_transcript_is_the_marker() -> None:
    msgs = [HumanMessage("a" * 3000), AIMessage("b" * 3000), HumanMessage("q" * 9900)]
    with pytest.warns(UserWarning, match=r"the 2 oldest turn\(s\)"):
        text = content(body(msgs))
    assert text == "q" * 9900  # the question alone: not even the marker fits
    msgs[-1] = HumanMessage("q" * 9700)
    with pytest.warns(UserWarning, match=r"the 2 oldest turn\(s\)"):
        text = content(body(msgs))
    assert text.startswith("Conversation so far:\n[2 earlier turn(s) left out")
    assert text.endswith("New message:\n" + "q" * 9700)
    assert len(text) <= 10_000


def test_a_question_over_the_limit_is_never_cut() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about history first
        with pytest.raises(ValueError, match="10,000"):
            body([AIMessage("a"), HumanMessage("q" * 10_001)])


def test_other_agents_tool_calls_and_results_are_folded_as_text() -> None:
    msgs = [
        HumanMessage("Find the goal and check the weather"),
        AIMessage(
            "",
            tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}],
        ),
        ToolMessage("Sunny, 21 C", tool_call_id="c1", name="weather"),
        AIMessage("It is sunny in Oslo."),
        HumanMessage("When is the goal?"),
    ]
    sent = content(body(msgs))
    assert sent == (
        "Conversation so far:\n"
        "User: Find the goal and check the weather\n"
        'Assistant called weather with {"city": "Oslo"}\n'
        "Tool result (weather): Sunny, 21 C\n"
        "Assistant: It is sunny in Oslo.\n\n"
        "New message:\nWhen is the goal?"
    )


def test_an_aggregated_answer_chunk_in_history_is_an_assistant_turn() -> None:
    from langchain_core.messages import AIMessageChunk

    sent = content(
        body(
            [
                HumanMessage("Who scores?"),
                AIMessageChunk(content="Player 9 scores."),
                HumanMessage("And then?"),
            ]
        )
    )
    assert "Assistant: Player 9 scores." in sent
    assert sent.endswith("New message:\nAnd then?")


def test_missing_knowledge_store_is_an_error() -> None:
    with pytest.raises(ValueError, match="knowledge_store_id"):
        build_body(
            [HumanMessage("q")],
            RequestOptions(model="m", knowledge_store_id=None),
        )


@pytest.mark.parametrize(
    ("selections", "fragment"),
    [
        ([{"kind": "video", "id": "ksi_1"}], "'item' or 'collection'"),
        ([{"kind": "item", "id": "ksic_1"}], "start with 'ksi_'"),
        ([{"kind": "collection", "id": "ksi_1"}], "start with 'ksic_'"),
        ([{"kind": "item"}], "start with 'ksi_'"),
    ],
)
def test_bad_selections_are_rejected(selections, fragment) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        body([HumanMessage("Describe {{sel:0}}")], selections=selections)


def test_optional_fields_are_sent_when_set() -> None:
    b = body(
        [HumanMessage("Describe {{sel:0}}")],
        session_id="sess_X",
        include=["intermediate_outputs"],
        selections=[
            {"kind": "item", "id": "ksi_1"},
            {"kind": "collection", "id": "ksic_2"},
        ],
        text={"format": {"type": "text"}},
        extra_body={"max_output_tokens": 50},
    )
    assert b["session_id"] == "sess_X"
    assert b["include"] == ["intermediate_outputs"]
    assert b["selections"] == [
        {"kind": "item", "id": "ksi_1"},
        {"kind": "collection", "id": "ksic_2"},
    ]
    assert b["text"] == {"format": {"type": "text"}}
    assert b["max_output_tokens"] == 50


def test_extra_body_cannot_override_fields_chatjockey_sets() -> None:
    with pytest.raises(ValueError, match="input"):
        body([HumanMessage("q")], extra_body={"input": []})


def test_request_body_bytes_are_deterministic() -> None:
    msgs = [
        SystemMessage("s"),
        HumanMessage("q"),
        jockey_answer("a"),
        HumanMessage("n"),
    ]
    llm = ChatJockey(api_key="k", knowledge_store_id="ks_1")

    def encoded() -> bytes:
        sent = body(msgs, include=["intermediate_outputs"])
        return llm._build(httpx.Client(), "responses", body=sent).content

    first = encoded()
    assert all(encoded() == first for _ in range(5))
    assert first.decode().startswith(
        '{"model":"jockey1.0","knowledge_store_id":"ks_1","input":'
    )


# Each request option, a value, and the body field it must reach (docs/configuration.md,
# "ChatJockey": every request field can be set per call).
OPTION_SAMPLES = {
    "model": ("jockey1.0", "model", "jockey1.0"),
    "knowledge_store_id": ("ks_other", "knowledge_store_id", "ks_other"),
    "instructions": ("One line.", "instructions", "One line."),
    "session_id": ("sess_X", "session_id", "sess_X"),
    "include": (["intermediate_outputs"], "include", ["intermediate_outputs"]),
    "selections": (
        [{"kind": "item", "id": "ksi_1"}],
        "selections",
        [{"kind": "item", "id": "ksi_1"}],
    ),
    "text": ({"format": {"type": "text"}}, "text", {"format": {"type": "text"}}),
    "extra_body": ({"metadata": {"a": "b"}}, "metadata", {"a": "b"}),
}


def test_the_option_samples_cover_every_call_option() -> None:
    from langchain_jockey._messages import OPTION_NAMES

    assert set(OPTION_SAMPLES) == set(OPTION_NAMES)


@pytest.mark.parametrize("name", sorted(OPTION_SAMPLES))
@pytest.mark.parametrize("where", ["field", "call"])
def test_every_request_option_reaches_the_body(name, where) -> None:
    from langchain_jockey._messages import call_options

    value, key, sent = OPTION_SAMPLES[name]
    if where == "field" and name not in ChatJockey.model_fields:
        pytest.skip(f"{name} is a call option only")
    fields = {name: value} if where == "field" else {}
    model = ChatJockey(api_key="k", **{"knowledge_store_id": STORE, **fields})
    kwargs = {name: value} if where == "call" else {}
    built = build_body([HumanMessage("q")], call_options(model, None, kwargs))
    assert built[key] == sent
    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert f"`{name}`" in page.read_text(encoding="utf-8")  # documented


def lost(status: int, message: str, code: str = "parameter_invalid"):
    return error_class(status, code)(message, status_code=status, code=code)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "parameter_invalid",
            "Invalid session: sess_A does not exist or has expired.",
        ),
        (
            404,
            "parameter_invalid",
            "Invalid session: sess_A does not exist or has expired.",
        ),
        (400, "session_expired", "Expired."),
        (404, "not_found", "Session sess_A not found."),
        (400, "parameter_invalid", "The session has expired; start a new one."),
    ],
)
def test_an_invalid_or_expired_session_is_a_lost_session(status, code, message) -> None:
    assert session_lost(lost(status, message, code))


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "parameter_invalid",
            (
                "Session sess_A was created with knowledge store ks_1; "
                "knowledge_store_id must match it, not ks_2."
            ),
        ),
        (404, "resource_not_exist", "Knowledge store ks_1 does not exist."),
        (400, "parameter_invalid", "Knowledge store required."),
        (400, "parameter_invalid", "input is required."),
        (404, "not_found", "No route for /v1.3/responses."),
        (422, "parameter_invalid", "Invalid session: sess_A does not exist."),
        (401, "api_key_invalid", "API Key is either invalid or expired."),
        (400, "parameter_invalid", "The upload token has expired."),
        (
            404,
            "parameter_invalid",
            "Invalid session: sess_A is not in knowledge store ks_1.",
        ),
    ],
)
def test_anything_else_is_not_a_lost_session(status, code, message) -> None:
    assert not session_lost(lost(status, message, code))
