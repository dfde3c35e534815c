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

Each error is built where its cause is known: `error_from_response` (an HTTP
status), `error_from_event` (a failed stream), `error_from_transport` (httpx),
or the class itself. An error raised while a stream was read gets what had
arrived (`partial_text`, `session_id`) once, from the reducer.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
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
from langchain_core.messages.ai import UsageMetadata

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

# A plan cap "will not clear for hours" (docs/protocol.md): retrying is pointless.
_MAX_MESSAGE = 2000
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
        usage_metadata: Token usage a failed response reported, if any.
        is_retryable: Whether sending the same request again is safe and may
            succeed: true only when Jockey did not start the turn (a 429 other
            than `plan_limit_exceeded`, 408, 5xx, or a connection that was
            never made). Once a stream has started, Jockey may have recorded
            the turn in its session, so a retry could add a second one: such
            errors are never retryable; continue with the same `session_id`.
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
        retryable: bool | None = None,
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
        self.usage_metadata: UsageMetadata | None = None
        if retryable is not None:
            self.is_retryable = retryable
        elif code in _NOT_RETRYABLE_CODES:
            self.is_retryable = False

    def with_progress(
        self, partial_text: str, session_id: str | None, response_id: str | None
    ) -> JockeyError:
        """Attach what a stream had delivered before this error, and return it."""
        self.partial_text = partial_text
        self.session_id = self.session_id or session_id
        self.response_id = self.response_id or response_id
        return self

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


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built without one (tests, transports)
        return None


def _detached(response: httpx.Response, body: bytes) -> httpx.Response:
    """A copy of `response` holding only `body`, its request's key redacted."""
    request = _request_of(response)
    copy = None
    if request is not None:
        headers = httpx.Headers(request.headers)
        if "x-api-key" in headers:
            headers["x-api-key"] = "[redacted]"
        copy = httpx.Request(request.method, request.url, headers=headers)
    return httpx.Response(
        response.status_code, headers=response.headers, content=body, request=copy
    )


def error_from_response(
    response: httpx.Response, body: bytes | None = None
) -> JockeyError:
    """The error for a non-2xx response, from the first bytes of its body.

    `body` defaults to the content of a response that was read.

    The key (if the server echoed it) is redacted from the message and the
    body, and the response kept on the error carries the key redacted too.
    """
    body = response.content if body is None else body
    request = _request_of(response)
    secret = request.headers.get("x-api-key") if request is not None else None
    text = _redact(body.decode("utf-8", "replace"), secret)
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):
        parsed = text
    code, message, docs_url = _error_fields(parsed)
    if message is None:
        message = text.strip()[:500] or response.reason_phrase or "HTTP error"
    status = response.status_code
    cls = _class_for_status(status)
    if code in _CODE_CLASSES and cls is JockeyBadRequestError:
        cls = _CODE_CLASSES[code]
    retryable = (status in (408, 429) or status >= 500) and (
        code not in _NOT_RETRYABLE_CODES
    )
    return cls(
        _redact(message, secret),
        status_code=status,
        code=code,
        docs_url=docs_url,
        body=parsed,
        response=_detached(response, body),
        retry_after=parse_retry_after(response.headers, message),
        retryable=retryable,
    )


def error_from_event(event: dict[str, Any]) -> JockeyError:
    """The error for an `error` event or a failed response snapshot.

    Jockey documents only `response.failed`, with no detail; Open Responses
    sends an `error` event (`{"error": {code, message, …}}`) first. Either way
    the error is classified by its own code, not by the stream's status (200).
    """
    snapshot = event.get("response")
    detail = snapshot.get("error") if isinstance(snapshot, dict) else event
    code, message, docs_url = _error_fields(detail)
    if message is None:
        message = "Jockey reported the response as failed"
    cls = _CODE_CLASSES.get(code or "", JockeyServerError)
    return cls(message, code=code, docs_url=docs_url, body=event, retryable=False)


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
) -> JockeyError:
    """The error for an httpx transport failure (connect, read, timeout, protocol)."""
    cls: type[JockeyError]
    if isinstance(exc, httpx.TimeoutException):
        cls = JockeyTimeoutError
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
        cls, message = JockeyConnectionError, f"could not connect to Jockey: {exc}"
    else:
        cls = JockeyStreamInterruptedError
        message = f"the connection to Jockey broke: {type(exc).__name__}: {exc}"
    return cls(message, retryable=isinstance(exc, _NOT_SENT))


def malformed_event(data: bytes, exc: BaseException) -> JockeyError:
    """The error for an event whose data is not a JSON object."""
    preview = data[:200].decode("utf-8", "replace")
    return JockeyStreamInterruptedError(
        f"Jockey sent an unreadable event ({type(exc).__name__}): {preview!r}",
        body=preview,
        retryable=False,
    )


def unexpected_body(response: httpx.Response, head: bytes, wanted: str) -> JockeyError:
    """The error for a 2xx answer whose body is not `wanted` (SSE or JSON)."""
    preview = head[:200].decode("utf-8", "replace")
    return JockeyServerError(
        f"Jockey answered {response.status_code} with content type "
        f"{response.headers.get('content-type')!r}, not {wanted}: {preview!r}",
        status_code=response.status_code,
        body=preview,
        response=_detached(response, head[:200]),
        retryable=False,
    )
