"""Sending requests, with retries, and the errors HTTP gives (I/O: here and `_stream`).

- `send` opens a request, retrying only before a byte of a 2xx body has been
  read (a retried stream would replay text and add a turn to the session).
  Redirects are never followed. Each failed response is read up to
  `MAX_ERROR_BODY` bytes and closed.
- The errors of HTTP are built here, where their cause is known: from a status
  and its body (`error_from_response`, with `parse_retry_after`), and from a
  transport failure (`error_from_transport`).
- `post_json` is a JSON request (the knowledge store's search).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Generator
from contextlib import aclosing, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from langchain_jockey import errors
from langchain_jockey._reader import detached, redacted, request_of, unexpected_body

__all__ = [
    "DEFAULT_TIMEOUT",
    "RetryPolicy",
    "apost_json",
    "asend",
    "error_from_response",
    "error_from_transport",
    "parse_retry_after",
    "post_json",
    "send",
    "transport_errors",
]

logger = logging.getLogger("langchain_jockey")

# Jockey sends a keepalive about every 10 s while it works, so 60 s without a
# byte means a dead connection. The pool wait is bounded so that a client whose
# connections are all held by long answers says so (`error_from_transport`).
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=60.0)
MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 2000


# -- errors ---------------------------------------------------------------------

# "…try again later after 2026-06-23T13:46:59Z" (docs/protocol.md, rate limits).
_RESET_IN_MESSAGE = re.compile(
    r"after\s+(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)


def _seconds_until(when: datetime | None, now: float) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _number(value: str | None, scale: float = 1.0) -> float | None:
    try:
        return max(0.0, float(value) / scale) if value is not None else None
    except ValueError:
        return None


def parse_retry_after(
    headers: httpx.Headers | dict[str, str],
    message: str | None = None,
    *,
    now: float | None = None,
) -> float | None:
    """Seconds to wait, from `retry-after-ms`, `retry-after` or the message.

    `retry-after` may be seconds or an HTTP date (RFC 9110 §10.2.3). When no
    header is present, a reset time written into a 429 message ("… after
    2026-06-23T13:46:59Z") is used. A time in the past gives 0.
    """
    now = time.time() if now is None else now
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    seconds = _number(lowered.get("retry-after-ms"), 1000.0)
    if seconds is None:
        seconds = _number(lowered.get("retry-after"))
    if seconds is not None:
        return seconds
    when = None
    if "retry-after" in lowered:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = email.utils.parsedate_to_datetime(lowered["retry-after"])
    elif message and (match := _RESET_IN_MESSAGE.search(message)):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
    return _seconds_until(when, now)


def _redact(text: str, secret: str | None) -> str:
    text = text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"
    return text.replace(secret, "[redacted]") if secret else text


def error_from_response(
    response: httpx.Response, body: bytes | None = None
) -> errors.JockeyError:
    """The error for a non-2xx response, from the first bytes of its body.

    `body` defaults to the content of a response that was read.

    The key (if the server echoed it) is redacted from the message and the
    body, and the response kept on the error carries the key redacted too.
    """
    body = response.content if body is None else body
    request = request_of(response)
    secret = request.headers.get("x-api-key") if request is not None else None
    text = _redact(body.decode("utf-8", "replace"), secret)
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):
        parsed = text
    code, message, docs_url = errors.error_fields(parsed)
    if message is None:
        message = text.strip()[:500] or response.reason_phrase or "HTTP error"
    status = response.status_code
    retryable = (status in (408, 429) or status >= 500) and (
        code not in errors.NOT_RETRYABLE_CODES
    )
    return errors.error_class(status, code)(
        _redact(message, secret),
        status_code=status,
        code=code,
        docs_url=docs_url,
        body=parsed,
        response=detached(response, body),
        retry_after=parse_retry_after(response.headers, message),
        retryable=retryable,
    )


# Transport failures where the request never reached Jockey: retrying cannot
# add a turn to a session.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TIMEOUT_PHASES = {
    httpx.ConnectTimeout: ("connect", "to connect to Jockey"),
    httpx.ReadTimeout: ("read", "for the next bytes of the answer"),
    httpx.WriteTimeout: ("write", "to send the request"),
    httpx.PoolTimeout: ("pool", "for a free connection in the client's pool"),
}


def error_from_transport(
    exc: httpx.TransportError, request: httpx.Request | None = None
) -> errors.JockeyError:
    """The error for an httpx transport failure (connect, read, timeout, protocol)."""
    cls: type[errors.JockeyError]
    if isinstance(exc, httpx.TimeoutException):
        cls = errors.JockeyTimeoutError
        phase, waited = _TIMEOUT_PHASES.get(type(exc), ("", "for Jockey"))
        limits = request.extensions.get("timeout", {}) if request else {}
        seconds = limits.get(phase)
        limit = f"{seconds:g} s" if isinstance(seconds, (int, float)) else "too long"
        message = (
            f"{type(exc).__name__}: waited {limit} {waited} (the {phase or 'request'} "
            "timeout). ChatJockey(timeout=...) sets the longest wait for a "
            "connection or between bytes, never the whole answer, which may take "
            "minutes; raise it, or pass an httpx.Timeout to set each limit."
        )
        if phase == "pool":
            message += " Or give the client more connections: http_async_client="
            message += "httpx.AsyncClient(limits=httpx.Limits(max_connections=…))."
    elif isinstance(
        exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError)
    ):
        cls, message = errors.JockeyConnectionError, _not_connected(exc, request)
    else:
        cls = errors.JockeyStreamInterruptedError
        message = f"the connection to Jockey broke: {type(exc).__name__}: {exc}"
    return cls(message, retryable=isinstance(exc, _NOT_SENT))


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_DNS_FAILURE = re.compile(
    r"name or service not known|nodename nor servname|name resolution|"
    r"getaddrinfo|no address associated",
    re.IGNORECASE,
)


def _not_connected(exc: httpx.TransportError, request: httpx.Request | None) -> str:
    """Where a connection failed (host and port, never the key) and the likely cause."""
    detail = str(exc) or type(exc).__name__
    if request is None:
        return f"could not connect to Jockey: {detail}"
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    where = f"{url.host}:{port}"
    if isinstance(exc, httpx.ProxyError):
        cause = "the proxy refused the connection: check your proxy settings."
    elif _DNS_FAILURE.search(detail):
        cause = f"the host name {url.host!r} did not resolve: check base_url and DNS."
    elif "ssl" in detail.lower() or "certificate" in detail.lower():
        cause = (
            "the TLS handshake failed: a proxy that intercepts TLS, or an "
            "out-of-date certificate bundle?"
        )
    elif url.host in _LOOPBACK:
        cause = (
            "nothing answers there: is the local emulator running? Start it with "
            f"`python -m langchain_jockey.emulator --port {port}`, or check base_url."
        )
    else:
        cause = "check base_url and your network connection."
    return f"could not connect to Jockey at {where} ({detail}): {cause}"


@contextmanager
def transport_errors(request: httpx.Request) -> Generator[None, None, None]:
    """Httpx's transport failures become the matching `JockeyError`."""
    try:
        yield
    except httpx.TransportError as exc:
        exc.request = redacted(request)  # the chained cause keeps no key
        raise error_from_transport(exc, request) from exc


# -- retries ---------------------------------------------------------------------


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


class _Attempts:
    """The attempts at one request: logs each, and says how long to wait."""

    def __init__(self, request: httpx.Request, policy: RetryPolicy) -> None:
        self.request, self.policy = request, policy
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
            with transport_errors(self.request):
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

    def read(self, chunk: bytes) -> bool:
        """Keep `chunk` of a failed response's body; whether enough is read."""
        self.body += chunk
        return len(self.body) >= MAX_ERROR_BODY

    def failed(self, response: httpx.Response) -> errors.JockeyError:
        """The error of a failed response, from the body read."""
        return error_from_response(response, bytes(self.body[:MAX_ERROR_BODY]))


def send(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Send `request` (body unread), retrying as `policy` says; 2xx or raise."""
    attempts = _Attempts(request, policy)
    while True:
        with attempts.next() as attempt:
            response = client.send(attempt, stream=True, follow_redirects=False)
            if not response.is_success:  # read a little: the status says enough
                with contextlib.suppress(httpx.TransportError), closing(response):
                    for chunk in response.iter_bytes():
                        if attempts.read(chunk):
                            break
                raise attempts.failed(response)
            return response
        time.sleep(attempts.delay)


async def asend(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Async twin of `send`."""
    attempts = _Attempts(request, policy)
    while True:
        with attempts.next() as attempt:
            response = await client.send(attempt, stream=True, follow_redirects=False)
            if not response.is_success:
                with contextlib.suppress(httpx.TransportError):
                    async with aclosing(response):
                        async for chunk in response.aiter_bytes():
                            if attempts.read(chunk):
                                break
                raise attempts.failed(response)
            return response
        await asyncio.sleep(attempts.delay)


# -- JSON requests (the knowledge store's search) ---------------------------------


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise unexpected_body(response, response.content, "JSON") from None


def post_json(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> Any:
    """Send a JSON request; return its JSON body."""
    response = send(client, request, policy)
    with transport_errors(request), closing(response):
        response.read()
    return _json(response)


async def apost_json(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> Any:
    """Async twin of `post_json`."""
    response = await asend(client, request, policy)
    with transport_errors(request):
        async with aclosing(response):
            await response.aread()
    return _json(response)
