"""The only module that does I/O: send, retry, read events, close.

It sends with retries, checks the status, reads Server-Sent Events into event
dicts, stops at `[DONE]`, and always closes the response.

Retries happen only while opening a request, before a byte of a 2xx body has
been read (DESIGN.md "Errors, retries, timeouts"): a retried stream would replay
text and add a turn to the session. Each failed response is read (for its error
body) and closed before the next attempt. The sync and async twins differ only
in the lines that await; every decision is in `RetryPolicy`, `errors` and
`_sse`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from langchain_jockey import errors
from langchain_jockey._sse import SSEDecoder

__all__ = ["RetryPolicy", "aiter_events", "apost_json", "iter_events", "post_json"]

logger = logging.getLogger("langchain_jockey")

_DONE = b"[DONE]"
# Failures where the request never reached Jockey, so a retry cannot add a turn.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before another attempt to open a request.

    Attributes:
        max_retries: Attempts after the first one.
        max_wait: The longest `Retry-After` honoured, in seconds; a server that
            asks for longer (a quota that resets in hours) gets no retry and the
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
        self, attempt: int, err: errors.JockeyError, *, not_sent: bool
    ) -> float | None:
        """Seconds to wait before retrying after failed attempt `attempt` (0-based).

        `None` means do not retry. Retried: connection failures before the
        request was sent, and HTTP errors whose class is retryable (429 except
        `plan_limit_exceeded`, 408, 5xx).
        """
        if attempt >= self.max_retries:
            return None
        if err.status_code is None:  # a transport failure
            if not not_sent:
                return None
        elif not err.is_retryable:
            return None
        if err.retry_after is not None:
            return err.retry_after if err.retry_after <= self.max_wait else None
        step = min(self.backoff_cap, self.backoff * (2.0**attempt))
        return step * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto


def _retry_or_raise(
    policy: RetryPolicy,
    attempt: int,
    err: errors.JockeyError,
    request: httpx.Request,
    *,
    not_sent: bool = False,
) -> float:
    delay = policy.delay(attempt, err, not_sent=not_sent)
    if delay is None:
        raise err
    logger.info(
        "Jockey %s %s failed (%s); retry %d of %d in %.2fs",
        request.method,
        request.url,
        err.status_code or type(err).__name__,
        attempt + 1,
        policy.max_retries,
        delay,
    )
    return delay


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


_raw_decode = json.JSONDecoder().raw_decode


def _parse(data: bytes) -> dict[str, Any] | None:
    """An event's data -> its dict; `None` for `[DONE]`."""
    if data == _DONE:
        return None
    try:
        # The hot path: raw_decode skips json.loads' encoding sniffing and
        # whitespace handling (about 1 us per event). Data it does not take whole
        # goes to json.loads, which parses it or says why not.
        text = data.decode()
        event, end = _raw_decode(text)
        if end != len(text):
            raise ValueError(end)  # noqa: TRY301 - caught just below
    except ValueError:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise errors.malformed_event(data, exc) from None
    if not isinstance(event, dict):
        raise errors.malformed_event(data, TypeError("not a JSON object"))
    return event


def _tail(decoder: SSEDecoder) -> list[dict[str, Any]]:
    """Events left unterminated at the end of the body.

    A last event that parses is kept (a server that omits the final blank
    line); one that does not is a truncated body, which the reducer reports as
    an interrupted stream, so it is dropped here.
    """
    out: list[dict[str, Any]] = []
    for data in decoder.flush():
        try:
            event = _parse(data)
        except errors.JockeyError:
            break
        if event is None:
            break
        out.append(event)
    return out


def send(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Send `request` (body unread), retrying as `policy` says; 2xx or raise."""
    attempt = 0
    while True:
        _log_request(request, attempt)
        try:
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            err = errors.error_from_transport(exc)
            err.__cause__ = exc
            delay = _retry_or_raise(
                policy, attempt, err, request, not_sent=isinstance(exc, _NOT_SENT)
            )
        else:
            if response.is_success:
                return response
            try:
                response.read()
            except httpx.TransportError:
                pass
            finally:
                response.close()
            delay = _retry_or_raise(
                policy, attempt, errors.error_from_response(response), request
            )
        time.sleep(delay)
        attempt += 1


async def asend(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> httpx.Response:
    """Async twin of `send`."""
    attempt = 0
    while True:
        _log_request(request, attempt)
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            err = errors.error_from_transport(exc)
            err.__cause__ = exc
            delay = _retry_or_raise(
                policy, attempt, err, request, not_sent=isinstance(exc, _NOT_SENT)
            )
        else:
            if response.is_success:
                return response
            try:
                await response.aread()
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            delay = _retry_or_raise(
                policy, attempt, errors.error_from_response(response), request
            )
        await asyncio.sleep(delay)
        attempt += 1


def _drain(chunks: Iterator[bytes]) -> None:
    """Read what follows `[DONE]` so the connection can be reused."""
    try:
        for _ in chunks:
            pass
    except httpx.TransportError:
        logger.debug("Jockey connection broke after [DONE]; the answer is complete")


async def _adrain(chunks: AsyncIterator[bytes]) -> None:
    try:
        async for _ in chunks:
            pass
    except httpx.TransportError:
        logger.debug("Jockey connection broke after [DONE]; the answer is complete")


def _is_event_stream(response: httpx.Response) -> bool:
    """Whether a 2xx body is SSE (a missing content type is given the benefit)."""
    kind: str = response.headers.get("content-type", "text/event-stream")
    return kind.split(";", maxsplit=1)[0].strip().lower() == "text/event-stream"


def iter_events(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy
) -> Generator[dict[str, Any], None, None]:
    """The events of a streamed response, until `[DONE]` or the end of the body.

    The response is closed however iteration ends (end, error, `break`,
    `close()`). After `[DONE]` the rest of the body is read so the connection
    goes back to the pool.
    """
    response = send(client, request, policy)
    decoder = SSEDecoder()
    try:
        try:
            chunks = response.iter_bytes()
            if not _is_event_stream(response):
                raise errors.not_an_event_stream(response, next(chunks, b""))
            for chunk in chunks:
                for data in decoder.feed(chunk):
                    event = _parse(data)
                    if event is None:
                        _drain(chunks)
                        return
                    yield event
        except httpx.TransportError as exc:
            raise errors.error_from_transport(exc) from exc
        yield from _tail(decoder)
    finally:
        response.close()


async def aiter_events(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> AsyncGenerator[dict[str, Any], None]:
    """Async twin of `iter_events`."""
    response = await asend(client, request, policy)
    decoder = SSEDecoder()
    try:
        try:
            chunks = response.aiter_bytes()
            if not _is_event_stream(response):
                raise errors.not_an_event_stream(response, await anext(chunks, b""))
            async for chunk in chunks:
                for data in decoder.feed(chunk):
                    event = _parse(data)
                    if event is None:
                        await _adrain(chunks)
                        return
                    yield event
        except httpx.TransportError as exc:
            raise errors.error_from_transport(exc) from exc
        for event in _tail(decoder):
            yield event
    finally:
        await response.aclose()


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise errors.invalid_json_response(response) from None


def post_json(client: httpx.Client, request: httpx.Request, policy: RetryPolicy) -> Any:
    """Send a non-streaming request; return its JSON body."""
    response = send(client, request, policy)
    try:
        response.read()
    except httpx.TransportError as exc:
        raise errors.error_from_transport(exc) from exc
    finally:
        response.close()
    return _json_body(response)


async def apost_json(
    client: httpx.AsyncClient, request: httpx.Request, policy: RetryPolicy
) -> Any:
    """Async twin of `post_json`."""
    response = await asend(client, request, policy)
    try:
        await response.aread()
    except httpx.TransportError as exc:
        raise errors.error_from_transport(exc) from exc
    finally:
        await response.aclose()
    return _json_body(response)
