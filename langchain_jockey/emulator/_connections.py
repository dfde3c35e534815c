"""The emulator's connections: accepting them, and reading each request whole.

Limits, so that a server users leave running cannot be held or flooded: a
request head over 64 KiB gets 431, a body over `max_body` 413, a request not
whole `request_timeout` after its first byte 408; a connection idle for
`idle_timeout` closes; past `max_connections`, the connection that has waited
longest for a request gives way (503 when all are busy answering). Any bug in
handling a request is answered with a 500 instead of no answer. A client
that hangs up, at any point, ends its connection quietly; asyncio's
failed-accept tracebacks are not logged. `_server.py` handles each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import h11

from langchain_jockey.emulator._exchange import ClientGoneError, Exchange
from langchain_jockey.emulator._requests import ApiError

if TYPE_CHECKING:
    from langchain_jockey.emulator._config import EmulatorConfig

__all__ = ["Body", "Buffer", "Connections"]

_MAX_HEAD = 64 << 10  # the request line and headers; longer gets 431
_LINGER = 1.0  # seconds to read what a refused client still sends
# Connections the kernel queues for accepting: enough to ride out a pause of the
# loop (a garbage collection) during a burst of connections.
_BACKLOG = 1024
_FD_RESERVE = 164  # open files besides the connections served, accepts in flight
_log = logging.getLogger("langchain_jockey.emulator._server")


@dataclass
class Connections:
    """An asyncio server of HTTP/1.1 connections; `_handle` answers each request."""

    config: EmulatorConfig
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _waiting: dict[asyncio.Task[Any], asyncio.StreamWriter] = field(
        default_factory=dict
    )
    """Connections waiting for a request (or for the rest of one), oldest first."""
    _cap: int = field(init=False)
    _active: float = field(default_factory=time.monotonic)
    """When a connection last opened or closed, or a request last came."""

    def __post_init__(self) -> None:
        self._cap = _connection_cap(self.config.max_connections)

    def idle_for(self) -> float:
        """Seconds since the last request or connection; 0 while one is open."""
        return 0.0 if self._tasks else time.monotonic() - self._active

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on `host:port` (port 0: a free one); return the bound address.

        When a burst of connections outruns `max_connections`, accepting may
        still meet the open-file limit: asyncio then waits a second and tries
        again. Its traceback for each try is not logged on this loop.
        """
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_accept(loop.get_exception_handler()))
        self._server = await asyncio.start_server(
            self._connection, host, port, backlog=_BACKLOG
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def aclose(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is None:  # never: asyncio runs each connection in a task
            return
        self._tasks.add(task)
        self._active = time.monotonic()
        full = len(self._tasks) > self._cap
        if full and self._waiting:
            # The connection that has waited longest for a request gives way.
            oldest = next(iter(self._waiting))
            self._waiting.pop(oldest).transport.abort()  # its socket closes now
            oldest.cancel()
            full = False
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        try:
            if full:  # every connection is busy answering
                msg = f"The emulator is serving {self._cap:,} connections, its limit."
                await Exchange(conn, reader, writer, self.config).send_json(
                    503,
                    ApiError(503, "emulator_busy", msg).body(),
                    {"retry-after": "1", "connection": "close"},
                )
                return
            while True:
                exchange = Exchange(conn, reader, writer, self.config)
                self._waiting[task] = writer
                try:
                    request, body = await self._read_request(conn, reader)
                except ApiError as err:
                    await self._refuse(exchange, err)
                    return
                finally:
                    self._waiting.pop(task, None)
                if request is None:
                    return
                try:
                    keep = await self._answer(exchange, request, body)
                finally:
                    body.close()
                if (
                    not keep
                    or conn.our_state is not h11.DONE
                    or conn.their_state is not h11.DONE
                ):
                    return
                conn.start_next_cycle()
        except (
            ClientGoneError,
            h11.ProtocolError,
            OSError,  # a reset socket: ConnectionError, or ENOTCONN on write_eof
            asyncio.IncompleteReadError,
        ):
            return
        except asyncio.CancelledError:
            # Shutting down. Ending normally keeps asyncio's stream callback from
            # logging the cancellation as an error.
            return
        finally:
            writer.close()
            self._tasks.discard(task)
            self._active = time.monotonic()

    async def _answer(self, ex: Exchange, request: h11.Request, body: Body) -> bool:
        """`_handle`, with a 500 for a bug in it instead of no answer at all."""
        try:
            return await self._handle(ex, request, body)
        except (ClientGoneError, h11.ProtocolError, ConnectionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any bug: answer it, keep serving
            _log.debug("the emulator failed on %s", request.target, exc_info=True)
            if ex.conn.our_state is not h11.SEND_RESPONSE:
                return False  # the answer had begun: the connection just closes
            msg = f"The emulator failed: {type(exc).__name__}: {exc}"
            await self._refuse(ex, ApiError(500, "internal_error", msg))
            return False

    @staticmethod
    async def _refuse(ex: Exchange, err: ApiError) -> None:
        """Answer `err` and close: the request was not read whole, or not at all."""
        await ex.send_json(
            err.status, err.body(), {**err.headers, "connection": "close"}
        )
        # Read what the client still sends, briefly: closing with unread bytes
        # would reset the connection and could lose the answer. A client that
        # reset the connection after the answer was written makes write_eof
        # raise (ENOTCONN): it has gone, and `_connection` ends quietly.
        if ex.writer.can_write_eof():
            ex.writer.write_eof()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(_drain(ex.reader), _LINGER)

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, Body]:
        """The next request, its body fed to the sink `_body_for` chose.

        `(None, …)` when the client has gone, or when no byte of a request came
        for `idle_timeout`. A body not returned with its request is closed here.

        Raises:
            ApiError: for a request that is not valid HTTP/1.1, 413 for a body
                past its sink's limit (declared, or sent), 408 for a request not
                whole `request_timeout` after its first byte (an upload: plus
                `seconds_per_mb` for each MB of its content-length), or what
                `_body_for` refuses from the head alone.
        """
        opened: list[Body] = []
        try:
            request, body = await self._read(conn, reader, opened)
        except BaseException:
            for sink in opened:
                sink.close()
            raise
        if request is None:
            body.close()
        return request, body

    async def _read(
        self, conn: h11.Connection, reader: asyncio.StreamReader, opened: list[Body]
    ) -> tuple[h11.Request | None, Body]:
        """`_read_request`, adding the body it opens to `opened`."""
        config, loop = self.config, asyncio.get_running_loop()
        idle_until = loop.time() + config.idle_timeout
        allowed = config.request_timeout
        started = loop.time() if conn.trailing_data[0] else None
        request: h11.Request | None = None
        body: Body = Buffer(config.max_body)
        received = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                msg = f"The request is not valid HTTP/1.1: {exc}."
                raise ApiError(
                    exc.error_status_hint, "parameter_invalid", msg
                ) from None
            if event is h11.NEED_DATA:
                until = idle_until if started is None else started + allowed
                try:
                    data = await asyncio.wait_for(
                        reader.read(65536), max(until - loop.time(), 0)
                    )
                except asyncio.TimeoutError:
                    if started is None:
                        return None, body  # idle: close without a word
                    msg = f"The request did not arrive whole within {allowed:g} s."
                    raise ApiError(408, "request_canceled_or_timed_out", msg) from None
                started = loop.time() if started is None else started
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                body = self._body_for(event)
                opened.append(body)
                declared = int(dict(event.headers).get(b"content-length", b"0"))
                if declared > body.limit:
                    raise _too_large(body.limit)
                allowed += body.seconds_per_mb * declared / 1e6
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > body.limit:
                    raise _too_large(body.limit)
                body.feed(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            else:  # ConnectionClosed or PAUSED
                return None, body

    def _body_for(self, request: h11.Request) -> Body:
        """Where a request's body goes: by default kept whole, up to `max_body`."""
        del request
        return Buffer(self.config.max_body)

    async def _handle(self, ex: Exchange, request: h11.Request, body: Body) -> bool:
        """Answer one request; whether the connection may be kept."""
        raise NotImplementedError


class Body(Protocol):
    """Where a request's body goes as it arrives."""

    limit: int
    """The most bytes it takes; past it the request gets 413."""

    seconds_per_mb: float
    """Seconds the body may take to arrive, besides `request_timeout`, for each
    MB (10^6 bytes) its content-length declares: 1 for uploads, else 0."""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body."""

    def close(self) -> None:
        """Free what the request did not keep: it was answered, or failed."""


@dataclass
class Buffer:
    """A body kept whole (every JSON request)."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    seconds_per_mb: float = 0.0

    def feed(self, data: bytes) -> None:
        """Keep `data`."""
        self.data += data

    def close(self) -> None:
        """Nothing to free: the bytes go with the request."""


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "request_too_large", f"The request body is over {limit:,} bytes."
    )


_Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def _quiet_accept(previous: _Handler | None) -> _Handler:
    """A loop exception handler that drops asyncio's failed-accept reports."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    return handle


def _connection_cap(wanted: int) -> int:
    """`wanted`, kept below the open-file limit.

    Past that limit accepting fails, and asyncio logs a traceback for every try.
    """
    if sys.platform == "win32":
        return wanted
    import resource  # noqa: PLC0415 - POSIX only

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _FD_RESERVE))


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass
