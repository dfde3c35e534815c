"""Errors raised by `langchain_jockey`.

Every error is a `JockeyError` and also the matching
`langchain_core.exceptions.Model*Error`, so callers can catch either and
LangChain's retry helpers can read `is_retryable`::

    JockeyError (ModelError)
    ├── JockeyInputError              bad input, before any request  ValueError
    ├── JockeyIngestError             KnowledgeStore.add: sources failed
    ├── JockeyBadRequestError         400, 422, other 4xx   ModelInvalidRequestError
    ├── JockeyAuthenticationError     401                   ModelAuthenticationError
    ├── JockeyPermissionDeniedError   403                   ModelPermissionDeniedError
    ├── JockeyNotFoundError           404                   ModelNotFoundError
    ├── JockeyRateLimitError          429                   ModelRateLimitError
    ├── JockeyServerError             5xx, response.failed  ModelAPIError
    ├── JockeyConnectionError         connect / network     ModelConnectionError
    │   └── JockeyStreamInterruptedError  stream ended early or unreadable
    └── JockeyTimeoutError            read / connect / idle ModelTimeoutError

Each error is built where its cause is known: `_failures` for an HTTP status,
a refused body or a transport failure, `_sse` for an event that cannot be read
or a limit, `_events` for a failed response. Where a server's error is read
(`_failures`, `_events`), `error_class` and `error_fields` from here map its
code or status to a class and read its fields. An error raised while a stream
was read gets what had arrived (`partial_text`, `session_id`) once, from the
reducer.
"""

from __future__ import annotations

import sys
import warnings
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
    "JockeyIngestError",
    "JockeyInputError",
    "JockeyNotFoundError",
    "JockeyPermissionDeniedError",
    "JockeyRateLimitError",
    "JockeyServerError",
    "JockeyStreamInterruptedError",
    "JockeyTimeoutError",
]

# A plan cap "will not clear for hours" (docs/protocol.md): retrying is pointless.
NOT_RETRYABLE_CODES = frozenset({"plan_limit_exceeded"})


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
        elif code in NOT_RETRYABLE_CODES:
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


class JockeyIngestError(JockeyError):
    """Some sources of `KnowledgeStore.add` failed; the others finished.

    Attributes:
        results: Every source's `AddResult`, in order, the good ones too.
    """

    results: list[Any]
    SHOWN = 20
    """Failed sources the message names."""

    @classmethod
    def of(cls, results: list[Any]) -> JockeyIngestError:
        """The error for `results`, naming the first failed sources and why.

        The message names `SHOWN` of them, then says how many more: it stays
        short however many failed (`failures` has them all).
        """
        failed = [r for r in results if not r.ok]
        lines = [f"- {r.source}: {r.error}" for r in failed[: cls.SHOWN]]
        if len(failed) > cls.SHOWN:
            lines.append(f"…and {len(failed) - cls.SHOWN:,} more")
        err = cls(
            f"{len(failed):,} of {len(results):,} source(s) failed:\n"
            + "\n".join(lines),
            retryable=False,
        )
        err.results = results
        return err

    @property
    def failures(self) -> list[Any]:
        """The results that failed."""
        return [r for r in self.results if not r.ok]


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


def error_class(status: int | None, code: str | None) -> type[JockeyError]:
    """The class for an HTTP `status` and the server's error `code`.

    A `status` of `None` is an error inside a 200 stream, classified by its
    code alone; a response's error is classified by its status, made precise
    by the code when the status says only "bad request".
    """
    by_code = _CODE_CLASSES.get(code or "")
    if status is None:
        return by_code or JockeyServerError
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        # 3xx: redirects are never followed, so one is an error of its own.
        cls = JockeyBadRequestError if status < 500 else JockeyServerError
        cls = JockeyError if status < 400 else cls
    return by_code if by_code and cls is JockeyBadRequestError else cls


def error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """Code, message and docs URL from a flat or a nested (`{"error": …}`) body."""
    if not isinstance(body, dict):
        return None, None, None
    nested = body.get("error")
    if isinstance(nested, dict):
        # Open Responses / OpenAI style: {"error": {"type", "code", "message"}}.
        code, message, docs_url = error_fields(
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


_SKIP = frozenset({"langchain_jockey", "langchain_core", "langchain", "langgraph"})


def warn(message: str) -> None:
    """A `UserWarning` naming the first line outside LangChain and this package.

    Shown once per calling line (under `ainvoke`, LangChain's own task hides it).
    """
    frame, level = sys._getframe(1), 2  # noqa: SLF001 - the stack, as warnings reads it
    while frame.f_back and frame.f_globals.get("__name__", "").split(".")[0] in _SKIP:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)
