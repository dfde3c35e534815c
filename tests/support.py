"""Test helpers: golden transcripts, byte-split bodies and a scripted server.

The scripted server is an `httpx.MockTransport` handler: it records every
request, answers with the responses it was given in order, and serves bodies
as a stream of hand-chosen byte fragments whose closing is observable.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from langchain_jockey import ChatJockey

FIXTURES = Path(__file__).parent / "fixtures"
STORE = "ks_0190bbbb-0000-7000-8000-000000000002"
SESSION = "sess_0190aaaa-0000-7000-8000-0000000000aa"
RESPONSE_ID = "resp_0190aaaa-0000-7000-8000-000000000001"
API_KEY = "tlk_test_secret_key_0123456789"


def transcript(name: str) -> bytes:
    """The bytes of `tests/fixtures/<name>.sse`."""
    return (FIXTURES / f"{name}.sse").read_bytes()


def events_of(body: bytes) -> list[dict[str, Any]]:
    """The JSON events of a well-formed transcript (reference parser)."""
    return [
        json.loads(line[len("data: ") :])
        for line in body.decode().split("\n")
        if line.startswith("data: {")
    ]


def deltas_of(body: bytes, *, phase_filter: bool = True) -> list[str]:
    """The answer deltas of a transcript, in order."""
    events = events_of(body)
    other = {
        e["item"]["id"]
        for e in events
        if e["type"] == "response.output_item.added"
        and (
            e["item"]["type"] != "message"
            or e["item"].get("phase") not in (None, "final_answer")
        )
    }
    return [
        e["delta"]
        for e in events
        if e["type"] == "response.output_text.delta"
        and (not phase_filter or e["item_id"] not in other)
    ]


def split_every(body: bytes, size: int) -> list[bytes]:
    """`body` in fragments of `size` bytes."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def split_at(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`body` cut at the given offsets."""
    points = sorted({c for c in cuts if 0 < c < len(body)})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def awkward_splits(body: bytes) -> dict[str, list[bytes]]:
    """Fragmentations that put boundaries mid-line, mid-UTF-8 and between CR|LF."""
    text = body.decode()
    multibyte = [
        len(text[:i].encode()) + 1 for i, ch in enumerate(text) if len(ch.encode()) > 1
    ]
    crlf = body.replace(b"\n", b"\r\n")
    return {
        "one_piece": [body],
        "bytewise": split_every(body, 1),
        "seven_bytes": split_every(body, 7),
        "mid_utf8": split_at(body, multibyte),
        "mid_line": split_at(body, [i + 9 for i in range(0, len(body), 97)]),
        "crlf_split_between_cr_and_lf": split_at(
            crlf, [i + 1 for i in range(len(crlf)) if crlf[i : i + 1] == b"\r"]
        ),
        "cr_only": split_every(body.replace(b"\n", b"\r"), 5),
    }


class ChunkedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body served in the given fragments; records whether it was closed."""

    def __init__(
        self, chunks: Iterable[bytes], *, error_after: Exception | None = None
    ):
        self.chunks = list(chunks)
        self.error_after = error_after
        self.served = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.served += 1
            yield chunk
        if self.error_after is not None:
            raise self.error_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.served += 1
            yield chunk
        if self.error_after is not None:
            raise self.error_after

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Reply:
    """One scripted answer: a status, headers and a body (bytes, fragments or JSON)."""

    status: int = 200
    body: bytes | list[bytes] | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    error_after: Exception | None = None
    raise_on_send: Exception | None = None


def sse(name_or_bytes: str | bytes, chunks: list[bytes] | None = None) -> Reply:
    """A 200 `text/event-stream` reply with a transcript."""
    body = (
        transcript(name_or_bytes) if isinstance(name_or_bytes, str) else name_or_bytes
    )
    return Reply(
        200,
        chunks if chunks is not None else [body],
        {"content-type": "text/event-stream"},
    )


def json_reply(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> Reply:
    """A JSON reply (an error body or a non-streaming response object)."""
    return Reply(
        status, payload, {"content-type": "application/json", **(headers or {})}
    )


@dataclass
class ScriptedServer:
    """Answers requests with `replies` in order (the last one repeats)."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[ChunkedBody] = field(default_factory=list)

    @property
    def json_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the requests received."""
        return [json.loads(r.content) for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply.raise_on_send is not None:
            raise reply.raise_on_send
        if isinstance(reply.body, list):
            chunks = reply.body
        elif isinstance(reply.body, bytes):
            chunks = [reply.body]
        else:
            chunks = [json.dumps(reply.body).encode()]
        stream = ChunkedBody(chunks, error_after=reply.error_after)
        self.bodies.append(stream)
        return httpx.Response(reply.status, headers=reply.headers, stream=stream)

    def model(self, **kwargs: Any) -> ChatJockey:
        """A ChatJockey whose sync and async clients talk to this server."""
        transport = httpx.MockTransport(self)
        params: dict[str, Any] = {
            "api_key": API_KEY,
            "knowledge_store_id": STORE,
            "base_url": "https://jockey.test/v1.3",
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
        }
        params.update(kwargs)
        return ChatJockey(**params)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(*replies: Reply) -> ScriptedServer:
    """A scripted server answering with `replies`."""
    return ScriptedServer(list(replies))


def run(
    mode: str, runnable: Any, value: Any, method: str = "invoke", **kwargs: Any
) -> Any:
    """`invoke`, `batch` or `stream` (collected) on a runnable, sync or async."""
    if mode == "sync":
        result = getattr(runnable, method)(value, **kwargs)
        return list(result) if method == "stream" else result

    async def go() -> Any:
        if method == "stream":
            return [x async for x in runnable.astream(value, **kwargs)]
        return await getattr(runnable, "a" + method)(value, **kwargs)

    return asyncio.run(go())


def v3_stream(mode: str, model: Any, value: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A chat model's v3 stream (`stream_events(version="v3")`) and its events."""
    if mode == "sync":
        stream = model.stream_events(value, version="v3")
        return stream, list(stream)

    async def go() -> tuple[Any, list[dict[str, Any]]]:
        stream = await model.astream_events(value, version="v3")
        return stream, [e async for e in stream]

    return asyncio.run(go())


def merged(chunks: list[Any]) -> Any:
    """The chunks of one streamed answer, added up as langchain-core does."""
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


class NoClientTools:
    """For langchain-tests' standard suites: ChatJockey takes no client tools.

    Its `bind_tools` exists only to say so clearly (and to bind create_agent's
    `response_format` with no tools), which the suites would read as support.
    """

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_tool_choice(self) -> bool:
        return False


def undeclared(value: Any, where: str = "$") -> list[str]:
    """Every key of a parsed SDK object that its model does not declare.

    Walks nested models, lists, tuples and dict values; a model's undeclared
    keys are its `model_extra` (`__pydantic_extra__`).
    """
    found: list[str] = []
    if isinstance(value, BaseModel):
        extra = value.model_extra or getattr(value, "__pydantic_extra__", None) or {}
        found += [f"{where}.{key}" for key in extra]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}.{name}")
        for key, item in extra.items():
            found += undeclared(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found += undeclared(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += undeclared(item, f"{where}.{key}")
    return found
