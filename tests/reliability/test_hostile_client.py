"""Hostile round two (#25): the retriever, the tool, structured output, the lifecycle.

A hostile server, a careless user and a busy agent runtime: what reaches the
user is a typed `JockeyError` (or an `OutputParserException` from a structured
parser, or a `status="error"` tool result inside an agent), never a raw
`TypeError`, `ValueError`, `OverflowError`, `RecursionError` or httpx error.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from langchain_jockey import (
    ChatJockey,
    JockeyInputError,
    JockeyServerError,
    JockeyStreamInterruptedError,
    JockeyTool,
    KnowledgeStore,
    KnowledgeStoreRetriever,
)
from langchain_jockey.emulator import Emulator
from tests.reliability.hostile import (
    CREATED,
    DONE,
    KEY,
    STORE,
    chunk,
    completed,
    delta,
    head,
    hostile,
    sse,
    trickle,
)
from tests.reliability.test_hostile import collect, llm, text
from tests.support import run

ROOT = Path(__file__).resolve().parents[2]


def json_reply(body: bytes, headers: dict[str, str] | None = None):
    """A behaviour: a 200 JSON body, as is."""

    def behaviour(server, conn, request) -> None:
        fields = {"content-type": "application/json", **(headers or {})}
        head(conn, headers=fields)
        for start in range(0, len(body), 65536):
            chunk(server, conn, body[start : start + 65536])
        chunk(server, conn, b"")

    return behaviour


def retriever(server, **kwargs: Any) -> KnowledgeStoreRetriever:
    params = {"base_url": server.url, "api_key": KEY, "knowledge_store_id": STORE}
    return KnowledgeStoreRetriever(**{**params, **kwargs})


def search(mode: str, model: KnowledgeStoreRetriever) -> Any:
    return run(mode, model, "the save")


def hit(**match: Any) -> bytes:
    clip = {"start_sec": 1.0, "end_sec": 2.0, **match}
    page = {"data": [{"item_id": "ksi_1", "rank": 1, "matches": [clip]}]}
    return json.dumps(page).encode()


# -- 3. the retriever: bodies capped, nesting bounded, encodings refused -------------


def test_a_retriever_body_over_the_cap_is_a_typed_error(mode) -> None:
    huge = b'{"data": [], "x": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    with hostile(json_reply(huge)) as server:
        with pytest.raises(JockeyServerError, match="over 8,388,608 bytes"):
            search(mode, retriever(server))


def test_deeply_nested_json_from_the_search_is_a_typed_error(mode) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with hostile(json_reply(deep)) as server:
        with pytest.raises(JockeyServerError, match="not readable JSON"):
            search(mode, retriever(server))


def test_a_compressed_search_answer_is_refused_unread(mode) -> None:
    with hostile(json_reply(b"\x1f\x8b junk", {"content-encoding": "gzip"})) as server:
        with pytest.raises(JockeyStreamInterruptedError, match="'gzip'"):
            search(mode, retriever(server))


# -- 4. numbers from the server -------------------------------------------------------


@pytest.mark.parametrize("bad", [None, "abc", "1e999", "-5", "NaN"])
def test_a_search_clip_whose_times_are_not_times_is_left_out(mode, bad) -> None:
    value = {"None": None}.get(str(bad), bad)
    raw = hit(start_sec="__X__").replace(
        b'"__X__"',
        json.dumps(value).encode() if bad in (None, "abc") else bad.encode(),
    )
    with hostile(json_reply(raw)) as server:
        assert search(mode, retriever(server)) == []


@pytest.mark.parametrize("bad", [b"1e999", b"NaN", b"-1", b'"abc"', b"null"])
def test_a_citation_with_an_impossible_time_does_not_break_the_tool(mode, bad) -> None:
    note = (
        b'{"type": "video_citation", "start_index": 3, "end_index": 5, '
        b'"item_id": "ksi_1", "title": "Final", "start_sec": '
        + bad
        + b', "end_sec": 9}'
    )
    output = (
        b'[{"type": "message", "content": [{"type": "output_text", "text": "Yes [1]", '
        b'"annotations": [' + note + b"]}]}]"
    )
    final = completed().replace(
        b'"status": "completed"', b'"status": "completed", "output": ' + output
    )
    with hostile(sse(CREATED, delta("Yes [1]"), final, DONE)) as server:
        tool = JockeyTool(llm=llm(server), progress=False)
        call = {
            "name": tool.name,
            "args": {"question": "q"},
            "id": "c1",
            "type": "tool_call",
        }
        result = run(mode, tool, call)
        assert result.status == "success"
        assert result.content.endswith("[1] Final")  # no time to show
        (citation,) = result.artifact["citations"]
        assert "start_sec" not in citation  # not a time: left out
        assert citation["end_sec"] == 9


# -- 5. a deeply nested structured answer ----------------------------------------------


class Answer(BaseModel):
    summary: str


def test_a_deeply_nested_structured_answer_is_a_parser_error(mode) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    parts = [delta(deep[i : i + 5000]) for i in range(0, len(deep), 5000)]
    with hostile(sse(CREATED, *parts, completed(), DONE)) as server:
        structured = llm(server).with_structured_output(Answer)
        with pytest.raises(OutputParserException, match="nested too deeply|not match"):
            run(mode, structured, "q")
        with pytest.raises(OutputParserException):
            run(mode, structured, "q", "stream")


@pytest.mark.parametrize("answer", ["hello there", "}{", '{"summary": "x"} and more'])
def test_a_structured_answer_that_is_not_json_is_a_parser_error(mode, answer) -> None:
    # Found by measuring #25 again: stream/astream raised a bare JSONDecodeError
    # from core's parse_partial_json, where invoke gave OutputParserException.
    with hostile(sse(CREATED, delta(answer), completed(), DONE)) as server:
        structured = llm(server).with_structured_output(Answer)
        with pytest.raises(OutputParserException, match="not valid JSON"):
            run(mode, structured, "q")
        with pytest.raises(OutputParserException, match="not valid JSON"):
            run(mode, structured, "q", "stream")


# -- 6 and 7. the lifecycle: closing, threads, fork ----------------------------------


def live_clients() -> int:
    gc.collect()
    return sum(isinstance(o, httpx.Client) for o in gc.get_objects())


def test_closing_any_number_of_times_frees_what_it_closed() -> None:
    model = ChatJockey(api_key=KEY, knowledge_store_id=STORE)
    before = live_clients()
    for _ in range(200):
        with model:
            model._clients.sync(None)
    assert live_clients() - before <= 1


def test_one_model_shared_by_threads_each_running_asyncio_run() -> None:
    errors: list[BaseException] = []
    with Emulator() as emulator:
        model = ChatJockey(**emulator.chat_kwargs())

        def worker() -> None:
            try:
                for _ in range(15):
                    asyncio.run(model.ainvoke("Who saves the penalty?"))
            except BaseException as exc:  # noqa: BLE001 - collected for the assert
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert errors == []
    assert model._clients._async == {}  # every loop's client closed with its loop


_FORK_CHILD = """
import os, sys
from langchain_jockey import ChatJockey
llm = ChatJockey(base_url=sys.argv[1], api_key="tlk_emulator_demo_key",
                 knowledge_store_id="ks_0195d0e0-0000-7000-8000-0000000000d0")
llm.invoke("Who saves the penalty?")
parent_client = llm._clients.sync(None)
pid = os.fork()
if pid == 0:
    try:
        answer = llm.invoke("Who saves the penalty?")
        fresh = llm._clients.sync(None) is not parent_client
        os._exit(0 if answer.text and fresh else 3)
    except BaseException:
        os._exit(4)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
print("parent", bool(llm.invoke("Who scores first?").text))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_works_like_a_fresh_process() -> None:
    from langchain_jockey.emulator import spawn

    proc, url = spawn("--delta-delay", "0", "--first-token-delay", "0")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _FORK_CHILD, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "child 0" in done.stdout, done.stdout + done.stderr
    assert "parent True" in done.stdout


# -- 8. careless inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": httpx.Timeout(5.0, read=float("nan"))},
        {"base_url": "http://[::1"},
        {"base_url": "ftp://example.com"},
    ],
)
def test_careless_settings_are_input_errors_at_construction(arguments) -> None:
    with pytest.raises(JockeyInputError):
        ChatJockey(api_key=KEY, knowledge_store_id=STORE, **arguments)


BAD_BASE_URLS = {
    "port 99999": "http://127.0.0.1:99999/v1.3",
    "port 65536": "http://127.0.0.1:65536/v1.3",
    "port 0": "http://127.0.0.1:0/v1.3",
    "a negative port": "http://127.0.0.1:-1/v1.3",
    "a port that is not a number": "http://127.0.0.1:86o0/v1.3",
    "no host": "http:///v1.3",
    "a port but no host": "http://:8600/v1.3",
    "an unclosed IPv6 bracket": "http://[::1",
    "a 64-character host label": "http://" + "a" * 64 + ".example/v1.3",
    "credentials and port 99999": "http://user:s3cret@127.0.0.1:99999/v1.3",
}
OWNERS = {
    "ChatJockey": ChatJockey,
    "KnowledgeStore": KnowledgeStore,
    "KnowledgeStoreRetriever": KnowledgeStoreRetriever,
    "JockeyTool": lambda **kw: JockeyTool(llm=ChatJockey(**kw)),
}


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("url", BAD_BASE_URLS.values(), ids=BAD_BASE_URLS.keys())
def test_a_bad_base_url_is_an_input_error_at_construction(owner, url) -> None:
    with pytest.raises(JockeyInputError, match="base_url") as caught:
        OWNERS[owner](base_url=url, api_key=KEY, knowledge_store_id=STORE)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("owner", OWNERS)
def test_a_bad_base_url_from_the_environment_is_an_input_error_at_construction(
    owner, monkeypatch
) -> None:
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", "http://127.0.0.1:99999/v1.3")
    with pytest.raises(JockeyInputError, match="port 99999"):
        OWNERS[owner](api_key=KEY, knowledge_store_id=STORE)


@pytest.mark.parametrize(
    ("value", "options"),
    [
        ("lone \ud800 surrogate", {}),
        ("q", {"instructions": "be \udc00 brief"}),
        ([AIMessage("earlier \ud83d"), HumanMessage("q")], {}),
        ("q", {"extra_body": {"metadata": {"tags": {"a", "b"}}}}),
        ("q", {"extra_body": {"metadata": {"x": float("nan")}}}),
        ("q", {"text": "json"}),
    ],
)
def test_careless_calls_are_input_errors_before_any_request(
    mode, value, options
) -> None:
    seen: list[httpx.Request] = []
    model = ChatJockey(
        api_key=KEY,
        knowledge_store_id=STORE,
        http_client=httpx.Client(transport=httpx.MockTransport(seen.append)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(seen.append)),
    )
    with pytest.raises(JockeyInputError):
        run(mode, model, value, **options)
    assert seen == []


# -- 9. a key in the wrong place ------------------------------------------------------


def test_a_key_given_to_jockey_tool_is_named_but_not_shown() -> None:
    secret = "tlk_do_not_show_this_key_123"
    with pytest.raises(JockeyInputError) as caught:
        JockeyTool(api_key=secret, knowledge_store_id=STORE)
    err = caught.value
    assert "api_key" in str(err)
    assert "llm=ChatJockey(...)" in str(err)
    assert secret[:8] not in str(err)
    assert err.__context__ is None
    assert err.__cause__ is None
    assert not hasattr(err, "errors")


def test_an_unknown_argument_to_jockey_tool_is_an_error() -> None:
    with pytest.raises(JockeyInputError, match="stor_name"):
        JockeyTool(llm=ChatJockey(api_key=KEY, knowledge_store_id=STORE), stor_name="x")


# -- risks: a total cap per answer, valid Unicode ----------------------------------


def test_an_answer_that_never_ends_stops_at_the_event_cap(mode) -> None:
    def endless(server, conn, request) -> None:
        head(conn)
        chunk(server, conn, CREATED)
        trickle(server, conn, delta("x") * 50, every=0, limit=30)

    with hostile(endless) as server:
        chunks, error = collect(mode, llm(server, max_answer_events=2_000))
        assert isinstance(error, JockeyStreamInterruptedError), repr(error)
        assert "max_answer_events" in str(error)
        assert error.partial_text == "x" * 1_999  # the progress is kept
        assert text(chunks) == error.partial_text


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        # a lone surrogate, then a whole pair (JSON escapes both as \\uXXXX)
        (["ok \ud800!", " \ud83d\udc1f"], "ok \ufffd! \U0001f41f"),
        # one character split over two deltas, as UTF-16 slicing does
        (["hi \ud83d", "\ude00 there"], "hi \U0001f600 there"),
    ],
)
def test_text_from_the_server_is_valid_unicode(mode, deltas, expected) -> None:
    parts = [delta(d) for d in deltas]
    with hostile(sse(CREATED, *parts, completed(), DONE)) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None, repr(error)
        assert text(chunks) == expected
        text(chunks).encode()  # valid: encodes


def test_an_empty_content_encoding_header_is_identity(mode) -> None:
    def empty(server, conn, request) -> None:
        head(conn, headers={"content-encoding": ""})
        chunk(server, conn, CREATED + delta("ok") + completed() + DONE)
        chunk(server, conn, b"")

    with hostile(empty) as server:
        chunks, error = collect(mode, llm(server))
        assert error is None, repr(error)
        assert text(chunks) == "ok"
