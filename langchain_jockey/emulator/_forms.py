"""An incremental multipart/form-data parser (RFC 7578) that never keeps a file.

`POST /assets` carries a video of up to 200 MB in a form. The body arrives in
chunks of any size; the parser keeps the fields (small, capped) and, of each
file part, only its size, first `head_bytes` bytes and SHA-256. Between chunks
it holds at most a delimiter's length of unscanned bytes, and scans each byte
a bounded number of times, so memory and time stay linear in nothing but the
parts' headers. A repeated field name keeps its last value.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from langchain_jockey.emulator._requests import ApiError

__all__ = ["FilePart", "Form", "FormParser"]

_MAX_HEADERS = 16 << 10  # one part's header block
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def _bad(message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message)


@dataclass(frozen=True)
class FilePart:
    """A file part: what is kept of it."""

    filename: str | None
    content_type: str | None
    size: int
    head: bytes
    sha256: str


@dataclass(frozen=True)
class Form:
    """A parsed form: text fields, and file parts by field name."""

    fields: dict[str, str]
    files: dict[str, FilePart]


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str | None
    is_file: bool
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


class FormParser:
    """Feed a multipart/form-data body in chunks; `close()` gives the `Form`."""

    def __init__(
        self,
        content_type: str,
        *,
        head_bytes: int = 65536,
        field_limit: int = 65536,
        max_parts: int = 32,
    ) -> None:
        """Read the boundary from `content_type`.

        Raises:
            ApiError: 400 when it is not multipart/form-data with a boundary.
        """
        if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
            sent = content_type[:80] or "none"
            raise _bad(f"The body must be multipart/form-data, not {sent}.")
        match = _BOUNDARY.search(content_type)
        if match is None:
            raise _bad("The multipart/form-data content type has no boundary.")
        boundary = (match[1] or match[2]).encode()
        self._delimiter = b"\r\n--" + boundary
        self._head_bytes, self._field_limit = head_bytes, field_limit
        self._max_parts = max_parts
        self._buffer = b"\r\n"  # so a delimiter at the very start is found too
        self._state = "preamble"  # preamble | headers | body | end
        self._part: _Part | None = None
        self._fields: dict[str, str] = {}
        self._files: dict[str, FilePart] = {}
        self._parts = 0

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the body.

        Raises:
            ApiError: 400 for a malformed form or one over its limits.
        """
        self._buffer += data
        while self._step():
            pass

    def _step(self) -> bool:
        """Consume what the buffer allows; whether to go on."""
        buf = self._buffer
        if self._state in ("preamble", "body"):
            at = buf.find(self._delimiter)
            if at < 0:
                keep = len(self._delimiter) - 1
                if len(buf) > keep:
                    self._data(buf[: len(buf) - keep])
                    self._buffer = buf[len(buf) - keep :]
                return False
            after = at + len(self._delimiter)
            if len(buf) < after + 2:
                self._data(buf[:at])
                self._buffer = buf[at:]
                return False
            self._data(buf[:at])
            self._finish_part()
            if buf[after : after + 2] == b"--":
                self._state, self._buffer = "end", b""
                return False
            self._buffer, self._state = buf[after:], "headers"
            return True
        if self._state == "headers":
            at = buf.find(b"\r\n\r\n")
            if at < 0:
                if len(buf) > _MAX_HEADERS:
                    raise _bad("A form part's headers are over 16 KiB.")
                return False
            self._start_part(buf[:at].decode("utf-8", "replace"))
            self._buffer, self._state = buf[at + 4 :], "body"
            return True
        self._buffer = b""  # the epilogue is ignored
        return False

    def _data(self, data: bytes) -> None:
        part = self._part
        if part is None or not data:
            return
        part.size += len(data)
        if part.is_file:
            part.digest.update(data)
            if len(part.data) < self._head_bytes:
                part.data += data[: self._head_bytes - len(part.data)]
        else:
            if part.size > self._field_limit:
                msg = f"Form field {part.name!r} is over {self._field_limit:,} bytes."
                raise _bad(msg)
            part.data += data

    def _start_part(self, block: str) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise _bad(f"The form has more than {self._max_parts} parts.")
        headers = {}
        for line in block.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise _bad("Each form part needs Content-Disposition: form-data.")
        params = {
            m[1].lower(): re.sub(r"\\(.)", r"\1", m[2]) if m[2] is not None else m[3]
            for m in _PARAM.finditer(disposition)
        }
        if not params.get("name"):
            raise _bad("A form part has no name.")
        filename = params.get("filename")
        self._part = _Part(
            params["name"], filename, headers.get("content-type"), filename is not None
        )

    def _finish_part(self) -> None:
        part, self._part = self._part, None
        if part is None:
            return
        if part.is_file:
            self._files[part.name] = FilePart(
                part.filename,
                part.content_type,
                part.size,
                bytes(part.data),
                part.digest.hexdigest(),
            )
            return
        try:
            self._fields[part.name] = part.data.decode()
        except UnicodeDecodeError:
            raise _bad(f"Form field {part.name!r} is not UTF-8 text.") from None

    def close(self) -> Form:
        """The form, once the body has ended.

        Raises:
            ApiError: 400 when the form ended before its closing boundary.
        """
        if self._state != "end":
            raise _bad("The form ended before its closing boundary.")
        return Form(dict(self._fields), dict(self._files))
