"""The only module that does I/O: clients, requests, retries, reading, closing.

- `Clients` owns the httpx clients a model creates: one sync client, one async
  client per event loop (closed when that loop shuts down).
- `build_request` makes every request the same way: URL, auth, headers,
  timeouts. The key goes only to the configured host: redirects are never
  followed, so it cannot be replayed to another one.
- `send` opens a request, retrying only before a byte of a 2xx body has been
  read (a retried stream would replay text and add a turn to the session).
  Each failed response is read up to `MAX_ERROR_BODY` bytes and closed.
- `iter_events` reads Server-Sent Events into event dicts. Everything that is
  not I/O (decoding, limits, clocks, `[DONE]`, the body's tail) is in
  `StreamReader`, which the sync and async loops share; they differ only in
  the lines that await.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from langchain_jockey import errors
from langchain_jockey._reader import Limits, StreamReader
from langchain_jockey._version import __version__

__all__ = [
    "DEFAULT_TIMEOUT",
    "Clients",
    "RetryPolicy",
    "aiter_events",
    "apost_json",
    "build_request",
    "iter_events",
    "post_json",
]

logger = logging.getLogger("langchain_jockey")

# Jockey sends a keepalive about every 10 s while it works, so 60 s without a
# byte means a dead connection. The pool wait is bounded so that a client whose
# connections are all held by long answers says so (see `POOL_LIMITS`).
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=60.0)
# A Jockey answer holds its connection for 30 s - 3 min, so the pool is sized
# for many at once rather than httpx's default of 100.
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
MAX_ERROR_BODY = 64 * 1024
# -- clients and requests -----------------------------------------------------


class Clients:
    """The httpx clients a model created; clients given to it are passed per call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: dict[
            asyncio.AbstractEventLoop,
            tuple[httpx.AsyncClient, AsyncGenerator[None, None]],
        ] = {}

    def __reduce__(self) -> tuple[type[Clients], tuple[()]]:
        """A pickled model gets new clients: sockets cannot be pickled."""
        return (Clients, ())

    def sync(self, given: httpx.Client | None) -> httpx.Client:
        """`given`, else this object's sync client, made on first use."""
        if given is not None:
            return given
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(limits=POOL_LIMITS)
                # Dropped without close(), it still closes its sockets.
                weakref.finalize(self, self._sync.close)
            return self._sync

    async def async_(self, given: httpx.AsyncClient | None) -> httpx.AsyncClient:
        """`given`, else this event loop's async client, made on first use."""
        if given is not None:
            return given
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            for old in [lp for lp in self._async if lp.is_closed()]:
                self._async.pop(old, None)  # closed without a shutdown
            client = httpx.AsyncClient(limits=POOL_LIMITS)
            keeper = self._close_at_loop_shutdown(loop, client)
            await anext(keeper)  # runs to its `yield`: the loop now tracks it
            entry = self._async[loop] = (client, keeper)
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
            if self._async.get(loop, (None,))[0] is client:
                del self._async[loop]
            await client.aclose()

    def close(self) -> None:
        """Close the sync client; a new one is made on next use."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's async client and the sync client."""
        entry = self._async.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # its `finally` closes the client
        self.close()


def build_request(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    base_url: str,
    path: str,
    *,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    accept: str = "text/event-stream",
) -> httpx.Request:
    """A request to `{base_url}/{path}`; raises `JockeyInputError` before any I/O.

    A query string in `base_url` (`…/v1.3?tenant=t1`) is kept, after the path.
    """
    if not api_key:
        msg = (
            "Jockey needs a TwelveLabs API key: pass api_key=… or set "
            "TWELVE_LABS_API_KEY."
        )
        raise errors.JockeyInputError(msg)
    # Joined as text: parsing base_url into an httpx.URL on every request cost
    # about 60 us (measured), and httpx parses the result once anyway.
    if not base_url.startswith(("http://", "https://")):
        msg = f"base_url must be an http(s) URL, not {base_url!r}."
        raise errors.JockeyInputError(msg)
    root, mark, query = base_url.partition("?")
    url = f"{root.rstrip('/')}/{path}{mark}{query}"
    return client.build_request(
        method,
        url,
        content=content,
        headers={
            "x-api-key": api_key,
            "content-type": "application/json",
            "accept": accept,
            # A compressed stream could inflate past any limit before we see it.
            "accept-encoding": "identity",
            "user-agent": f"langchain-jockey/{__version__}",
            **(headers or {}),
        },
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
    )


# -- retries -------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before another attempt to open a request.

    Attributes:
        max_retries: Attempts after the first one.
        max_wait: The most time spent waiting between attempts, in seconds,
            in total. A `Retry-After` that would pass it gets no retry: the
            caller gets the error, with `retry_after` set, at once.
        backoff: First exponential backoff step, in seconds (doubles, capped
            at `backoff_cap`, with jitter), used when there is no `Retry-After`.
        backoff_cap: The largest backoff step, in seconds.
    """

    max_retries: int = 2
    max_wait: float = 60.0
    backoff: float = 0.5
    backoff_cap: float = 8.0

    def delay(
        self, attempt: int, err: errors.JockeyError, waited: float = 0.0
    ) -> float | None:
        """Seconds to wait after failed attempt `attempt` (0-based); `None`: no retry.

        Retried: HTTP errors and transport failures whose `is_retryable` is
        true (see `errors.JockeyError.is_retryable`).
        """
        if attempt >= self.max_retries or not err.is_retryable:
            return None
        if err.retry_after is not None:
            wait = err.retry_after
        else:
            step = min(self.backoff_cap, self.backoff * (2.0**attempt))
            wait = step * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        if waited + wait > self.max_wait:
            return None
        logger.info(
            "Jockey request failed (%s); retry %d of %d in %.2fs",
            err.status_code or type(err).__name__,
            attempt + 1,
            self.max_retries,
            wait,
        )
        return wait


def _log_request(request: httpx.Request, attempt: int) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        # Headers are never logged: they hold the API key.
        logger.debug(
            "Jockey request %s %s attempt %d body=%s",
            request.method,
            request.url,
            attempt + 1,
            request.content.decode("utf-8", "replace"),
        )


@contextmanager
def _transport_errors(request: httpx.Request) -> Generator[None, None, None]:
    """Httpx's transport failures become the matching `JockeyError`."""
    try:
        yield
    except httpx.TransportError as exc:
        raise errors.error_from_transport(exc, request) from exc


class _ErrorBody:
    """The first `MAX_ERROR_BODY` bytes of a failed response."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep `chunk`; whether enough has been read."""
        self.parts.append(chunk)
        self.size += len(chunk)
        return self.size >= MAX_ERROR_BODY

    def error(self, response: httpx.Response) -> errors.JockeyError:
        return errors.error_from_response(
            response, b"".join(self.parts)[:MAX_ERROR_BODY]
        )


def _retry_or_raise(
    policy: RetryPolicy, attempt: int, err: errors.JockeyError, waited: float
) -> float:
    delay = policy.delay(attempt, err, waited)
    if delay is None:
        raise err
    return delay


def send(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Send `request` (body unread), retrying as `policy` says; 2xx or raise."""
    waited, attempt = 0.0, 0
    while True:
        _log_request(request, attempt)
        try:
            with _transport_errors(request):
                response = client.send(request, stream=True, follow_redirects=False)
        except errors.JockeyError as err:
            delay = _retry_or_raise(policy, attempt, err, waited)
        else:
            if response.is_success:
                return response
            body = _ErrorBody()
            try:
                for chunk in response.iter_bytes():
                    if body.add(chunk):
                        break
            except httpx.TransportError:
                pass  # the status says enough
            finally:
                response.close()
            delay = _retry_or_raise(policy, attempt, body.error(response), waited)
        time.sleep(delay)
        waited, attempt = waited + delay, attempt + 1


async def asend(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Async twin of `send`."""
    waited, attempt = 0.0, 0
    while True:
        _log_request(request, attempt)
        try:
            with _transport_errors(request):
                response = await client.send(
                    request, stream=True, follow_redirects=False
                )
        except errors.JockeyError as err:
            delay = _retry_or_raise(policy, attempt, err, waited)
        else:
            if response.is_success:
                return response
            body = _ErrorBody()
            try:
                async for chunk in response.aiter_bytes():
                    if body.add(chunk):
                        break
            except httpx.TransportError:
                pass  # the status says enough
            finally:
                await response.aclose()
            delay = _retry_or_raise(policy, attempt, body.error(response), waited)
        await asyncio.sleep(delay)
        waited, attempt = waited + delay, attempt + 1


# -- reading a stream ------------------------------------------------------------


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
        with _transport_errors(request):
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
        with _transport_errors(request):
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


# -- JSON requests (the knowledge store's search) ---------------------------------


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise errors.unexpected_body(response, response.content, "JSON") from None


def post_json(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> Any:
    """Send a JSON request; return its JSON body."""
    response = send(client, request, policy)
    try:
        with _transport_errors(request):
            response.read()
    finally:
        response.close()
    return _json(response)


async def apost_json(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> Any:
    """Async twin of `post_json`."""
    response = await asend(client, request, policy)
    try:
        with _transport_errors(request):
            await response.aread()
    finally:
        await response.aclose()
    return _json(response)
