"""What a failed request means, without I/O: its typed error, and whether to retry.

- `error_from_response`: the error of a non-2xx response, from its status and
  the first bytes of its body (`parse_retry_after` reads how long to wait);
  `refused`: the error of a 2xx that is not what was asked for.
- `error_from_transport`: the error of an httpx transport failure, naming the
  limit that fired, or the host and port that could not be reached and why.
- The copies of a request and a response that an error keeps (`redacted`,
  `detached`) carry no key; `server_text` is any text a server sent, as it
  may be kept or shown (the key redacted, capped).
- `RetryPolicy`: which failures are retried, and after how long.

`_http` sends the requests and calls these where the failures happen.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import logging
import os
import random
import re
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from langchain_jockey import errors

__all__ = [
    "MAX_ERROR_BODY",
    "RetryPolicy",
    "detached",
    "encoding",
    "error_from_response",
    "error_from_transport",
    "failure",
    "is_loopback",
    "parse_retry_after",
    "redacted",
    "refused",
    "server_text",
    "unwanted",
]

logger = logging.getLogger("langchain_jockey")

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


def redacted(request: httpx.Request) -> httpx.Request:
    """A copy of `request` (method, URL, headers) with `x-api-key` redacted."""
    headers = httpx.Headers(request.headers)
    if "x-api-key" in headers:
        headers["x-api-key"] = "[redacted]"
    return httpx.Request(request.method, request.url, headers=headers)


def detached(response: httpx.Response, body: bytes) -> httpx.Response:
    """A copy of `response` to keep on an error: only `body`, the key redacted.

    `body` is raw bytes as they came, so the copy declares no encoding (a
    gzip header on plain bytes would fail to decode when read).
    """
    headers = httpx.Headers(response.headers)
    for name in ("content-encoding", "content-length", "transfer-encoding"):
        headers.pop(name, None)
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=redacted(response.request),
    )


def encoding(response: httpx.Response) -> str:
    """The response's `content-encoding` (`identity` when none is given)."""
    coding = str(response.headers.get("content-encoding", "")).strip().lower()
    return coding or "identity"  # an empty header lists no encoding


def _content_type(response: httpx.Response, wanted: str) -> str:
    """The response's media type (none given is taken as `wanted`)."""
    kind = str(response.headers.get("content-type", wanted))
    return kind.split(";", maxsplit=1)[0].strip().lower()


ANY = "*/*"
"""`wanted` for a response whose body is never read (an uploaded part's)."""


def unwanted(response: httpx.Response, wanted: str) -> bool:
    """Whether `response` is not what was asked: not 2xx, compressed, not `wanted`.

    With `wanted=ANY` only the status counts: the body will not be read.
    """
    if wanted == ANY:
        return not response.is_success
    return (
        not response.is_success
        or encoding(response) != "identity"
        or _content_type(response, wanted) != wanted
    )


def failure(response: httpx.Response, head: bytes, wanted: str) -> errors.JockeyError:
    """The error of an `unwanted` response, from the first bytes of its body."""
    if not response.is_success:
        return error_from_response(response, head)
    return refused(response, head, wanted)


def refused(response: httpx.Response, head: bytes, wanted: str) -> errors.JockeyError:
    """The error for a 2xx response that is not `wanted`, or is compressed."""
    coding = encoding(response)
    if coding != "identity":
        msg = (
            f"Jockey sent a body encoded as {coding!r}, though identity was asked "
            "for: it is not read (a compressed body could inflate past "
            "any limit)."
        )
        return errors.JockeyStreamInterruptedError(
            msg, response=detached(response, b""), retryable=False
        )
    preview = head[:200].decode("utf-8", "replace")
    return errors.JockeyServerError(
        f"Jockey answered {response.status_code} with content type "
        f"{response.headers.get('content-type')!r}, not {wanted}: {preview!r}",
        status_code=response.status_code,
        body=preview,
        response=detached(response, head[:200]),
        retryable=False,
    )


def server_text(text: str, secret: str | None) -> str:
    """A server's text as it may be kept or shown: `secret` redacted, then capped.

    Redacted first, so the cap never leaves a piece of the key behind; capped
    at `_MAX_MESSAGE` characters, with `…` where it was cut.
    """
    text = text.replace(secret, "[redacted]") if secret else text
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def error_from_response(
    response: httpx.Response, body: bytes | None = None
) -> errors.JockeyError:
    """The error for a non-2xx response, from the first bytes of its body.

    `body` defaults to the content of a response that was read.

    The key (if the server echoed it) is redacted from the message and the
    body, and the response kept on the error carries the key redacted too.
    """
    body = response.content if body is None else body
    if encoding(response) != "identity":
        body = b""  # compressed (against our asking): its bytes are not read
    secret = response.request.headers.get("x-api-key")
    if secret:  # the bytes the error keeps, too
        body = body.replace(secret.encode(), b"[redacted]")
    text = server_text(body.decode("utf-8", "replace"), secret)
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
        server_text(message, secret),
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
        at = f" at {_where(request.url)}{_proxy(request.url)}" if request else ""
        message = (
            f"{type(exc).__name__}: waited {limit} {waited}{at} (the "
            f"{phase or 'request'} timeout). ChatJockey(timeout=...) sets the "
            "longest wait for a connection or between bytes, never the whole "
            "answer, which may take minutes; raise it, or pass an httpx.Timeout to "
            "set each limit."
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


_DNS_FAILURE = re.compile(
    r"name or service not known|nodename nor servname|name resolution|"
    r"getaddrinfo|no address associated",
    re.IGNORECASE,
)


def _where(url: httpx.URL) -> str:
    """`host:port` of `url` (`[::1]:8600` for IPv6), with the scheme's default port."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1 (`[::1]` too)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost
        return False


def _proxy(url: httpx.URL) -> str:
    """` through the proxy in HTTPS_PROXY (host:port)`, if one is set for `url`."""
    for name in (f"{url.scheme}_proxy", "all_proxy"):
        value = os.environ.get(name.upper()) or os.environ.get(name)
        if value and not urllib.request.proxy_bypass(url.host):
            return f" through the proxy in {name.upper()} ({_where(httpx.URL(value))})"
    return ""


def _not_connected(exc: httpx.TransportError, request: httpx.Request | None) -> str:
    """Where a connection failed (host and port, never the key) and the likely cause."""
    detail = str(exc) or type(exc).__name__
    if request is None:
        return f"could not connect to Jockey: {detail}"
    url = request.url
    if isinstance(exc, httpx.ProxyError):
        cause = "the proxy refused the connection: check your proxy settings."
    elif _DNS_FAILURE.search(detail):
        cause = f"the host name {url.host!r} did not resolve: check base_url and DNS."
    elif "ssl" in detail.lower() or "certificate" in detail.lower():
        cause = (
            "the TLS handshake failed: a proxy that intercepts TLS, or an "
            "out-of-date certificate bundle?"
        )
    elif is_loopback(url.host):
        port = _where(url).rsplit(":", 1)[-1]
        cause = (
            "nothing answers there: is the local emulator running? Start it with "
            f"`python -m langchain_jockey.emulator --port {port}`, or check base_url."
        )
    else:
        cause = "check base_url and your network connection."
    return (
        f"could not connect to Jockey at {_where(url)}{_proxy(url)} ({detail}): {cause}"
    )


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
        resend: Whether a request the server may have acted on (a 5xx, a
            connection lost after sending) is sent again. `False` for requests
            that create something: then only a 429 or a failure to connect is
            retried, so a retry never makes a second item.
    """

    max_retries: int = 2
    max_wait: float = 60.0
    backoff: float = 0.5
    backoff_cap: float = 8.0
    resend: bool = True

    def delay(
        self, attempt: int, err: errors.JockeyError, waited: float = 0.0
    ) -> float | None:
        """Seconds to wait after failed attempt `attempt` (0-based); `None`: no retry.

        Retried: HTTP errors and transport failures whose `is_retryable` is
        true (see `errors.JockeyError.is_retryable`).
        """
        if attempt >= self.max_retries or not err.is_retryable:
            return None
        unsent = err.status_code == 429 or isinstance(
            err.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)
        )
        if not (self.resend or unsent):
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
