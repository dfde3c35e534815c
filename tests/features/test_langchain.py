"""ChatJockey in LangChain machinery: events, LangGraph, callbacks, retries, fallbacks,
batching, rate limiting, pickling, and sharing one instance across threads and tasks."""

from __future__ import annotations

import asyncio
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from langgraph.graph import START, MessagesState, StateGraph

from langchain_jockey import ChatJockey, JockeyServerError
from langchain_jockey.emulator import FAULT_HEADER, Emulator
from tests.support import merged, run

QUESTION = "Who saves the penalty?"
QUESTIONS = [
    "When do the fishing boats leave?",
    "Who saves the penalty?",
    "How is the loaf shaped?",
    "Where does the rider crash?",
]


def deltas_sent(llm: ChatJockey, question: str) -> int:
    """How many answer deltas the emulator streams for `question` (its output_tokens)."""
    return llm.invoke(question).usage_metadata["output_tokens"]


def test_astream_events_gives_one_stream_event_per_delta(emulator, llm) -> None:
    n = deltas_sent(llm, QUESTION)

    async def collect() -> list[dict[str, Any]]:
        return [e async for e in llm.astream_events(QUESTION, version="v2")]

    events = asyncio.run(collect())
    stream = [e for e in events if e["event"] == "on_chat_model_stream"]
    texts = [e["data"]["chunk"].text for e in stream]
    assert len([t for t in texts if t]) == n  # one per delta...
    assert len(stream) == n + 1  # ...and the terminal chunk with usage
    assert stream[-1]["data"]["chunk"].usage_metadata is not None
    assert [e["event"] for e in events][-1] == "on_chat_model_end"


def test_langgraph_messages_mode_streams_tokens_from_a_node(mode, llm) -> None:
    def node(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    async def anode(state: MessagesState) -> dict:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("jockey", node if mode == "sync" else anode)
    graph.add_edge(START, "jockey")
    app = graph.compile()
    streamed = run(
        mode,
        app,
        {"messages": [HumanMessage(QUESTION)]},
        method="stream",
        stream_mode="messages",
    )
    parts = [m for m, meta in streamed if meta["langgraph_node"] == "jockey"]
    tokens = [m for m in parts if isinstance(m, AIMessageChunk) and m.text]
    assert len(tokens) == deltas_sent(llm, QUESTION)
    assert "".join(t.text for t in tokens) == llm.invoke(QUESTION).text


class _Counter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.active -= 1


def test_callback_gets_on_llm_new_token_once_per_delta(mode, llm) -> None:
    n = deltas_sent(llm, QUESTION)
    handler = _Counter()
    message = run(mode, llm, QUESTION, config={"callbacks": [handler]}, stream=True)
    assert len([t for t in handler.tokens if t]) == n
    assert len(handler.tokens) == n + 1  # the terminal chunk's "" token
    assert "".join(handler.tokens) == message.text


@pytest.fixture
def fresh():
    with Emulator() as emu:
        yield emu


def test_with_retry_retries_a_failed_call(fresh) -> None:
    # max_retries=0: ChatJockey itself does not retry, LangChain's with_retry does.
    llm = ChatJockey(
        **fresh.chat_kwargs(),
        max_retries=0,
        default_headers={FAULT_HEADER: "status=503;times=1"},
    )
    message = llm.with_retry(
        stop_after_attempt=2, wait_exponential_jitter=False
    ).invoke(QUESTION)
    assert message.text
    assert len(fresh.requests) == 2


def test_without_retry_the_same_failure_raises(fresh) -> None:
    llm = ChatJockey(
        **fresh.chat_kwargs(),
        max_retries=0,
        default_headers={FAULT_HEADER: "status=503;times=1"},
    )
    with pytest.raises(JockeyServerError) as info:
        llm.invoke(QUESTION)
    assert info.value.is_retryable
    assert len(fresh.requests) == 1


def test_with_fallbacks_uses_the_fallback_on_error(mode, fresh) -> None:
    broken = ChatJockey(**{**fresh.chat_kwargs(), "api_key": "tlk_wrong"})
    good = ChatJockey(**fresh.chat_kwargs(), instructions="Be brief.")
    message = run(mode, broken.with_fallbacks([good]), QUESTION)
    assert (
        len(message.response_metadata["annotations"]) == 1
    )  # the brief fallback answered
    assert [r.key_accepted for r in fresh.requests] == [False, True]


def test_batch_respects_max_concurrency(mode, llm) -> None:
    handler = _Counter()
    inputs = QUESTIONS * 2
    results = run(
        mode,
        llm,
        inputs,
        method="batch",
        config={"max_concurrency": 2, "callbacks": [handler]},
    )
    assert [r.text for r in results] == [llm.invoke(q).text for q in inputs]
    assert handler.peak <= 2


class _CountingLimiter(InMemoryRateLimiter):
    def __init__(self) -> None:
        super().__init__(
            requests_per_second=1000, check_every_n_seconds=0.001, max_bucket_size=10
        )
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return super().acquire(blocking=blocking)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return await super().aacquire(blocking=blocking)


def test_rate_limiter_is_acquired_once_per_request(emulator) -> None:
    limiter = _CountingLimiter()
    llm = ChatJockey(**emulator.chat_kwargs(), rate_limiter=limiter)
    llm.invoke(QUESTION)
    list(llm.stream(QUESTION))

    async def both() -> None:
        await llm.ainvoke(QUESTION)
        [c async for c in llm.astream(QUESTION)]

    asyncio.run(both())
    assert limiter.acquired == 4


def test_pickle_keeps_no_key_and_no_client_and_works_after(
    emulator, monkeypatch
) -> None:
    monkeypatch.setenv("TWELVE_LABS_API_KEY", emulator.api_key)
    llm = ChatJockey(
        base_url=emulator.base_url, knowledge_store_id=emulator.knowledge_store_id
    )
    llm.invoke(QUESTION)  # creates the lazy client
    data = pickle.dumps(llm)
    assert emulator.api_key.encode() not in data
    clone = pickle.loads(data)
    assert clone._clients._sync is None
    assert clone.api_key.get_secret_value() == emulator.api_key  # from the environment
    assert clone.invoke(QUESTION).text == llm.invoke(QUESTION).text
    assert (
        llm.api_key.get_secret_value() == emulator.api_key
    )  # the original is untouched


def test_unpickled_model_without_the_key_in_env_says_so(emulator, monkeypatch) -> None:
    monkeypatch.delenv("TWELVE_LABS_API_KEY", raising=False)
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    clone = pickle.loads(pickle.dumps(ChatJockey(**emulator.chat_kwargs())))
    with pytest.raises(ValueError, match="API key"):
        clone.invoke(QUESTION)


def test_a_model_with_its_own_client_refuses_to_pickle(emulator) -> None:
    import httpx

    with pytest.raises(TypeError, match="http_client"):
        pickle.dumps(ChatJockey(**emulator.chat_kwargs(), http_client=httpx.Client()))


def test_one_instance_is_safe_to_share_across_threads(llm) -> None:
    expected = {q: llm.invoke(q).text for q in QUESTIONS}

    def ask(i: int) -> tuple[str, str, str]:
        question = QUESTIONS[i % len(QUESTIONS)]
        answer = merged(list(llm.stream(question)))
        return question, answer.text, answer.response_metadata["session_id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(ask, range(48)))
    assert all(text == expected[q] for q, text, _ in results)
    assert len({s for _, _, s in results}) == 48


def test_one_instance_is_safe_to_share_across_tasks(llm) -> None:
    expected = {q: llm.invoke(q).text for q in QUESTIONS}

    async def ask(i: int) -> tuple[str, str, str]:
        question = QUESTIONS[i % len(QUESTIONS)]
        answer = merged([c async for c in llm.astream(question)])
        return question, answer.text, answer.response_metadata["session_id"]

    async def main() -> list[tuple[str, str, str]]:
        return await asyncio.gather(*(ask(i) for i in range(60)))

    results = asyncio.run(main())
    assert all(text == expected[q] for q, text, _ in results)
    assert len({s for _, _, s in results}) == 60
