"""LangChain plumbing as the partner packages have it: profile, serialization,
token counts, `stream_usage`, ignored parameters, input errors, and one answer
about `max_output_tokens`."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.load import dumps, loads
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from langchain_jockey import ChatJockey, JockeyInputError
from langchain_jockey.emulator import Emulator
from tests.support import run

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Who saves the penalty?"


def test_profile_says_how_much_input_fits() -> None:
    profile = ChatJockey(knowledge_store_id="ks_x", api_key="k").profile
    assert profile is not None
    # One message of at most 10,000 characters, at 4 characters per token.
    assert profile["max_input_tokens"] == 2_500


def test_summarization_with_a_fraction_trigger_runs_in_a_jockey_only_agent(
    llm: ChatJockey,
) -> None:
    summarize = SummarizationMiddleware(
        model=llm, trigger=("fraction", 0.8), keep=("messages", 2)
    )
    agent = create_agent(llm, middleware=[summarize], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "long"}}
    padding = " Please say exactly when it happens." * 90  # ~3,300 characters
    questions = [QUESTION + padding, "What happens next?" + padding, "And then?"]
    states = [agent.invoke({"messages": [("user", q)]}, config) for q in questions]

    # 80 % of 2,500 tokens passed: the oldest turns became one summary message.
    final = states[-1]["messages"]
    assert len(final) < 2 * len(questions)
    assert any("summary" in m.text.lower() for m in final if m.type == "human")
    # The kept Jockey answer still anchors the conversation's session.
    sessions = {m.response_metadata["session_id"] for m in final if m.type == "ai"}
    assert len(sessions) == 1


def test_dumps_and_loads_round_trip_with_the_key_as_a_secret_reference(
    emulator: Emulator, mode: str
) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), instructions="Be brief.", timeout=30)
    text = dumps(llm)
    assert emulator.api_key not in text
    assert '"id": ["TWELVE_LABS_API_KEY"]' in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load is beta in langchain-core
        again = loads(
            text,
            allowed_objects=[ChatJockey],
            valid_namespaces=["langchain_jockey"],
            secrets_map={"TWELVE_LABS_API_KEY": emulator.api_key},
        )
    assert isinstance(again, ChatJockey)
    assert again.model_dump() == llm.model_dump()
    assert run(mode, again, QUESTION).response_metadata["session_id"]


def test_get_num_tokens_estimates_without_an_optional_package() -> None:
    llm = ChatJockey(knowledge_store_id="ks_x", api_key="k")
    assert llm.get_num_tokens("") == 0
    assert llm.get_num_tokens("abcd") == 1
    assert llm.get_num_tokens("abcde") == 2
    messages = [SystemMessage("Be brief."), HumanMessage("x" * 400)]
    assert 100 < llm.get_num_tokens_from_messages(messages) < 120
    assert "transformers" not in sys.modules


@pytest.mark.parametrize("where", ["field", "call"])
def test_stream_usage_is_taken_as_a_field_and_a_call_option(
    emulator: Emulator, mode: str, where: str
) -> None:
    def stream(value: bool) -> Any:
        if where == "field":
            llm = ChatJockey(**emulator.chat_kwargs(), stream_usage=value)
            return run(mode, llm, QUESTION, "stream")
        llm = ChatJockey(**emulator.chat_kwargs())
        return run(mode, llm, QUESTION, "stream", stream_usage=value)

    assert stream(True)[-1].usage_metadata["output_tokens"] > 0
    assert all(c.usage_metadata is None for c in stream(False))


def test_stream_usage_off_leaves_usage_out_of_invoke_too(
    emulator: Emulator, mode: str
) -> None:
    # One rule for every path: invoke streams on the wire as well.
    llm = ChatJockey(**emulator.chat_kwargs(), stream_usage=False)
    assert run(mode, llm, QUESTION).usage_metadata is None
    assert run(mode, llm, QUESTION, stream_usage=True).usage_metadata is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0),
        ("temperature", 0.0),
        ("temperature", 0.7),
        ("max_tokens", 0),
        ("max_tokens", 100),
        ("stop", []),
        ("stop", ["\n"]),
    ],
)
@pytest.mark.parametrize("where", ["field", "call"])
def test_every_ignored_parameter_that_is_set_warns(
    emulator: Emulator, mode: str, name: str, value: Any, where: str
) -> None:
    field = {name: value} if where == "field" else {}
    call = {name: value} if where == "call" else {}
    llm = ChatJockey(**emulator.chat_kwargs(), **field)
    with pytest.warns(UserWarning, match=f"Jockey has no '{name}' parameter"):
        run(mode, llm, QUESTION, **call)


def test_unset_ignored_parameters_do_not_warn(llm: ChatJockey, mode: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(mode, llm, QUESTION)


def test_a_system_only_input_says_there_is_no_question(
    llm: ChatJockey, mode: str
) -> None:
    with pytest.raises(JockeyInputError, match="no question.*only system messages"):
        run(mode, llm, [("system", "be brief")])


def test_max_output_tokens_has_one_answer(emulator: Emulator, mode: str) -> None:
    llm = ChatJockey(**emulator.chat_kwargs())
    # ChatJockey: not an option Jockey documents, and the error says why.
    with pytest.raises(JockeyInputError, match="documents no output limit"):
        run(mode, llm, QUESTION, max_output_tokens=5)
    # The emulator accepts it, as the live API is seen to, and ignores it.
    capped = ChatJockey(**emulator.chat_kwargs(), extra_body={"max_output_tokens": 5})
    plain, sent = run(mode, llm, QUESTION), run(mode, capped, QUESTION)
    assert sent.text == plain.text
    assert sent.response_metadata["status"] == "completed"
    # docs/protocol.md says the same.
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert "`max_output_tokens` is not a request parameter" in protocol
