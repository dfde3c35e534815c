"""All of the I/O: sending requests with retries, and reading their bodies.

- `send` opens a request, retrying only before a byte of a 2xx body has been
  read (a retried stream would replay text and add a turn to the session).
  Redirects are never followed. A response that is not what was asked for (a
  non-2xx status, another content type, a `content-encoding` other than
  identity, which we ask for) is read up to `MAX_ERROR_BODY` bytes, closed and
  raised as its typed error.
- `iter_events` / `aiter_events` feed a streamed body to `_sse.StreamReader`
  one network read at a time, and close the response when the events are
  complete, however iteration ends. They only read and await.
- `post_json` is a JSON request (the knowledge store's search), its body read
  up to `MAX_JSON_BODY` bytes.

What a failure means (its typed error, whether to retry) is decided in
`_failures`, without I/O; this module calls it where the failure happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing, contextmanager
from typing import Any

import httpx

from langchain_jockey import errors
from langchain_jockey._failures import (
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
    "aiter_events",
    "apost_json",
    "asend",
    "iter_events",
    "post_json",
    "send",
]

logger = logging.getLogger("langchain_jockey")

SSE = "text/event-stream"
JSON = "application/json"
# A search page is a few KB; more than this is not an answer (and is not held).
MAX_JSON_BODY = 8 * 1024 * 1024


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
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # deep nesting: RecursionError
        raise refused(response, body, "readable JSON") from None


def post_json(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> Any:
    """Send a JSON request; return its JSON body (read up to `MAX_JSON_BODY`)."""
    response = send(client, request, policy, JSON)
    body = bytearray()
    with _transport_errors(request), closing(response):
        for chunk in response.iter_bytes():
            _keep(body, chunk)
    return _parsed(response, bytes(body))


async def apost_json(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> Any:
    """Async twin of `post_json`."""
    response = await asend(client, request, policy, JSON)
    body = bytearray()
    with _transport_errors(request):
        async with aclosing(response):
            async for chunk in response.aiter_bytes():
                _keep(body, chunk)
    return _parsed(response, bytes(body))
