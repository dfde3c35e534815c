"""Server-Sent Events framing, without I/O: bytes in, event data out.

Follows the WHATWG "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream):

- lines end in CRLF, LF or CR, and nothing else. Lines are split on bytes, not
  text, so a Unicode line separator (U+2028, U+0085) inside JSON never splits an
  event, and a UTF-8 character split across network reads is never cut;
- a line starting with `:` is a comment;
- `data:` with or without one following space; several `data` lines join with LF;
- any other field (`event`, `id`, `retry`, unknown) is ignored: Jockey repeats
  the event name as the JSON `type` (PROTOCOL.md §8.1), which is what we read;
- a blank line dispatches the event; a leading BOM is dropped.

At the end of the body, an event that was never terminated by a blank line is
returned by `flush()` so that a last `data: [DONE]` without its blank line still
counts; the caller decides what an unparseable tail means (a truncated body).
"""

from __future__ import annotations

__all__ = ["SSEDecoder"]

_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Incremental SSE decoder: `feed()` bytes, get the data of complete events."""

    __slots__ = ("_data", "_pending", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._pending = b""  # an unterminated line
        self._data: list[bytes] = []  # data lines of the event being read
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is its pair
        self._started = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume `chunk`; return the data of every event it completed."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            chunk = chunk.removeprefix(b"\n")
        buf = self._pending + chunk if self._pending else chunk
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._pending = buf
                return []
            self._started = True
            buf = buf.removeprefix(_BOM)
        if b"\r" in buf:
            # A CR ends a line at once; if it is the first half of a CRLF split
            # across reads, the LF that starts the next read is dropped.
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop()
        return self._lines(lines)

    def flush(self) -> list[bytes]:
        """End of body: return the data of an event left unterminated, if any."""
        tail = self._pending
        self._pending = b""
        out = self._lines([tail, b""] if tail else [b""])
        self._data = []
        return out

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    if payload:  # an event with empty data is not dispatched
                        out.append(payload)
                    data = self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line == b"data":
                data.append(b"")
            # Comments (":…") and other fields are ignored.
        return out
