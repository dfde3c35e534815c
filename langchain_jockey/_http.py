"""All of the I/O: the clients, sending requests with retries, reading bodies.

- `Clients` owns the httpx clients a model makes: one sync client, one async
  client per event loop (closed when that loop shuts down), all sharing one
  TLS context; safe between threads, and empty again in a forked child.

- `send` opens a request, retrying only before a byte of a 2xx body has been
  read (a retried stream would replay text and add a turn to the session).
  Redirects are never followed. A response that is not what was asked for (a
  non-2xx status, another content type, a `content-encoding` other than
  identity, which we ask for) is read up to `MAX_ERROR_BODY` bytes, closed and
  raised as its typed error.
- `iter_events` / `aiter_events` feed a streamed body to `_sse.StreamReader`
  one network read at a time, and close the response when the events are
  complete, however iteration ends. They only read and await.
- `call_json` is a JSON request (search, stores, items, assets), its body read
  up to `MAX_JSON_BODY` bytes.

What a failure means (its typed error, whether to retry) is decided in
`_failures`, without I/O; this module calls it where the failure happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing, contextmanager
from typing import Any

import httpx

from langchain_jockey import errors
from langchain_jockey._failures import (
    ANY,
    MAX_ERROR_BODY,
    RetryPolicy,
    encoding,
    error_from_transport,
    failure,
    redacted,
    refused,
    unwanted,
)
from langchain_jockey._sse import Limits, StreamReader

__all__ = [
    "JSON",
    "SSE",
    "acall_json",
    "aiter_events",
    "aput_part",
    "asend",
    "call_json",
    "etag",
    "iter_events",
    "put_part",
    "send",
]

logger = logging.getLogger("langchain_jockey")

SSE = "text/event-stream"
JSON = "application/json"
# A search page is a few KB; more than this is not an answer (and is not held).
MAX_JSON_BODY = 8 * 1024 * 1024
# Storage answers a part PUT with an empty body or a short XML document.
MAX_PART_BODY = 64 * 1024


# -- the clients a model makes ---------------------------------------------------

# A Jockey answer holds its connection for 30 s - 3 min, so the pool is sized
# for many at once rather than httpx's default of 100.
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)

_SSL: list[ssl.SSLContext] = []  # one, made on first use
_SSL_LOCK = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """The TLS context every client made here shares.

    httpx builds one per client, 17 ms each (2026-12-04), paid on every call.
    """
    with _SSL_LOCK:
        if not _SSL:
            _SSL.append(httpx.create_ssl_context())
        return _SSL[0]


class Clients:
    """The httpx clients a model created; clients given to it are passed per call.

    Safe to share between threads (each thread's event loop gets its own async
    client), and a forked child starts with none (`_forget_in_child`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._async: dict[
            asyncio.AbstractEventLoop,
            tuple[httpx.AsyncClient, AsyncGenerator[None, None]],
        ] = {}
        _ALL.add(self)

    def _forget(self) -> None:
        """In a forked child: the parent's clients and lock are not ours."""
        self._lock = threading.Lock()
        self._sync, self._closer, self._async = None, None, {}

    def __reduce__(self) -> tuple[type[Clients], tuple[()]]:
        """A pickled model gets new clients: sockets cannot be pickled."""
        return (Clients, ())

    def sync(self, given: httpx.Client | None) -> httpx.Client:
        """`given`, else this object's sync client, made on first use."""
        if given is not None:
            return given
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(limits=POOL_LIMITS, verify=_ssl_context())
                # Dropped without close(), it still closes its sockets. The
                # finalizer holds the client: close() detaches it, or every
                # closed client would stay alive as long as this object.
                self._closer = weakref.finalize(self, self._sync.close)
            return self._sync

    async def async_(self, given: httpx.AsyncClient | None) -> httpx.AsyncClient:
        """`given`, else this event loop's async client, made on first use."""
        if given is not None:
            return given
        loop = asyncio.get_running_loop()
        with self._lock:  # other threads' loops add and remove theirs
            entry = self._async.get(loop)
            for old in [lp for lp in self._async if lp.is_closed()]:
                del self._async[old]  # closed without a shutdown
        if entry is None:
            client = httpx.AsyncClient(limits=POOL_LIMITS, verify=_ssl_context())
            keeper = self._close_at_loop_shutdown(loop, client)
            await anext(keeper)  # runs to its `yield`: the loop now tracks it
            entry = (client, keeper)
            with self._lock:
                self._async[loop] = entry
        return entry[0]

    async def _close_at_loop_shutdown(
        self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
    ) -> AsyncGenerator[None, None]:
        """Close `client` when its event loop shuts down.

        A started async generator is registered with its loop, and
        `loop.shutdown_asyncgens()` (which `asyncio.run` and `asyncio.Runner`
        call before closing the loop) closes it while the loop still runs, so
        the `finally` closes the connections cleanly instead of leaving them to
        the garbage collector (`ResourceWarning: unclosed transport`).
        """
        try:
            yield
        finally:
            with self._lock:
                if self._async.get(loop, (None,))[0] is client:
                    del self._async[loop]
            await client.aclose()

    def close(self) -> None:
        """Close the sync client; a new one is made on next use."""
        with self._lock:
            client, self._sync = self._sync, None
            closer, self._closer = self._closer, None
        if closer is not None:
            closer.detach()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's async client and the sync client."""
        with self._lock:
            entry = self._async.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # its `finally` closes the client
        self.close()


_ALL: weakref.WeakSet[Clients] = weakref.WeakSet()


def _forget_in_child() -> None:
    """A forked child shares its parent's sockets: it starts with no clients."""
    for clients in list(_ALL):
        clients._forget()  # noqa: SLF001 - this module's own class


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)


# -- sending -----------------------------------------------------------------------


@contextmanager
def _transport_errors(request: httpx.Request) -> Generator[None, None, None]:
    """Httpx's transport failures become the matching `JockeyError`."""
    try:
        yield
    except httpx.TransportError as exc:
        exc.request = redacted(request)  # the chained cause keeps no key
        raise error_from_transport(exc, request) from exc


class _Attempts:
    """The attempts at one request: logs each, and says how long to wait."""

    def __init__(
        self, request: httpx.Request, policy: RetryPolicy, wanted: str
    ) -> None:
        self.request, self.policy, self.wanted = request, policy, wanted
        self.number, self.waited, self.delay = 0, 0.0, 0.0
        self.body = bytearray()  # of a failed response, while it is read

    @contextmanager
    def next(self) -> Generator[httpx.Request, None, None]:
        """One attempt at the request, logged (never its headers: they hold the key).

        A failure the policy retries ends the block quietly and leaves the wait
        in `delay`; any other failure raises.
        """
        self.body = bytearray()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Jockey request %s %s attempt %d body=%s",
                self.request.method,
                self.request.url,
                self.number + 1,
                self.request.content.decode("utf-8", "replace"),
            )
        try:
            with _transport_errors(self.request):
                yield self.request
        except errors.JockeyError as err:
            delay = self.policy.delay(self.number, err, self.waited)
            if delay is None:
                raise
            self.number, self.waited, self.delay = (
                self.number + 1,
                self.waited + delay,
                delay,
            )

    @staticmethod
    def readable(response: httpx.Response) -> httpx.Response:
        """`response`, or an empty one if its body is compressed (not inflated)."""
        if encoding(response) == "identity":
            return response
        return httpx.Response(response.status_code, request=response.request)

    def read(self, chunk: bytes) -> bool:
        """Keep `chunk` of a refused response's body; whether enough is read."""
        self.body += chunk
        return len(self.body) >= MAX_ERROR_BODY

    def failed(self, response: httpx.Response) -> errors.JockeyError:
        """The error of a refused response, from the body read."""
        return failure(response, bytes(self.body[:MAX_ERROR_BODY]), self.wanted)


def send(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy, wanted: str
) -> httpx.Response:
    """Send `request` (body unread), retrying as `policy` says.

    Returns a 2xx response of content type `wanted`, uncompressed; any other
    raises its typed error.
    """
    attempts = _Attempts(request, policy, wanted)
    while True:
        with attempts.next() as attempt:
            response = client.send(attempt, stream=True, follow_redirects=False)
            if unwanted(response, attempts.wanted):  # read a little: enough to say why
                with contextlib.suppress(httpx.TransportError), closing(response):
                    for chunk in attempts.readable(response).iter_bytes():
                        if attempts.read(chunk):
                            break
                raise attempts.failed(response)
            return response
        time.sleep(attempts.delay)


async def asend(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: RetryPolicy,
    wanted: str,
) -> httpx.Response:
    """Async twin of `send`."""
    attempts = _Attempts(request, policy, wanted)
    while True:
        with attempts.next() as attempt:
            response = await client.send(attempt, stream=True, follow_redirects=False)
            if unwanted(response, attempts.wanted):
                with contextlib.suppress(httpx.TransportError):
                    async with aclosing(response):
                        async for chunk in attempts.readable(response).aiter_bytes():
                            if attempts.read(chunk):
                                break
                raise attempts.failed(response)
            return response
        await asyncio.sleep(attempts.delay)


# -- streamed answers ---------------------------------------------------------------


def iter_events(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy, limits: Limits
) -> Generator[dict[str, Any], None, None]:
    """The events of a streamed answer, until they are complete or the body ends.

    The response is closed as soon as the events are complete (the rest of
    the body, if a server holds it open, is never waited for), and however
    else iteration ends: an error, `break`, `close()`. `send` refused any
    content encoding, so the bytes read are the body as sent.
    """
    response = send(client, request, policy, SSE)
    reader = StreamReader(limits)
    try:
        with _transport_errors(request):
            for chunk in response.iter_bytes():
                yield from reader.feed(chunk)
                if reader.done:
                    return
            yield from reader.end()
    finally:
        response.close()


async def aiter_events(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: RetryPolicy,
    limits: Limits,
) -> AsyncGenerator[dict[str, Any], None]:
    """Async twin of `iter_events`."""
    response = await asend(client, request, policy, SSE)
    reader = StreamReader(limits)
    try:
        with _transport_errors(request):
            async for chunk in response.aiter_bytes():
                for event in reader.feed(chunk):
                    yield event
                if reader.done:
                    return
            for event in reader.end():
                yield event
    finally:
        await response.aclose()


# -- JSON requests (the knowledge store's search) ---------------------------------


def _keep(body: bytearray, chunk: bytes) -> None:
    """Add `chunk` to a JSON body being read; raise past `MAX_JSON_BODY`."""
    body += chunk
    if len(body) > MAX_JSON_BODY:
        msg = f"Jockey sent a JSON body of over {MAX_JSON_BODY:,} bytes: not read."
        raise errors.JockeyServerError(msg, retryable=False)


def _parsed(response: httpx.Response, body: bytes) -> Any:
    if not body.strip():
        return None  # 204, or a DELETE's empty 200
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # deep nesting: RecursionError
        raise refused(response, body, "readable JSON") from None


def call_json(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> Any:
    """Send a request; its JSON body (read up to `MAX_JSON_BODY`), `None` if empty."""
    response = send(client, request, policy, JSON)
    body = bytearray()
    with _transport_errors(request), closing(response):
        for chunk in response.iter_bytes():
            _keep(body, chunk)
    return _parsed(response, bytes(body))


async def acall_json(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> Any:
    """Async twin of `call_json`."""
    response = await asend(client, request, policy, JSON)
    body = bytearray()
    with _transport_errors(request):
        async with aclosing(response):
            async for chunk in response.aiter_bytes():
                _keep(body, chunk)
    return _parsed(response, bytes(body))


def etag(response: httpx.Response) -> str:
    """The ETag of an uploaded part, quotes stripped (the proof the API wants)."""
    tag = str(response.headers.get("etag", "")).strip().strip('"')
    if not tag:
        msg = "The part upload was answered without an ETag: it cannot be reported."
        raise errors.JockeyServerError(msg, retryable=False)
    return tag


def put_part(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> str:
    """PUT one part of a multipart upload (no API key goes there); its ETag.

    Any 2xx with an ETag will do: storage answers in its own content type
    (XML, HTML). Its body is read, up to `MAX_PART_BODY` bytes, so that the
    connection goes back to the pool for the next part: closed unread,
    httpx would drop it, and each part would pay a new connection.
    """
    response = send(client, request, policy, ANY)
    read = 0
    with contextlib.suppress(httpx.TransportError), closing(response):
        for chunk in response.iter_bytes():  # the part is in: the ETag says so
            read += len(chunk)
            if read > MAX_PART_BODY:
                break
    return etag(response)


async def aput_part(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> str:
    """Async twin of `put_part`."""
    response = await asend(client, request, policy, ANY)
    read = 0
    with contextlib.suppress(httpx.TransportError):
        async with aclosing(response):
            async for chunk in response.aiter_bytes():
                read += len(chunk)
                if read > MAX_PART_BODY:
                    break
    return etag(response)
