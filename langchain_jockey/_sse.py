"""A streamed answer's bytes -> its events, without I/O: SSE framing and limits.

`SSEDecoder` frames Server-Sent Events by the WHATWG "event stream
interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream):

- lines end in CRLF, LF or CR, and nothing else. Lines are split on bytes, not
  text, so a Unicode line separator (U+2028, U+0085) inside JSON never splits an
  event, and a UTF-8 character split across network reads is never cut;
- a line starting with `:` is a comment;
- `data:` with or without one following space; several `data` lines join with LF;
- any other field (`event`, `id`, `retry`, unknown) is ignored: Jockey repeats
  the event name as the JSON `type` (docs/protocol.md), which is what we read;
- a blank line dispatches the event; a leading BOM is dropped.

Decoding is linear: each byte is scanned once, and an unfinished line is kept
as a list of pieces, never re-joined until it ends. A line or an event larger
than `max_event_bytes` raises `EventTooLarge` as soon as it is, so an endless
line costs at most that much memory. At the end of the body, an event that was
never terminated by a blank line is returned by `flush()`, so that a last
`data: [DONE]` without its blank line still counts.

`StreamReader` is fed one network read at a time by the loops in `_http.py`
(which only read and await): it parses each event, knows when the events are
complete (`[DONE]` or a terminal event) and keeps the clocks (no complete event
for the read timeout; no progress for `stream_idle_timeout`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_jockey import errors

__all__ = ["EventTooLarge", "Limits", "SSEDecoder", "StreamReader"]

_BOM = b"\xef\xbb\xbf"


class EventTooLarge(ValueError):  # noqa: N818 - the name says what happened
    """A line or an event grew past the decoder's limit."""

    def __init__(self, limit: int, completed: list[bytes]) -> None:
        super().__init__(f"an event stream line or event exceeded {limit:,} bytes")
        self.limit = limit
        self.completed = completed
        """The data of the events completed before the limit was passed."""


class SSEDecoder:
    """Incremental SSE decoder: `feed()` bytes, get the data of complete events."""

    __slots__ = (
        "_data",
        "_data_size",
        "_head",
        "_limit",
        "_pending",
        "_size",
        "_skip_lf",
    )

    def __init__(self, max_event_bytes: int = 8 * 1024 * 1024) -> None:
        self._limit = max_event_bytes
        self._head = b""  # the first bytes, while they may still be a BOM
        self._pending: list[bytes] | None = None  # None until the BOM is settled
        self._size = 0  # bytes in `_pending`
        self._data: list[bytes] = []  # data lines of the event being read
        self._data_size = 0
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is its pair

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume `chunk`; return the data of every event it completed."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            chunk = chunk.removeprefix(b"\n")
        if self._pending is None:  # the first bytes: drop a BOM
            chunk, self._head = self._head + chunk, b""
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk  # too short to tell yet
                return []
            chunk = chunk.removeprefix(_BOM)
            self._pending = []
        if b"\r" in chunk:
            # A CR ends a line at once; if it is the first half of a CRLF split
            # across reads, the LF that starts the next read is dropped.
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if lines and self._pending:
            lines[0] = b"".join((*self._pending, lines[0]))
            self._pending, self._size = [], 0
        out = self._lines(lines)
        self._keep(tail, out)
        return out

    def flush(self) -> list[bytes]:
        """End of body: return the data of an event left unterminated, if any."""
        tail = b"".join(self._pending) if self._pending is not None else self._head
        self._pending, self._size = [], 0
        out = self._lines([tail, b""] if tail else [b""])
        self._data, self._data_size = [], 0
        return out

    def _keep(self, piece: bytes, out: list[bytes]) -> None:
        if piece:
            self._size += len(piece)
            if self._size > self._limit:
                raise EventTooLarge(self._limit, out)
            assert self._pending is not None  # noqa: S101 - set by feed()
            self._pending.append(piece)

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    data = self._data
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    if payload:  # an event with empty data is not dispatched
                        out.append(payload)
                    self._data, self._data_size = [], 0
            elif line.startswith(b"data:"):
                value = line[5:]
                value = value[1:] if value.startswith(b" ") else value
                self._data_size += len(value) + 1
                if self._data_size > self._limit:
                    raise EventTooLarge(self._limit, out)
                self._data.append(value)
            elif line == b"data":
                self._data.append(b"")
            elif len(line) > self._limit:  # a comment or other field, all at once
                raise EventTooLarge(self._limit, out)
            # Comments (":…") and other fields are ignored.
        return out


_DONE = b"[DONE]"
# Events that show the answer moving. Keepalives, status snapshots and unknown
# types are not progress (see `Limits.idle`).
_PROGRESS_PREFIXES = ("response.output", "response.content_part", "response.reasoning")
_TERMINAL = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)


@dataclass(frozen=True)
class Limits:
    """What a stream may do before it is abandoned.

    Attributes:
        max_event_bytes: The largest SSE line or event, in bytes.
        event_timeout: Seconds between complete events (a keepalive counts):
            bytes that never complete an event do not keep a stream alive.
        idle: Seconds without progress (answer text, Jockey's steps, the
            terminal event); keepalives, comments, status snapshots and
            unknown events are not progress. `None`: no limit.
        max_events: The most events one answer may send, keepalives included.
    """

    max_event_bytes: int = 8 * 1024 * 1024
    event_timeout: float | None = 60.0
    idle: float | None = 600.0
    max_events: int = 50_000


def _malformed(data: bytes, exc: BaseException) -> errors.JockeyError:
    preview = data[:200].decode("utf-8", "replace")
    return errors.JockeyStreamInterruptedError(
        f"Jockey sent an unreadable event ({type(exc).__name__}): {preview!r}",
        body=preview,
        retryable=False,
    )


def _parse(data: bytes) -> dict[str, Any] | None:
    """An event's data -> its dict; `None` for `[DONE]`."""
    if data == _DONE:
        return None
    try:
        event = json.loads(data)
    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise _malformed(data, exc) from None
    if not isinstance(event, dict):
        raise _malformed(data, TypeError("not a JSON object"))
    return event


class StreamReader:
    """What a streamed body means, fed one network read at a time. No I/O.

    Attributes:
        done: `[DONE]` or a terminal event arrived: the events are complete.
    """

    def __init__(
        self, limits: Limits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Read a body under `limits`; `clock` is injectable for tests."""
        self._limits = limits
        self._clock = clock
        self._decoder = SSEDecoder(limits.max_event_bytes)
        self._last_event = self._last_progress = clock()
        self._events = 0
        self.done = False

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        """The events `chunk` completed, one by one.

        Raises a typed error past a limit or at an unreadable event, after
        the events that came before it.
        """
        too_large = None
        try:
            datas = self._decoder.feed(chunk)
        except EventTooLarge as exc:
            datas, too_large = exc.completed, exc.limit
        now = self._clock()
        for data in datas:
            self._events += 1
            if self._events > self._limits.max_events:
                msg = (
                    f"Jockey sent over {self._limits.max_events:,} events for one "
                    "answer (max_answer_events): the stream was closed."
                )
                raise errors.JockeyStreamInterruptedError(msg, retryable=False)
            event = _parse(data)
            if event is None:
                self.done = True
                return
            self._last_event = now
            kind = event.get("type")
            if not isinstance(kind, str) or kind.startswith(_PROGRESS_PREFIXES):
                self._last_progress = now
            yield event
            if isinstance(kind, str) and kind in _TERMINAL:  # a list is unhashable
                self.done = True
                return
        if too_large is not None:
            msg = (
                f"Jockey sent a line or an event of over {too_large:,} bytes "
                "(max_event_bytes): the stream was closed."
            )
            raise errors.JockeyStreamInterruptedError(msg, retryable=False)
        self._check(now)

    def end(self) -> list[dict[str, Any]]:
        """The body ended: the events left unterminated, if they parse.

        One that does not parse is a truncated body, which the reducer reports
        as an interrupted stream, so it is dropped here.
        """
        out: list[dict[str, Any]] = []
        for data in self._decoder.flush():
            try:
                event = _parse(data)
            except errors.JockeyError:
                break
            if event is None:
                break
            out.append(event)
        return out

    def _check(self, now: float) -> None:
        limits = self._limits
        if limits.event_timeout is not None and (
            now - self._last_event > limits.event_timeout
        ):
            msg = (
                f"Jockey sent no complete event for {limits.event_timeout:g} s (the "
                "read timeout): bytes that never finish an event are not an answer."
            )
            raise errors.JockeyTimeoutError(msg, retryable=False)
        if limits.idle is not None and now - self._last_progress > limits.idle:
            msg = (
                f"Jockey made no progress for more than {limits.idle:g} s "
                "(stream_idle_timeout): only keepalives, comments or status "
                "events arrived."
            )
            raise errors.JockeyTimeoutError(msg, retryable=False)
