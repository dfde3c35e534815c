"""Sessions end to end: the second turn continues the server session and sends only the new message."""

from __future__ import annotations

import pytest
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from langchain_jockey import ChatJockey, JockeyBadRequestError
from langchain_jockey.emulator import KITCHEN_STORE_ID
from tests.support import run

FIRST = "When does the first goal come after the corner kick?"
SECOND = "What happens next?"


def sent(emulator, n: int):
    """The bodies of the last n requests the emulator received."""
    return [r.body for r in emulator.requests[-n:]]


def check_second_turn(emulator, first_answer) -> None:
    first, second = sent(emulator, 2)
    assert "session_id" not in first
    assert second["session_id"] == first_answer.response_metadata["session_id"]
    assert second["input"] == [{"type": "message", "role": "user", "content": SECOND}]


def test_plain_message_list(mode, emulator, llm) -> None:
    history = [HumanMessage(FIRST)]
    answer = run(mode, llm, history)
    history += [answer, HumanMessage(SECOND)]
    follow = run(mode, llm, history)
    check_second_turn(emulator, answer)
    assert (
        follow.response_metadata["session_id"] == answer.response_metadata["session_id"]
    )


def test_plain_message_list_streaming(mode, emulator, llm) -> None:
    chunks = run(mode, llm, [HumanMessage(FIRST)], method="stream")
    answer = sum(chunks[1:], chunks[0])
    run(mode, llm, [HumanMessage(FIRST), answer, HumanMessage(SECOND)], method="stream")
    check_second_turn(emulator, answer)


def test_deprecated_runnable_with_message_history_still_continues_the_session(
    mode, emulator, llm
) -> None:
    # Deprecated in langchain-core (since 1.3.3): the README and examples show
    # LangGraph's checkpointer memory; this pins that the old API still works.
    store: dict[str, InMemoryChatMessageHistory] = {}
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from the videos."),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    # Its history class (InMemoryChatMessageHistory) is deprecated too.
    with pytest.warns(LangChainDeprecationWarning) as caught:
        chat = RunnableWithMessageHistory(
            prompt | llm,
            lambda sid: store.setdefault(sid, InMemoryChatMessageHistory()),
            input_messages_key="question",
            history_messages_key="history",
        )
        config = {"configurable": {"session_id": "user-1"}}
        answer = run(mode, chat, {"question": FIRST}, config=config)
        run(mode, chat, {"question": SECOND}, config=config)
    assert any(
        "RunnableWithMessageHistory is deprecated" in str(w.message) for w in caught
    )
    check_second_turn(emulator, answer)
    assert sent(emulator, 1)[0]["instructions"] == "Answer from the videos."
    assert len(store["user-1"].messages) == 4


def test_langgraph_messages_state(mode, emulator, llm) -> None:
    def ask(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    async def aask(state: MessagesState) -> dict:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("jockey", ask if mode == "sync" else aask)
    graph.add_edge(START, "jockey")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"t-{mode}"}}
    first = run(mode, app, {"messages": [HumanMessage(FIRST)]}, config=config)
    run(mode, app, {"messages": [HumanMessage(SECOND)]}, config=config)
    check_second_turn(emulator, first["messages"][-1])


def test_explicit_session_id_call_option(mode, emulator, llm) -> None:
    answer = run(mode, llm, FIRST)
    run(mode, llm, SECOND, session_id=answer.response_metadata["session_id"])
    check_second_turn(emulator, answer)


def test_session_store_mismatch_raises_bad_request_with_the_server_message(
    mode, emulator, llm
) -> None:
    answer = run(mode, llm, FIRST)
    session = answer.response_metadata["session_id"]
    with pytest.raises(JockeyBadRequestError, match="must match") as info:
        run(mode, llm, SECOND, session_id=session, knowledge_store_id=KITCHEN_STORE_ID)
    assert info.value.status_code == 400
    assert session in info.value.message


def state(llm: ChatJockey) -> dict:
    # `_serialized` is langchain-core's own cached property, not ours.
    return {k: v for k, v in llm.__dict__.items() if k != "_serialized"}


def test_the_model_keeps_no_session_state(emulator, llm) -> None:
    before = state(llm)
    answer = llm.invoke(FIRST)
    llm.invoke([HumanMessage(FIRST), answer, HumanMessage(SECOND)])
    assert state(llm) == before
    assert llm.session_id is None
    fresh = llm.invoke("Who saves the penalty?")
    assert "session_id" not in sent(emulator, 1)[0]
    assert (
        fresh.response_metadata["session_id"] != answer.response_metadata["session_id"]
    )
