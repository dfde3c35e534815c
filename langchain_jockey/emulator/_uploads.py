"""Request bodies of uploads: streamed through, never kept.

`FormBody` feeds a direct upload (`POST /assets`, multipart/form-data) to the
incremental form parser, which keeps the file's size and first bytes.
`PartBody` takes one part of a multipart upload (`PUT` to a part URL): its
size, MD5 (the ETag, as S3 computes it for a single PUT) and, for the first
part, its first bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from langchain_jockey._media import SNIFF_BYTES
from langchain_jockey.emulator._assets import Upload
from langchain_jockey.emulator._forms import FormParser
from langchain_jockey.emulator._requests import ApiError
from langchain_jockey.emulator._responses import rfc3339

__all__ = ["UPLOAD_SECONDS_PER_MB", "FormBody", "PartBody"]

UPLOAD_SECONDS_PER_MB = 1.0
"""An upload may take `request_timeout` plus this per MB it declares: a
200 MB direct upload has 210 s by default, not 10."""


@dataclass
class FormBody:
    """A `POST /assets` body, parsed as it arrives."""

    limit: int
    parser: FormParser
    seconds_per_mb: float = UPLOAD_SECONDS_PER_MB

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the form."""
        self.parser.feed(data)


@dataclass
class PartBody:
    """One part of a multipart upload."""

    limit: int
    upload: Upload
    index: int
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    digest: hashlib._Hash = field(
        default_factory=lambda: hashlib.md5(usedforsecurity=False)
    )
    seconds_per_mb: float = UPLOAD_SECONDS_PER_MB

    def feed(self, data: bytes) -> None:
        """Count, hash and (first part) keep the head of the next bytes."""
        self.size += len(data)
        self.digest.update(data)
        if self.index == 1 and len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]

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
        return etag
