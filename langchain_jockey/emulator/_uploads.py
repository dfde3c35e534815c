"""Request bodies of uploads: streamed through, to disk or nowhere, never held.

`FormBody` feeds a direct upload (`POST /assets`, multipart/form-data) to the
incremental form parser, which keeps the file's size, first and last bytes
and, with a data directory, writes the file to a `Spool`. `PartBody` takes one
part of a multipart upload (`PUT` to a part URL): its size, MD5 (the ETag, as
S3 computes it for a single PUT), for the first part its first bytes, and
either writes it in place in its asset's file (with a data directory) or keeps
what of it lies in the file's tail. Both are closed once their request is
answered, or failed: `close` frees what the request did not keep.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import IO

from langchain_jockey._media import SNIFF_BYTES
from langchain_jockey.emulator._assets import TAIL_BYTES, Upload
from langchain_jockey.emulator._forms import FormParser, Sink
from langchain_jockey.emulator._persist import Spool
from langchain_jockey.emulator._requests import ApiError
from langchain_jockey.emulator._responses import rfc3339

__all__ = ["UPLOAD_SECONDS_PER_MB", "FormBody", "PartBody"]

UPLOAD_SECONDS_PER_MB = 1.0
"""An upload may take `request_timeout` plus this per MB it declares: a
200 MB direct upload has 210 s by default, not 10."""


@dataclass
class FormBody:
    """A `POST /assets` body, parsed as it arrives.

    With a `spool`, the content of the part named `file` is written to it.
    """

    limit: int
    parser: FormParser = field(init=False)
    content_type: str = ""
    tail_bytes: int = 0
    spool: Spool | None = None
    seconds_per_mb: float = UPLOAD_SECONDS_PER_MB

    def __post_init__(self) -> None:
        self.parser = FormParser(
            self.content_type, tail_bytes=self.tail_bytes, sinks=self._sink
        )

    def _sink(self, name: str) -> Sink | None:
        if name != "file" or self.spool is None:
            return None
        self.spool.restart()  # a later part of the same name replaces the first
        return self.spool

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the form."""
        self.parser.feed(data)

    def close(self) -> None:
        """Delete the spooled file unless an asset kept it."""
        if self.spool is not None:
            self.spool.close()


@dataclass
class PartBody:
    """One part of a multipart upload.

    With `out` (the asset's file, open at the part's offset), the part is
    written there as it arrives.
    """

    limit: int
    upload: Upload
    index: int
    out: IO[bytes] | None = None
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    tail: list[tuple[int, bytes | bytearray]] = field(default_factory=list)
    digest: hashlib._Hash = field(
        default_factory=lambda: hashlib.md5(usedforsecurity=False)
    )
    seconds_per_mb: float = UPLOAD_SECONDS_PER_MB

    @property
    def offset(self) -> int:
        """Where the part starts in the file."""
        return (self.index - 1) * self.upload.chunk_size

    def feed(self, data: bytes) -> None:
        """Count, hash, and write or keep what is needed of the next bytes."""
        at = self.offset + self.size
        self.size += len(data)
        self.digest.update(data)
        if self.index == 1 and len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        if self.out is not None:
            self.out.write(data)
        elif at + len(data) > self.upload.total_size - TAIL_BYTES:
            self.tail.append((at, data))  # kept by `store`: the part may be bad

    def store(self) -> str:
        """Record the part on its upload; its ETag.

        Raises:
            ApiError: 400 when the part is not the size the upload cut it to.
        """
        want = self.upload.part_size(self.index)
        if self.size != want:
            msg = f"Part {self.index} must be {want:,} bytes, not {self.size:,}."
            raise ApiError(400, "parameter_invalid", msg)
        etag = self.digest.hexdigest()
        self.upload.received[self.index] = (self.size, etag, rfc3339())
        if self.index == 1:
            self.upload.asset.head = bytes(self.head)
        for at, data in self.tail:
            self.upload.keep_tail(at, data)
        return etag

    def close(self) -> None:
        """Close the asset's file."""
        if self.out is not None:
            self.out.close()
