"""Sessions end to end: the second turn continues the server session and sends only the new message."""

from __future__ import annotations

import time
import warnings

import httpx
import pytest
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from langchain_jockey import (
    ChatJockey,
    JockeyBadRequestError,
    JockeyError,
    JockeyInputError,
)
from langchain_jockey.emulator import (
    DEMO_API_KEY,
    DEMO_STORE_ID as DEMO,
    KITCHEN_STORE_ID,
    Emulator,
    spawn,
)
from tests.support import SESSION, STORE, json_reply, merged, run, serve, sse

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


# -- a conversation outlives its Jockey session (#31 item 1) -------------------

THIRD = "And after that?"
LOST = "no longer has this conversation's session"
FOOTBALL = {"kind": "item", "id": "ksi_0195d0e0-0000-7000-8000-0000000000a3"}
HARBOUR = {"kind": "item", "id": "ksi_0195d0e0-0000-7000-8000-0000000000a1"}


def answer_of(mode: str, llm, messages, method: str, **kwargs):
    """One answer, by `invoke` or by `stream` (its chunks added up, one response)."""
    if method == "invoke":
        return run(mode, llm, messages, **kwargs)
    chunks = run(mode, llm, messages, method="stream", **kwargs)
    assert len({c.id for c in chunks}) == 1  # one response, nothing of the failed one
    return merged(chunks)


def session(message) -> str:
    return message.response_metadata["session_id"]


def folded(first_answer) -> str:
    """What the restarted turn sends: the earlier turns, then the question."""
    return (
        f"Conversation so far:\nUser: {FIRST}\nAssistant: {first_answer.text}\n\n"
        f"New message:\n{SECOND}"
    )


@pytest.mark.parametrize("method", ["invoke", "stream"])
def test_a_lost_session_is_asked_again_in_a_new_one_and_the_next_turn_continues_it(
    mode, emulator, llm, method
) -> None:
    history = [HumanMessage(FIRST)]
    first = answer_of(mode, llm, history, method)
    assert emulator.expire_sessions(session(first)) == 1  # as a server restart would
    history += [first, HumanMessage(SECOND)]
    before = len(emulator.requests)
    with pytest.warns(UserWarning, match=LOST):
        second = answer_of(mode, llm, history, method)
    refused, asked = sent(emulator, len(emulator.requests) - before)
    assert refused["session_id"] == session(first)
    assert "session_id" not in asked
    assert asked["input"][0]["content"] == folded(first)
    assert second.response_metadata["session_restarted"] is True
    assert session(second) != session(first)
    # the new session holds the history: "what happens next?" goes on from it
    last_cited = first.response_metadata["annotations"][-1]["end_sec"]
    assert second.response_metadata["annotations"][0]["start_sec"] >= last_cited

    history += [second, HumanMessage(THIRD)]
    third = answer_of(mode, llm, history, method)
    (body,) = sent(emulator, 1)
    assert body["session_id"] == session(second) == session(third)
    assert body["input"][0]["content"] == THIRD  # only the new turn, nothing folded
    assert "session_restarted" not in third.response_metadata


def test_a_langgraph_thread_outlives_its_jockey_session(mode, emulator, llm) -> None:
    async def aask(state: MessagesState) -> dict:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    def ask(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("jockey", ask if mode == "sync" else aask)
    graph.add_edge(START, "jockey")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"restart-{mode}"}}

    def turn(text: str):
        return run(mode, app, {"messages": [HumanMessage(text)]}, config=config)

    first = turn(FIRST)["messages"][-1]
    emulator.expire_sessions(session(first))
    with pytest.warns(UserWarning, match=LOST):
        second = turn(SECOND)["messages"][-1]
    assert second.response_metadata["session_restarted"] is True
    assert sent(emulator, 1)[0]["input"][0]["content"] == folded(first)
    third = turn(THIRD)["messages"][-1]  # from the checkpoint: the new session
    (body,) = sent(emulator, 1)
    assert body["session_id"] == session(second) == session(third)
    assert body["input"][0]["content"] == THIRD


def test_a_restart_resends_the_selections_of_the_conversation(
    mode, emulator, llm
) -> None:
    first = run(mode, llm, "What happens in {{sel:0}}?", selections=[FOOTBALL])
    assert first.response_metadata["selections"] == [FOOTBALL]  # what it holds
    emulator.expire_sessions(session(first))
    history = [HumanMessage("What happens in {{sel:0}}?"), first]
    with pytest.warns(UserWarning, match=LOST):
        run(mode, llm, [*history, HumanMessage("Who saves the penalty?")])
    assert sent(emulator, 1)[0]["selections"] == [FOOTBALL]
    with pytest.warns(UserWarning, match=LOST):  # the call's own come first
        again = run(
            mode,
            llm,
            [*history, HumanMessage("And in {{sel:0}}?")],
            selections=[HARBOUR],
        )
    assert sent(emulator, 1)[0]["selections"] == [HARBOUR, FOOTBALL]
    assert again.response_metadata["selections"] == [HARBOUR, FOOTBALL]


def test_a_restart_leaves_out_the_oldest_turns_with_a_marker_never_raising(
    mode, emulator, llm
) -> None:
    first = run(mode, llm, FIRST)
    emulator.expire_sessions(session(first))
    history = [
        HumanMessage("Tell me about the harbour. " + "a" * 5000),
        AIMessage("The harbour wakes up at dawn. " + "b" * 5000),  # not Jockey's
        HumanMessage(FIRST),
        first,
        HumanMessage(SECOND),
    ]
    with pytest.warns(UserWarning, match=f"oldest turn|{LOST}") as caught:
        second = run(mode, llm, history)
    said = " ".join(str(w.message) for w in caught)
    assert LOST in said
    assert "the 1 oldest turn(s)" in said
    content = sent(emulator, 1)[0]["input"][0]["content"]
    assert len(content) <= 10_000
    assert content.startswith(
        "Conversation so far:\n[1 earlier turn(s) left out: the conversation is "
        "longer than Jockey's 10,000-character input]\nAssistant: The harbour"
    )
    assert content.endswith(
        f"User: {FIRST}\nAssistant: {first.text}\n\nNew message:\n{SECOND}"
    )
    assert second.response_metadata["session_restarted"] is True


def test_new_session_starts_a_new_session_whatever_the_history_holds(
    mode, emulator, llm
) -> None:
    first = run(mode, llm, FIRST)
    history = [HumanMessage(FIRST), first, HumanMessage(SECOND)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # on purpose: no warning
        second = run(mode, llm, history, new_session=True)
    (body,) = sent(emulator, 1)
    assert "session_id" not in body
    assert body["input"][0]["content"] == folded(first)
    assert session(second) != session(first)
    assert "session_restarted" not in second.response_metadata


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"new_session": True, "session_id": "sess_X"}, "one or the other"),
        ({"new_session": "yes"}, "True or False"),
    ],
)
def test_new_session_with_a_session_id_is_an_input_error_before_any_request(
    mode, emulator, llm, options, fragment
) -> None:
    before = len(emulator.requests)
    with pytest.raises(JockeyInputError, match=fragment):
        run(mode, llm, FIRST, **options)
    assert len(emulator.requests) == before


def test_a_session_id_field_with_new_session_is_an_input_error(mode, emulator) -> None:
    llm = ChatJockey(**emulator.chat_kwargs(), session_id="sess_X")
    with pytest.raises(JockeyInputError, match="one or the other"):
        run(mode, llm, FIRST, new_session=True)


LOST_SESSION = f"Invalid session: {SESSION} does not exist or has expired."


def jockey_answer(text: str) -> AIMessage:
    meta = {"session_id": SESSION, "knowledge_store_id": STORE}
    return AIMessage(text, response_metadata=meta)


@pytest.mark.parametrize(
    ("status", "code", "message", "restarts"),
    [
        (400, "parameter_invalid", LOST_SESSION, True),
        (404, "parameter_invalid", LOST_SESSION, True),  # the status is undocumented
        (404, "session_not_found", f"Session {SESSION} was not found.", True),
        (
            400,
            "parameter_invalid",
            (
                f"Session {SESSION} was created with knowledge store {STORE}; "
                "knowledge_store_id must match it, not ks_2."
            ),
            False,
        ),
        (404, "resource_not_exist", "Knowledge store ks_1 does not exist.", False),
        (400, "parameter_invalid", "input is required.", False),
        (404, "not_found", "No route for /v1.3/responses.", False),
        (422, "parameter_invalid", LOST_SESSION, False),
        (401, "api_key_invalid", "API Key is either invalid or expired.", False),
    ],
)
def test_only_an_invalid_or_expired_session_restarts(
    mode, status, code, message, restarts
) -> None:
    lost = json_reply(status, {"code": code, "message": message})
    server = serve(lost, sse("plain_answer"))
    llm = server.model()
    history = [
        HumanMessage(FIRST),
        jockey_answer("It comes at 01:10."),
        HumanMessage(SECOND),
    ]
    if restarts:
        with pytest.warns(UserWarning, match=LOST):
            answer = run(mode, llm, history)
        assert answer.response_metadata["session_restarted"] is True
        refused, asked = server.json_bodies
        assert refused["session_id"] == SESSION
        assert "session_id" not in asked
        assert asked["input"][0]["content"].startswith("Conversation so far:\n")
    else:
        with pytest.raises(JockeyError) as info:
            run(mode, llm, history)
        assert info.value.status_code == status
        assert len(server.requests) == 1


def test_a_new_session_that_fails_too_raises_after_one_restart(mode) -> None:
    lost = json_reply(400, {"code": "parameter_invalid", "message": LOST_SESSION})
    server = serve(lost, lost, sse("plain_answer"))
    history = [
        HumanMessage(FIRST),
        jockey_answer("It comes at 01:10."),
        HumanMessage(SECOND),
    ]
    with pytest.warns(UserWarning, match=LOST), pytest.raises(JockeyBadRequestError):
        run(mode, server.model(), history)
    assert len(server.requests) == 2  # the session, then one new session


def test_the_emulator_expires_sessions_after_session_ttl(mode) -> None:
    with Emulator(session_ttl=0.2) as emu:
        llm = ChatJockey(**emu.chat_kwargs())
        first = run(mode, llm, FIRST)
        history = [HumanMessage(FIRST), first, HumanMessage(SECOND)]
        kept = run(mode, llm, history)  # within the ttl: continued
        assert session(kept) == session(first)
        time.sleep(0.3)
        with pytest.warns(UserWarning, match=LOST):
            later = run(mode, llm, [*history, kept, HumanMessage(THIRD)])
        assert later.response_metadata["session_restarted"] is True


def test_the_emulator_expires_sessions_over_http(emulator, llm) -> None:
    first = llm.invoke(FIRST)
    url = emulator.base_url.removesuffix("/v1.3") + "/emulator/sessions/expire"
    refused = httpx.post(url, json={}, headers={"x-api-key": "tlk_wrong"})
    assert refused.status_code == 401
    one = {"session_id": session(first)}
    expire = httpx.post(url, json=one, headers={"x-api-key": emulator.api_key})
    assert expire.json() == {"expired": 1}
    with pytest.warns(UserWarning, match=LOST):  # an explicit session too
        again = llm.invoke(SECOND, session_id=session(first))
    assert again.response_metadata["session_restarted"] is True
    refused, asked = sent(emulator, 2)
    assert refused["session_id"] == session(first)
    assert "session_id" not in asked


@pytest.mark.slow  # a process of its own: about 3 s
def test_the_emulator_command_line_takes_session_ttl() -> None:
    proc, url = spawn("--session-ttl", "0.3")
    try:
        llm = ChatJockey(base_url=url, api_key=DEMO_API_KEY, knowledge_store_id=DEMO)
        first = llm.invoke(FIRST)
        time.sleep(0.5)
        with pytest.warns(UserWarning, match=LOST):
            again = llm.invoke([HumanMessage(FIRST), first, HumanMessage(SECOND)])
        assert again.response_metadata["session_restarted"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)
