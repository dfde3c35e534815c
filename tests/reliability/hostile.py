"""A hostile HTTP/1.1 server on loopback: each request gets a scripted behaviour.

A behaviour is a function `(server, conn, request) -> None` that writes raw bytes to
the socket (`head()` and `chunk()` help). The server records every request it
received, counts the body bytes a behaviour managed to send, and notices when
the client hung up. Everything is bounded: behaviours stop when the client
closes the connection, and the server stops when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

STORE = "ks_x"
KEY = "tlk_hostile_test_key_0123456789"


@dataclass
class Request:
    """What the hostile server received."""

    line: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hostile:
    """Answers every request with `behaviour`; see the module docstring."""

    behaviour: Callable[[Hostile, socket.socket, Request], None]
    requests: list[Request] = field(default_factory=list)
    sent: int = 0  # body bytes behaviours wrote before the client hung up
    hung_up: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1.3"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        with conn, contextlib.suppress(OSError):
            while not self._stop.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self.behaviour(self, conn, request)
                if request.headers.get("connection") == "close":
                    return

    def write(self, conn: socket.socket, data: bytes) -> None:
        """Write `data`, counting it; a client that hung up ends the behaviour."""
        try:
            conn.sendall(data)
        except OSError:
            self.hung_up.set()
            raise
        self.sent += len(data)


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for text in lines:
        name, _, value = text.partition(":")
        headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0"))
    while len(body) < size:
        body += conn.recv(65536)
    return Request(line, headers, body)


def head(
    conn: socket.socket,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    """A status line and headers; the body is chunked unless headers say otherwise."""
    fields = {"content-type": "text/event-stream", **(headers or {})}
    if "content-length" not in fields:
        fields["transfer-encoding"] = "chunked"
    text = f"HTTP/1.1 {status} X\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in fields.items()
    )
    conn.sendall(text.encode() + b"\r\n")


def chunk(server: Hostile, conn: socket.socket, data: bytes) -> None:
    """One chunk of a chunked body (an empty `data` ends the body)."""
    server.write(conn, f"{len(data):x}\r\n".encode() + data + b"\r\n")


def event(payload: dict[str, Any]) -> bytes:
    """One SSE event."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


CREATED = event(
    {
        "type": "response.created",
        "response": {"id": "resp_1", "session_id": "sess_S", "status": "in_progress"},
    }
)


def delta(text: str, item: Any = "msg_1") -> bytes:
    """An answer delta."""
    return event({"type": "response.output_text.delta", "item_id": item, "delta": text})


def completed(**response: Any) -> bytes:
    """A terminal event."""
    snapshot = {"id": "resp_1", "session_id": "sess_S", "status": "completed"}
    snapshot.update(response)
    return event({"type": "response.completed", "response": snapshot})


DONE = b"data: [DONE]\n\n"


def sse(*parts: bytes, end: bool = True) -> Callable[..., None]:
    """A behaviour: a 200 event stream of `parts`, ended unless `end=False`."""

    def behaviour(server: Hostile, conn: socket.socket, request: Request) -> None:
        head(conn)
        for part in parts:
            chunk(server, conn, part)
        if end:
            chunk(server, conn, b"")

    return behaviour


@contextlib.contextmanager
def hostile(behaviour: Callable[..., None]) -> Iterator[Hostile]:
    """Serve `behaviour` on a free loopback port for the duration of the block."""
    server = Hostile(behaviour)
    try:
        yield server
    finally:
        server.close()


def trickle(
    server: Hostile, conn: socket.socket, piece: bytes, every: float, limit: float
) -> None:
    """Write `piece` every `every` seconds until the client hangs up or `limit`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk(server, conn, piece)
        time.sleep(every)
