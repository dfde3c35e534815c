"""Memory for a long answer grows with its text, not with its event count (#25).

LangChain keeps every chunk of a stream until it ends (`BaseChatModel.stream`,
`_generate_with_cache`), about 1.9 KB each. The same 40 KB answer is sent as
40,000 one-byte deltas and as 400 hundred-byte ones; a child process, fresh for
each, reads it and reports how far its peak RSS rose.

Each event in an HTTP chunk of its own (as most servers write), the one-byte
answer rose by 73-75 MiB (stream, astream, invoke, ainvoke) against 0.9-1.0
before the fix, and by 2.5-3.0 after it. A first fix merged the deltas of one
network read: it worked for 64 KiB writes (3.6-4.8 MiB) and did nothing for
these (73-75), since httpx hands each HTTP chunk over on its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
)

ROOT = Path(__file__).resolve().parents[2]
TEXT = 40_000  # characters of answer (under max_answer_events)

CHILD = """
import asyncio, json, resource, sys
from langchain_jockey import ChatJockey

url, key, store, how = sys.argv[1:]
llm = ChatJockey(base_url=url, api_key=key, knowledge_store_id=store)

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB

async def astream(q):
    return sum([len(c.text) async for c in llm.astream(q)])

def run(q):
    if how == "stream":
        return sum(len(c.text) for c in llm.stream(q))
    if how == "astream":
        return asyncio.run(astream(q))
    if how == "invoke":
        return len(llm.invoke(q).text)
    return len(asyncio.run(llm.ainvoke(q)).text)

run("warm up")  # a short answer: clients, templates, imports on first use
before = peak()
length = run("the long answer")
print(json.dumps({"grew": peak() - before, "length": length}))
"""


def _answer(size: int, writes: str):
    """A behaviour: a short first answer, then TEXT characters in `size`-byte deltas.

    `writes="event"` sends each event as an HTTP chunk of its own, as most SSE
    servers do (httpx then hands them over one by one, however fast they
    come); `"64k"` sends 64 KiB chunks of many events.
    """

    def behaviour(server, conn, request) -> None:
        head(conn)
        if len(server.requests) == 1:
            chunk(server, conn, CREATED + delta("ok") + completed() + DONE)
        elif writes == "event":
            chunk(server, conn, CREATED)
            piece = delta("x" * size)
            for _ in range(TEXT // size):
                chunk(server, conn, piece)
            chunk(server, conn, completed() + DONE)
        else:
            body = CREATED + delta("x" * size) * (TEXT // size) + completed() + DONE
            for start in range(0, len(body), 65536):
                chunk(server, conn, body[start : start + 65536])
        chunk(server, conn, b"")

    return behaviour


def _growth(how: str, size: int, writes: str = "event") -> float:
    """MiB the child's peak RSS rose while it read the long answer."""
    with hostile(_answer(size, writes)) as server:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, server.url, KEY, STORE, how],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["length"] == TEXT
    return float(report["grew"])


@pytest.mark.parametrize(
    ("how", "writes"),
    [
        ("stream", "event"),
        ("astream", "event"),
        ("invoke", "event"),
        ("ainvoke", "event"),
        ("stream", "64k"),
        ("astream", "64k"),
    ],
)
def test_memory_for_an_answer_follows_its_text_not_its_deltas(how, writes) -> None:
    fine = _growth(how, size=1, writes=writes)  # 40,000 events
    coarse = _growth(how, size=100, writes=writes)  # 400 events, the same text
    # 16 MiB of slack for the allocator's noise; before the fix `fine` was ~74.
    assert fine <= 2 * coarse + 16, (fine, coarse)
