"""Reading a streamed answer over HTTP: the sync and async loops.

Each loop sends the request (`_http.send`), feeds every network read to a
`StreamReader` (which decodes, parses, enforces the limits and knows when the
events are complete) and yields its events. They differ only in the lines
that await, and in how the drain after the answer is bounded: `wait_for` for
async; for sync, a watchdog thread that cuts the socket (a blocking read
cannot be given a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from langchain_jockey._http import RetryPolicy, asend, send, transport_errors
from langchain_jockey._reader import Limits, StreamReader

__all__ = ["aiter_events", "iter_events"]

logger = logging.getLogger("langchain_jockey")


class _Watchdog:
    """One daemon thread that cuts the sockets of sync drains past their deadline.

    One thread for all requests, polling 4 times a second: a timer thread per
    request cost about 150 us (measured), and waking a waiting thread on every
    request cost about as much again in GIL hand-offs.
    """

    PERIOD = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, Any]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, response: httpx.Response, seconds: float) -> int:
        """Cut `response`'s socket in about `seconds` unless disarmed; a token."""
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._next += 1
            if sock is not None:
                self._armed[self._next] = (time.monotonic() + seconds, sock)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True)
                    self._thread.start()
            return self._next

    def disarm(self, token: int) -> None:
        """The drain ended in time."""
        with self._lock:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            now = time.monotonic()
            with self._lock:
                late = [
                    t for t, (deadline, _) in self._armed.items() if deadline <= now
                ]
                socks = [self._armed.pop(t)[1] for t in late]
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


def iter_events(
    client: httpx.Client,
    request: httpx.Request,
    policy: RetryPolicy,
    limits: Limits,
) -> Generator[dict[str, Any], None, None]:
    """The events of a streamed response, until it is complete or the body ends.

    The response is closed however iteration ends (end, error, `break`,
    `close()`). Once the events are complete, the rest of the body is read for
    a short, bounded time, so that the connection can go back to the pool.
    """
    response = send(client, request, policy)
    reader = StreamReader(response, limits)
    try:
        with transport_errors(request):
            # StreamReader decodes the raw body (bounded); a response read
            # already (a test double's) is taken as it is.
            chunks = (
                iter([response.content])
                if response.is_stream_consumed
                else response.iter_raw()
            )
            for chunk in chunks:
                yield from reader.feed(chunk)
                if reader.done:
                    break
            else:
                yield from reader.end()
                return
        # A blocking read cannot be given a deadline: the watchdog cuts the
        # socket if the body has not ended by then (a server holding it open).
        token = _WATCHDOG.arm(response, reader.drain_seconds)
        try:
            for chunk in chunks:
                if reader.drained(chunk):
                    break
        except httpx.TransportError:
            logger.debug("Jockey body did not end after the answer (it is complete)")
        finally:
            _WATCHDOG.disarm(token)
    finally:
        response.close()


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def aiter_events(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: RetryPolicy,
    limits: Limits,
) -> AsyncGenerator[dict[str, Any], None]:
    """Async twin of `iter_events`."""
    response = await asend(client, request, policy)
    reader = StreamReader(response, limits)
    try:
        with transport_errors(request):
            chunks = (
                _once(response.content)
                if response.is_stream_consumed
                else response.aiter_raw()
            )
            async for chunk in chunks:
                for event in reader.feed(chunk):
                    yield event
                if reader.done:
                    break
            else:
                for event in reader.end():
                    yield event
                return
        try:
            while not reader.drained(
                await asyncio.wait_for(anext(chunks), reader.drain_seconds)
            ):
                pass
        except StopAsyncIteration:
            pass
        except (httpx.TransportError, asyncio.TimeoutError):
            logger.debug("Jockey body did not end after the answer (it is complete)")
    finally:
        await response.aclose()
