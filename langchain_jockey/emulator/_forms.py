"""Reading a multipart/form-data body (RFC 7578) as it arrives, never whole.

`POST /v1.3/assets` carries a video of up to 200 MB. `FormParser` is fed the body
in chunks of any size (down to one byte) and keeps, of a file part, only its
size, its first `head_bytes` and last `tail_bytes` bytes and the SHA-256 of all
of it; the rest streams on to a sink (a file) when one is given, else is
discarded. Between chunks it holds at most the bytes that could
still be the start of a delimiter, so memory is bounded whatever the part sizes,
and each byte is searched a bounded number of times, so time is linear.

What it accepts:

- the boundary is the `boundary` parameter of the Content-Type, quoted or not,
  1 to 70 characters of RFC 2046's alphabet; the first delimiter may open the
  body without the CRLF before it; the preamble and the epilogue are ignored;
- a part needs `Content-Disposition: form-data; name="..."`. Quoted strings may
  escape a quote or a backslash with a backslash (other backslashes are kept,
  as in Windows paths); `filename*=UTF-8''...` (RFC 5987) wins over `filename`;
- a part with a `filename` (or `filename*`) parameter is a file; an empty file
  name is `None`, any other is kept as sent (the caller strips paths);
- a later part replaces an earlier one with the same name, field or file;
- a boundary line may end in spaces or tabs before its CRLF (RFC 2046's
  transport padding); a delimiter followed by anything else is an error, as
  RFC 2046 forbids the boundary inside a part.

Every malformed body is an `ApiError` 400 `parameter_invalid` whose message says
what was wrong. After an error the parser raises that error again.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from langchain_jockey.emulator._requests import ApiError

__all__ = ["MAX_HEADER_BLOCK", "FilePart", "Form", "FormParser", "Sink"]

MAX_HEADER_BLOCK = 16 * 1024
"""The largest header block a part may have, in bytes."""

_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_NAME_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(
    rf'\s*;\s*(?:({_NAME_CHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^";\s]*)\s*)?', re.DOTALL
)
_ESCAPE = re.compile(r'\\([\\"])')
_EXTENDED = frozenset({"utf-8", "iso-8859-1"})
_MAX_PADDING = 1024  # white space a boundary line may end in
_PREAMBLE, _BODY, _DELIMITED, _HEADERS, _DONE = range(5)


@dataclass(frozen=True)
class FilePart:
    """What is kept of a file part: never its content, only a digest of it.

    Attributes:
        filename: The file name as sent, or `None` when it was empty.
        content_type: The part's Content-Type as sent, or `None` without one.
        size: The content's length in bytes.
        head: The first `head_bytes` bytes of the content (all of a shorter one).
        sha256: The hex SHA-256 of the whole content.
        tail: The last `tail_bytes` bytes of the content (all of a shorter one).
    """

    filename: str | None
    content_type: str | None
    size: int
    head: bytes
    sha256: str
    tail: bytes = b""


class Sink(Protocol):
    """Where a file part's content goes as it arrives."""

    def write(self, data: bytes | bytearray) -> None:
        """Take the next bytes of the content."""


@dataclass(frozen=True)
class Form:
    """A parsed form.

    Attributes:
        fields: The values of the parts without a file name, decoded as UTF-8.
        files: The file parts, by field name.
    """

    fields: dict[str, str]
    files: dict[str, FilePart]


def _bad(message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message)


def _params(value: str, what: str) -> tuple[str, dict[str, str]]:
    """Split a header value into its lower-cased first token and its parameters.

    Parameter names are lower-cased; a quoted value is unescaped; a later
    parameter replaces an earlier one of the same name.
    """
    head, _, _ = value.partition(";")
    params: dict[str, str] = {}
    pos = len(head)
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None:
            raise _bad(f"The {what} header cannot be read: {value!r}.")
        name, raw = match.group(1, 2)
        if name is not None:
            quoted = raw.startswith('"')
            params[name.lower()] = _ESCAPE.sub(r"\1", raw[1:-1]) if quoted else raw
        pos = match.end()
    return head.strip().lower(), params


def _extended(value: str) -> str:
    """Decode an RFC 5987 value, `charset'language'percent-encoded`."""
    charset, _, rest = value.partition("'")
    _, sep, encoded = rest.partition("'")
    if not sep or charset.lower() not in _EXTENDED:
        raise _bad(f"The part's filename* is not UTF-8'' or ISO-8859-1'': {value!r}.")
    try:
        return unquote(encoded, encoding=charset.lower(), errors="strict")
    except UnicodeDecodeError:
        raise _bad(f"The part's filename* is not {charset}: {value!r}.") from None


def _boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type, checked."""
    if not content_type.strip():
        raise _bad(
            "The request has no Content-Type: a multipart/form-data body needs "
            "one with its boundary."
        )
    kind, params = _params(content_type, "Content-Type")
    if kind != "multipart/form-data":
        raise _bad(
            f"The request body must be multipart/form-data, not {content_type!r}."
        )
    boundary = params.get("boundary")
    if boundary is None:
        raise _bad(f"The Content-Type {content_type!r} has no boundary parameter.")
    if not _BOUNDARY.fullmatch(boundary):
        raise _bad(
            f"The multipart boundary {boundary!r} is not 1 to 70 characters of "
            "letters, digits and '()+_,-./:=? (RFC 2046)."
        )
    return boundary.encode("ascii")


def _headers(block: bytes) -> dict[str, str]:
    """A part's header block (without its final blank line) as lower-cased names."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("A part's headers are not UTF-8.") from None
    headers: dict[str, str] = {}
    last = ""
    for line in text.split("\r\n"):
        if line[:1] in {" ", "\t"} and last:  # an obsolete folded line
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _bad(f"A part's header line is not 'Name: value': {line[:80]!r}.")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


class _Field:
    """A field's value as it arrives, to `limit` bytes."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.value = bytearray()

    def write(self, data: bytes | bytearray) -> None:
        if len(self.value) + len(data) > self.limit:
            raise _bad(f"The form field {self.name!r} is over {self.limit} bytes.")
        self.value += data

    def text(self) -> str:
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(f"The form field {self.name!r} is not UTF-8.") from None


class _File:
    """A file part as it arrives: its size, head, tail and running digest."""

    def __init__(  # noqa: PLR0917 - what one part needs
        self,
        name: str,
        filename: str | None,
        content_type: str | None,
        head: int,
        tail: int,
        sink: Sink | None,
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.head_bytes = head
        self.head = bytearray()
        self.tail_bytes = tail
        self.tail: deque[bytes | bytearray] = deque()  # whole chunks, the last first
        self.held = 0  # bytes in `tail`
        self.size = 0
        self.digest = hashlib.sha256()
        self.sink = sink

    def write(self, data: bytes | bytearray) -> None:
        if self.sink is not None:
            self.sink.write(data)
        self.size += len(data)
        self.digest.update(data)
        if len(self.head) < self.head_bytes:
            self.head += data[: self.head_bytes - len(self.head)]
        if self.tail_bytes and data:
            self.tail.append(data)
            self.held += len(data)
            while self.held - len(self.tail[0]) >= self.tail_bytes:
                self.held -= len(self.tail.popleft())

    def part(self) -> FilePart:
        tail = b"".join(self.tail)
        return FilePart(
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
            head=bytes(self.head),
            sha256=self.digest.hexdigest(),
            tail=tail[len(tail) - min(len(tail), self.tail_bytes) :],
        )


class FormParser:
    """An incremental multipart/form-data parser: `feed` the body, then `close`.

    Example:
        ```python
        parser = FormParser(request_content_type)
        for chunk in body_chunks:
            parser.feed(chunk)
        form = parser.close()
        ```

    Args:
        content_type: The request's Content-Type header, with the boundary.
        head_bytes: How many leading bytes of each file part to keep.
        tail_bytes: How many trailing bytes of each file part to keep.
        sinks: Called with a file part's field name as the part begins: where
            its content goes (`None`: nowhere).
        field_limit: The largest value a non-file field may have, in bytes.
        max_parts: The most parts a form may have.

    Raises:
        ApiError: 400 when the content type is not multipart/form-data or its
            boundary is missing or invalid.
    """

    def __init__(
        self,
        content_type: str,
        *,
        head_bytes: int = 65536,
        tail_bytes: int = 0,
        sinks: Callable[[str], Sink | None] | None = None,
        field_limit: int = 65536,
        max_parts: int = 32,
    ) -> None:
        self._delimiter = b"\r\n--" + _boundary(content_type)
        self._head_bytes = head_bytes
        self._tail_bytes = tail_bytes
        self._sinks = sinks
        self._field_limit = field_limit
        self._max_parts = max_parts
        self._buffer = bytearray(b"\r\n")  # so that a leading delimiter has its CRLF
        self._state = _PREAMBLE
        self._searched = 0  # where the search for the end of headers resumes
        self._part: _Field | _File | None = None
        self._parts = 0
        self._fields: dict[str, str] = {}
        self._files: dict[str, FilePart] = {}
        self._error: ApiError | None = None

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the body, of any size.

        Raises:
            ApiError: 400 as soon as the body is known to be malformed, and again
                on every later call.
        """
        if self._error is not None:
            raise self._error
        if self._state == _DONE:
            return  # the epilogue
        self._buffer += data
        try:
            while self._step():
                pass
        except ApiError as error:
            self._error = error
            self._buffer = bytearray()
            self._part = None
            raise

    def close(self) -> Form:
        """End the body and return the form.

        Returns:
            The fields and file parts; a later part replaced an earlier one of the
            same name.

        Raises:
            ApiError: 400 when the closing delimiter has not arrived, or the body
                was malformed.
        """
        if self._error is not None:
            raise self._error
        if self._state != _DONE:
            self._error = _bad("The form ended before its closing boundary.")
            raise self._error
        return Form(fields=dict(self._fields), files=dict(self._files))

    def _step(self) -> bool:
        """Advance as far as the buffer allows; whether to step again."""
        if self._state in {_PREAMBLE, _BODY}:
            return self._content()
        if self._state == _DELIMITED:
            return self._after_delimiter()
        if self._state == _HEADERS:
            return self._header_block()
        self._buffer.clear()  # _DONE: the epilogue
        return False

    def _content(self) -> bool:
        """Pass content to the part until a delimiter; keep a delimiter's tail."""
        buffer, delimiter = self._buffer, self._delimiter
        at = buffer.find(delimiter)  # the buffer holds under len(delimiter) old bytes
        end = len(buffer) - len(delimiter) + 1 if at < 0 else at
        if end > 0 and self._part is not None:
            self._part.write(buffer[:end])
        if at < 0:
            if end > 0:
                del buffer[:end]
            return False
        del buffer[: at + len(delimiter)]
        self._end_part()
        self._state = _DELIMITED
        return True

    def _after_delimiter(self) -> bool:
        """Read what ends a boundary line: `--` (the last) or padding and CRLF."""
        buffer = self._buffer
        if buffer[:2] == b"--":
            self._state = _DONE
            buffer.clear()
            return False
        rest = buffer.lstrip(b" \t")
        if len(buffer) - len(rest) > _MAX_PADDING:
            raise _bad("A boundary line is followed by too much white space.")
        if rest[:2] == b"\r\n":
            del buffer[: len(buffer) - len(rest) + 2]
            self._parts += 1
            if self._parts > self._max_parts:
                raise _bad(f"The form has more than {self._max_parts} parts.")
            self._state = _HEADERS
            return True
        if not rest or rest == b"\r" or buffer == b"-":
            return False  # more to come
        raise _bad(
            "A boundary line ends with something other than CRLF or '--': the "
            "boundary appears inside a part."
        )

    def _header_block(self) -> bool:
        """Read a part's headers up to the blank line, within MAX_HEADER_BLOCK."""
        buffer = self._buffer
        if buffer[:2] == b"\r\n":
            raise _bad("A part has no headers: Content-Disposition is required.")
        end = buffer.find(b"\r\n\r\n", self._searched)
        if end < 0:
            if len(buffer) > MAX_HEADER_BLOCK + 3:
                raise _bad(f"A part's headers are over {MAX_HEADER_BLOCK} bytes.")
            self._searched = max(0, len(buffer) - 3)
            return False
        if end > MAX_HEADER_BLOCK:
            raise _bad(f"A part's headers are over {MAX_HEADER_BLOCK} bytes.")
        block = bytes(buffer[:end])
        del buffer[: end + 4]
        self._searched = 0
        self._part = self._start_part(_headers(block))
        self._state = _BODY
        return True

    def _start_part(self, headers: dict[str, str]) -> _Field | _File:
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise _bad("A part has no Content-Disposition header.")
        kind, params = _params(disposition, "Content-Disposition")
        if kind != "form-data":
            raise _bad(f"A part's Content-Disposition is not form-data: {kind!r}.")
        name = params.get("name")
        if name is None:
            raise _bad("A part's Content-Disposition has no name.")
        if "filename*" in params:
            filename: str | None = _extended(params["filename*"])
        elif "filename" in params:
            filename = params["filename"]
        else:
            return _Field(name, self._field_limit)
        content_type = headers.get("content-type")
        sink = self._sinks(name) if self._sinks is not None else None
        return _File(
            name,
            filename or None,
            content_type,
            self._head_bytes,
            self._tail_bytes,
            sink,
        )

    def _end_part(self) -> None:
        part, self._part = self._part, None
        if isinstance(part, _Field):
            self._files.pop(part.name, None)
            self._fields[part.name] = part.text()
        elif isinstance(part, _File):
            self._fields.pop(part.name, None)
            self._files[part.name] = part.part()
