"""Errors raised by `langchain_jockey`.

Every error is a `JockeyError` and also the matching
`langchain_core.exceptions.Model*Error`, so callers can catch either and
LangChain's retry helpers can read `is_retryable`::

    JockeyError (ModelError)
    ├── JockeyInputError              bad input, before any request  ValueError
    ├── JockeyBadRequestError         400, 422, other 4xx   ModelInvalidRequestError
    ├── JockeyAuthenticationError     401                   ModelAuthenticationError
    ├── JockeyPermissionDeniedError   403                   ModelPermissionDeniedError
    ├── JockeyNotFoundError           404                   ModelNotFoundError
    ├── JockeyRateLimitError          429                   ModelRateLimitError
    ├── JockeyServerError             5xx, response.failed  ModelAPIError
    ├── JockeyConnectionError         connect / network     ModelConnectionError
    │   └── JockeyStreamInterruptedError  stream ended early or unreadable
    └── JockeyTimeoutError            read / connect / idle ModelTimeoutError

Errors are built here and nowhere else: from an HTTP response
(`error_from_response`), from a stream event (`error_from_event`) and from
transport failures (`error_from_transport`). An error raised while a stream was
being read keeps what had arrived: `partial_text` and `session_id`, so the
caller can show the partial answer and continue the session with a new request.
"""

from __future__ import annotations

import email.utils
import re
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

__all__ = [
    "JockeyAuthenticationError",
    "JockeyBadRequestError",
    "JockeyConnectionError",
    "JockeyError",
    "JockeyInputError",
    "JockeyNotFoundError",
    "JockeyPermissionDeniedError",
    "JockeyRateLimitError",
    "JockeyServerError",
    "JockeyStreamInterruptedError",
    "JockeyTimeoutError",
]

# A plan cap "will not clear for hours" (PROTOCOL.md §9.2): retrying is pointless.
_NOT_RETRYABLE_CODES = frozenset({"plan_limit_exceeded"})


class JockeyError(ModelError):
    """Base class of every error raised by `langchain_jockey`.

    Attributes:
        message: What went wrong, as the server said it when it said anything.
        status_code: HTTP status of the response, if the error came from one.
        code: The server's error code (for example `"api_key_invalid"`).
        docs_url: The server's documentation link for the code, if given.
        body: The parsed error body (a dict) or its text.
        response: The `httpx.Response`, if the error came from one.
        retry_after: Seconds the server asked to wait before retrying.
        partial_text: Answer text received before a stream failed ("" if none).
        session_id: The Jockey session of the failed turn, when known; send it
            with the next request to continue the conversation.
        response_id: The `resp_…` id of the failed response, when known.
    """

    message: str
    status_code: int | None
    code: str | None
    docs_url: str | None
    body: Any
    response: httpx.Response | None
    retry_after: float | None
    partial_text: str
    session_id: str | None
    response_id: str | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        docs_url: str | None = None,
        body: Any = None,
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.docs_url = docs_url
        self.body = body
        self.response = response
        self.retry_after = retry_after
        self.partial_text = ""
        self.session_id = None
        self.response_id = None
        if code in _NOT_RETRYABLE_CODES:
            self.is_retryable = False

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status_code, self.code) if p is not None)
        text = f"{head}: {self.message}" if head else self.message
        if self.docs_url:
            text += f" (see {self.docs_url})"
        if self.session_id:
            text += f" [session_id={self.session_id}]"
        if self.partial_text:
            text += f" [{len(self.partial_text)} characters received before the error]"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (multiprocessing, caches); the response is not.
        state = {k: v for k, v in self.__dict__.items() if k != "response"}
        return (_rebuild_error, (type(self), self.message, state))


def _rebuild_error(
    cls: type[JockeyError], message: str, state: dict[str, Any]
) -> JockeyError:
    err = cls(message)
    err.__dict__.update(state)
    err.response = None
    return err


class JockeyInputError(JockeyError, ValueError, TypeError):
    """Input ChatJockey cannot send, found before any request is made.

    A bad message, an unknown option, a missing key or knowledge store. It is a
    `ValueError` (and, for options of the wrong type, a `TypeError`, as those
    were before) so code written against plain Python errors keeps working.
    """


class JockeyBadRequestError(JockeyError, ModelInvalidRequestError):
    """The request was rejected as invalid (HTTP 400, 422 or another 4xx)."""


class JockeyAuthenticationError(JockeyError, ModelAuthenticationError):
    """The API key is missing, invalid or expired (HTTP 401)."""


class JockeyPermissionDeniedError(JockeyError, ModelPermissionDeniedError):
    """The API key may not use this resource (HTTP 403)."""


class JockeyNotFoundError(JockeyError, ModelNotFoundError):
    """The knowledge store, session or other resource does not exist (HTTP 404)."""


class JockeyRateLimitError(JockeyError, ModelRateLimitError):
    """A rate limit or quota was hit (HTTP 429).

    Retryable, except for `plan_limit_exceeded` (a plan cap that does not
    clear for hours), whose `is_retryable` is `False`.
    """


class JockeyServerError(JockeyError, ModelAPIError):
    """Jockey failed on its side: HTTP 5xx, or a `response.failed` event."""


class JockeyConnectionError(JockeyError, ModelConnectionError):
    """The server could not be reached or the connection broke."""


class JockeyStreamInterruptedError(JockeyConnectionError):
    """A stream ended before its terminal event, or could not be read.

    Jockey streams cannot be resumed: `partial_text` holds what arrived, and a
    new request with the same `session_id` continues the conversation.
    """


class JockeyTimeoutError(JockeyError, ModelTimeoutError):
    """Connecting, or waiting for the next bytes of a response, took too long."""


_STATUS_CLASSES: dict[int, type[JockeyError]] = {
    400: JockeyBadRequestError,
    401: JockeyAuthenticationError,
    403: JockeyPermissionDeniedError,
    404: JockeyNotFoundError,
    408: JockeyTimeoutError,
    422: JockeyBadRequestError,
    429: JockeyRateLimitError,
}

# Errors inside a 200 stream have no status of their own: classify them by code.
_CODE_CLASSES: dict[str, type[JockeyError]] = {
    "api_key_invalid": JockeyAuthenticationError,
    "unauthorized": JockeyAuthenticationError,
    "api_not_allowed": JockeyPermissionDeniedError,
    "api_allowed_for_paid_plan": JockeyPermissionDeniedError,
    "region_not_allowed": JockeyPermissionDeniedError,
    "forbidden": JockeyPermissionDeniedError,
    "resource_not_exist": JockeyNotFoundError,
    "not_found": JockeyNotFoundError,
    "too_many_requests": JockeyRateLimitError,
    "rate_limit_exceeded": JockeyRateLimitError,
    "plan_limit_exceeded": JockeyRateLimitError,
    "parameter_invalid": JockeyBadRequestError,
    "parameter_not_provided": JockeyBadRequestError,
    "parameter_unknown": JockeyBadRequestError,
    "invalid_request": JockeyBadRequestError,
    "invalid_request_error": JockeyBadRequestError,
    "request_canceled_or_timed_out": JockeyTimeoutError,
}


def _class_for_status(status: int) -> type[JockeyError]:
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return JockeyServerError
    if status >= 400:
        return JockeyBadRequestError
    return JockeyError


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """Code, message and docs URL from a flat or a nested (`{"error": …}`) body."""
    if not isinstance(body, dict):
        return None, None, None
    nested = body.get("error")
    if isinstance(nested, dict):
        # Open Responses / OpenAI style: {"error": {"type", "code", "message"}}.
        code, message, docs_url = _error_fields(
            {k: v for k, v in nested.items() if k != "error"}
        )
        if code is None and isinstance(nested.get("type"), str):
            code = nested["type"]
        return code, message, docs_url
    if isinstance(nested, str) and "message" not in body:
        return None, nested, None

    def text(key: str) -> str | None:
        value = body.get(key)
        return value if isinstance(value, str) and value else None

    return text("code"), text("message"), text("docs_url")


# "…try again later after 2026-06-23T13:46:59Z" (PROTOCOL.md §9.2).
_RESET_IN_MESSAGE = re.compile(
    r"after\s+(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)


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
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - now)
    if message:
        match = _RESET_IN_MESSAGE.search(message)
        if match:
            stamp = match.group(1).replace(" ", "T").replace("Z", "+00:00")
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - now)
    return None


def error_from_response(response: httpx.Response) -> JockeyError:
    """Build the error for a non-2xx response whose body has been read."""
    try:
        body: Any = response.json()
    except (ValueError, httpx.ResponseNotRead):
        try:
            body = response.text
        except httpx.ResponseNotRead:
            body = None
    code, message, docs_url = _error_fields(body)
    if message is None:
        message = (
            body.strip()[:500]
            if isinstance(body, str) and body.strip()
            else response.reason_phrase or "HTTP error"
        )
    cls = _class_for_status(response.status_code)
    if code in _CODE_CLASSES and cls is JockeyBadRequestError:
        cls = _CODE_CLASSES[code]
    return cls(
        message,
        status_code=response.status_code,
        code=code,
        docs_url=docs_url,
        body=body,
        response=response,
        retry_after=parse_retry_after(response.headers, message),
    )


def error_from_event(event: dict[str, Any]) -> JockeyError:
    """Build the error for an `error` or `response.failed` stream event.

    Jockey documents only `response.failed`, with no detail; Open Responses
    sends an `error` event (`{"error": {code, message, …}}`) first (PROTOCOL.md
    §8.5). Either way the error is classified by its own code, not by the
    stream's HTTP status (which was 200).
    """
    if event.get("type") == "error":
        code, message, docs_url = _error_fields(event)
    else:
        snapshot = event.get("response")
        detail = snapshot.get("error") if isinstance(snapshot, dict) else None
        code, message, docs_url = _error_fields({"error": detail})
    if event.get("type") == "error":
        message = message or "Jockey reported an error in the stream"
    else:
        message = message or "Jockey reported the response as failed"
    cls = _CODE_CLASSES.get(code or "", JockeyServerError)
    return cls(message, code=code, docs_url=docs_url, body=event)


def error_from_transport(exc: httpx.TransportError) -> JockeyError:
    """Wrap an httpx transport failure (connect, read, timeout, protocol)."""
    cls: type[JockeyError]
    if isinstance(exc, httpx.TimeoutException):
        cls = JockeyTimeoutError
        message = _timeout_message(exc)
    elif isinstance(
        exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError)
    ):
        cls = JockeyConnectionError
        message = f"could not connect to Jockey: {exc}"
    else:
        cls = JockeyStreamInterruptedError
        message = f"the connection to Jockey broke: {type(exc).__name__}: {exc}"
    return cls(message)


# What each httpx timeout measures, for the message that says which one fired.
_TIMEOUT_PHASES = {
    httpx.ConnectTimeout: ("connect", "to connect to Jockey"),
    httpx.ReadTimeout: ("read", "for the next bytes of the answer"),
    httpx.WriteTimeout: ("write", "to send the request"),
    httpx.PoolTimeout: ("pool", "for a free connection in the client's pool"),
}


def _timeout_message(exc: httpx.TimeoutException) -> str:
    phase, waited = _TIMEOUT_PHASES.get(type(exc), ("", "for Jockey"))
    try:
        limits = exc.request.extensions.get("timeout", {})
    except RuntimeError:  # an exception raised without its request
        limits = {}
    seconds = limits.get(phase)
    limit = f"{seconds:g} s" if isinstance(seconds, (int, float)) else "the limit"
    return (
        f"{type(exc).__name__}: waited {limit} {waited} (the {phase or 'request'} "
        "timeout). ChatJockey(timeout=...) sets the longest wait for a connection "
        "or between bytes, never the whole answer, which may take minutes; raise "
        "it, or pass an httpx.Timeout to set each limit."
    )


def content_idle(seconds: float) -> JockeyTimeoutError:
    """The error for a stream that sent only keepalives for too long."""
    return JockeyTimeoutError(
        f"Jockey sent only keepalives for more than {seconds:g} s "
        "(stream_idle_timeout): the answer is not progressing."
    )


def stream_interrupted(reason: str) -> JockeyStreamInterruptedError:
    """The error for a stream that ended before its terminal event."""
    return JockeyStreamInterruptedError(reason)


def malformed_event(data: bytes, exc: Exception) -> JockeyStreamInterruptedError:
    """The error for an event whose data is not a JSON object."""
    preview = data[:200].decode("utf-8", "replace")
    return JockeyStreamInterruptedError(
        f"Jockey sent an unreadable event ({type(exc).__name__}): {preview!r}",
        body=preview,
    )


def not_an_event_stream(response: httpx.Response, head: bytes) -> JockeyServerError:
    """The error for a 2xx answer to a stream request that is not SSE."""
    kind = response.headers.get("content-type")
    preview = head[:200].decode("utf-8", "replace")
    return JockeyServerError(
        f"Jockey answered {response.status_code} with content type {kind!r}, "
        f"not an event stream: {preview!r}",
        status_code=response.status_code,
        body=preview,
        response=response,
    )


def invalid_json_response(response: httpx.Response) -> JockeyServerError:
    """The error for a 2xx non-streaming response that is not a JSON object."""
    text = response.text[:200]
    return JockeyServerError(
        f"Jockey answered {response.status_code} with a body that is not a "
        f"response object: {text!r}",
        status_code=response.status_code,
        body=text,
        response=response,
    )


def with_progress(
    err: JockeyError,
    *,
    partial_text: str,
    session_id: str | None,
    response_id: str | None,
) -> JockeyError:
    """Attach what a stream had delivered before `err` to `err`, and return it."""
    err.partial_text = partial_text
    err.session_id = err.session_id or session_id
    err.response_id = err.response_id or response_id
    return err
