"""Assets and multipart uploads, as the API keeps them (docs/protocol.md).

The emulator keeps what an asset is: its size, its first bytes (enough to
recognise the container by signature), its duration, and for a multipart
upload each part's size and ETag. With a data directory (`_persist.py`) it
keeps the file too, and reads an MP4's duration from it wherever `moov` is.
Without one it keeps no file, so a 10 GB upload costs it kilobytes: the
duration is read from the file's first bytes and its last `TAIL_BYTES` (a
`moov` that ends the file, ffmpeg's default, is found there), which a
multipart upload holds only until its last part is reported.

Processing takes simulated time (`EmulatorConfig.asset_time`); an asset whose
first bytes are no media container, or that is empty, ends `failed` with an
`error.message`. A URL import fetches nothing (the emulator never reaches
beyond loopback): the file name comes from the URL's path, and a path without a
media extension fails processing, as a link to a player page would.
"""

from __future__ import annotations

import base64
import math
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import PurePosixPath
from typing import Any

from langchain_jockey._media import SNIFF_BYTES, VIDEO_EXTENSIONS, sniff
from langchain_jockey.emulator._persist import monotonic, wall
from langchain_jockey.emulator._requests import ApiError, _bad
from langchain_jockey.emulator._responses import new_id, rfc3339

__all__ = [
    "DIRECT_LIMIT",
    "MULTIPART_LIMIT",
    "PART_PATH",
    "TAIL_BYTES",
    "Asset",
    "Upload",
    "in_seconds",
    "not_found",
    "page_of",
    "paging",
]

DIRECT_LIMIT = 200_000_000  # bytes; SDK 1.3.6 assets/client.py (docs/protocol.md)
MULTIPART_LIMIT = 10_000_000_000
PART_PATH = "/emulator-uploads/"
"""Where the emulator serves the part URLs it hands out (no key; a token)."""
_URL_BATCH = 50  # the most part URLs one response carries (the API's cap)
TAIL_BYTES = 1 << 20
"""How much of a file's end is kept while it arrives, without a data directory:
enough for the `moov` of a video of about an hour."""


def not_found(kind: str, ident: str) -> ApiError:
    """404 for an id the emulator does not hold."""
    return ApiError(404, "resource_not_exist", f"{kind} {ident} does not exist.")


def paging(query: dict[str, list[str]]) -> tuple[int, int]:
    """`page` and `page_limit` from a query (1 and 10 by default; at most 50)."""
    try:
        page = int(query.get("page", ["1"])[-1])
        limit = int(query.get("page_limit", ["10"])[-1])
    except ValueError:
        raise _bad("page and page_limit are integers.") from None
    if page < 1 or not 1 <= limit <= 50:
        raise _bad("page must be at least 1 and page_limit between 1 and 50.")
    return page, limit


def page_of(rows: list[dict[str, Any]], page: int, limit: int) -> dict[str, Any]:
    """`{data, page_info}` for one page of `rows`."""
    return {
        "data": rows[(page - 1) * limit : page * limit],
        "page_info": {
            "limit_per_page": limit,
            "page": page,
            "total_page": max(1, math.ceil(len(rows) / limit)),
            "total_results": len(rows),
        },
    }


@dataclass
class Asset:
    """An uploaded or imported file: what the emulator keeps of it.

    `ready_at` is when processing ends (monotonic seconds); `None` while a
    multipart upload still misses parts. `seconds` is the duration read from
    the file, when its container says.
    """

    asset_id: str
    method: str
    filename: str
    size: int
    head: bytes
    user_metadata: dict[str, Any] | None
    ready_at: float | None
    error: str | None = None
    created_at: str = field(default_factory=rfc3339)
    seconds: float | None = None

    def record(self) -> dict[str, Any]:
        """Every field, as JSON values (times on the wall clock), to persist."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        found["head"] = base64.b64encode(self.head).decode()
        if self.ready_at is not None:
            found["ready_at"] = wall(self.ready_at)
        return found

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Asset:
        """The asset a `record` describes."""
        known = {f.name for f in fields(cls)}
        asset = cls(**{k: v for k, v in record.items() if k in known})
        asset.head = base64.b64decode(record["head"])
        if asset.ready_at is not None:
            asset.ready_at = monotonic(asset.ready_at)
        return asset

    @classmethod
    def received(  # noqa: PLR0917 - the facts of one upload
        cls,
        method: str,
        filename: str,
        size: int,
        head: bytes,
        user_metadata: dict[str, Any] | None,
        ready_at: float,
        asset_id: str | None = None,
    ) -> Asset:
        """An asset whose bytes have all arrived; `failed` if they are no media.

        Of `head`, the first `SNIFF_BYTES` are kept: enough to tell the container.
        """
        asset = cls(
            asset_id or new_id("asset"),
            method,
            filename,
            size,
            head[:SNIFF_BYTES],
            user_metadata,
            ready_at,
        )
        if size == 0:
            asset.error = "The file is empty."
        elif sniff(head) is None:
            asset.error = (
                f"{filename} is not a media file this platform reads: its first "
                "bytes match no supported container (MP4, MOV, WebM, MKV, AVI, "
                "MPEG-TS, …)."
            )
        return asset

    @classmethod
    def imported(
        cls, url: str, user_metadata: dict[str, Any] | None, ready_at: float
    ) -> Asset:
        """A URL import: nothing is fetched; the name comes from the URL's path."""
        name = PurePosixPath(urllib.parse.urlsplit(url).path).name or "video"
        asset = cls(new_id("asset"), "url", name, 0, b"", user_metadata, ready_at)
        if PurePosixPath(name).suffix.lower() not in VIDEO_EXTENSIONS:
            asset.error = (
                f"{url} is not a link to a media file (a player page?): the "
                "URL must point at the raw file."
            )
        return asset

    @property
    def mime(self) -> str:
        """The file's MIME type, from its container (or its name, for a URL)."""
        container = sniff(self.head)
        if container is not None:
            return container.mime
        return "video/mp4" if self.error is None else "application/octet-stream"

    @property
    def duration(self) -> float | None:
        """Seconds, when the container says (an MP4's `moov`)."""
        return self.seconds

    def status(self, now: float) -> str:
        """`processing`, then `ready` or `failed`."""
        if self.ready_at is None or now < self.ready_at:
            return "processing"
        return "failed" if self.error else "ready"

    def detail(self, now: float) -> dict[str, Any]:
        """The `AssetDetail` object."""
        status = self.status(now)
        detail: dict[str, Any] = {
            "_id": self.asset_id,
            "method": self.method,
            "status": status,
            "filename": self.filename,
            "file_type": self.mime,
            "created_at": self.created_at,
        }
        if self.user_metadata:
            detail["user_metadata"] = self.user_metadata
        if status == "ready" and self.method != "url":  # an import's size: unknown
            detail["size"] = self.size
            if self.duration is not None:
                detail["duration"] = self.duration
        if status == "failed":
            detail["error"] = {"message": self.error}
        return detail


@dataclass
class Upload:
    """A multipart upload session: which parts arrived, which were reported."""

    upload_id: str
    asset: Asset
    total_size: int
    chunk_size: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    received: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    """chunk index → (size, ETag, when) of each part PUT to its URL."""
    reported: set[int] = field(default_factory=set)
    """The chunks reported with their ETag as proof."""
    created_at: str = field(default_factory=rfc3339)
    expires_at: str = field(default_factory=lambda: in_seconds(24 * 3600))
    """A session lasts 24 h (docs/protocol.md)."""
    tail: bytearray = field(default_factory=bytearray)
    """The file's last `TAIL_BYTES` as parts bring them (without a data
    directory), until the duration is read at completion."""

    def record(self) -> dict[str, Any]:
        """The session's settings, to persist (its parts are kept apart)."""
        return {
            "upload_id": self.upload_id,
            "asset_id": self.asset.asset_id,
            "total_size": self.total_size,
            "chunk_size": self.chunk_size,
            "token": self.token,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], asset: Asset) -> Upload:
        """The session a `record` describes, for `asset` (no parts yet)."""
        settings = {k: v for k, v in record.items() if k != "asset_id"}
        return cls(asset=asset, **settings)

    def keep_tail(self, offset: int, data: bytes | bytearray) -> None:
        """Keep what of `data`, found at `offset` in the file, lies in its tail."""
        start = max(0, self.total_size - TAIL_BYTES)
        low, high = max(offset, start), min(offset + len(data), self.total_size)
        if low >= high:
            return
        if not self.tail:
            self.tail = bytearray(self.total_size - start)
        self.tail[low - start : high - start] = data[low - offset : high - offset]

    @property
    def total_chunks(self) -> int:
        """How many parts the file is cut into."""
        return max(1, math.ceil(self.total_size / self.chunk_size))

    def part_size(self, index: int) -> int:
        """The exact size part `index` (1-based) must have."""
        if index < self.total_chunks:
            return self.chunk_size
        return self.total_size - self.chunk_size * (self.total_chunks - 1)

    def urls(self, origin: str, start: int, count: int) -> list[dict[str, Any]]:
        """Part URLs `start`… (at most `count`, 50), served by the emulator."""
        end = min(self.total_chunks, start + min(count, _URL_BATCH) - 1)
        return [
            {
                "chunk_index": i,
                "url": f"{origin}{PART_PATH}{self.upload_id}/{i}?token={self.token}",
                "expires_at": in_seconds(3600),  # part URLs: 1 h
            }
            for i in range(start, end + 1)
        ]

    @property
    def complete(self) -> bool:
        """Whether every part has been reported."""
        return len(self.reported) == self.total_chunks

    def status(self, page: int, limit: int) -> dict[str, Any]:
        """`GET /assets/multipart-uploads/{id}`: the session and its parts."""
        chunks = [
            {
                "index": i,
                "status": "completed"
                if i in self.reported
                else ("pending" if i in self.received else "failed"),
                "uploaded_at": self.received[i][2],
                "updated_at": rfc3339(),
            }
            for i in range(1, self.total_chunks + 1)
            if i in self.received
        ]
        listed = page_of(chunks, page, limit)
        done = sum(self.part_size(i) for i in self.reported)
        return {
            "upload_id": self.upload_id,
            "status": "completed" if self.complete else "active",
            "uploaded_chunks": listed["data"],
            "chunks_completed": len(self.reported),
            "chunks_failed": 0,
            "chunks_pending": self.total_chunks - len(self.reported),
            "total_size": self.total_size,
            "uploaded_size": done,
            "page_info": listed["page_info"],
            "created_at": self.created_at,
            "updated_at": rfc3339(),
        }

    def report(self, body: Any) -> tuple[int, int]:
        """Take a batch of `completed_chunks`; (processed, duplicates).

        Raises:
            ApiError: 400 for a malformed batch, a part never PUT, a proof that
                is not its ETag, or a size that is not the part's.
        """
        chunks = body.get("completed_chunks") if isinstance(body, dict) else None
        if not isinstance(chunks, list) or not chunks:
            raise _bad("completed_chunks must be a non-empty array.")
        processed = duplicates = 0
        for chunk in chunks:
            if not isinstance(chunk, dict) or not {
                "chunk_index",
                "proof",
                "proof_type",
                "chunk_size",
            } <= set(chunk):
                raise _bad(
                    "each completed chunk needs chunk_index, proof, proof_type "
                    "and chunk_size."
                )
            index = chunk["chunk_index"]
            if type(index) is not int or index not in self.received:
                raise _bad(f"chunk {index!r} was not uploaded to its URL.")
            size, etag, _ = self.received[index]
            if chunk["proof_type"] != "etag" or chunk["proof"] != etag:
                raise _bad(f"chunk {index}: proof is not the ETag of its upload.")
            if chunk["chunk_size"] != size:
                raise _bad(
                    f"chunk {index}: chunk_size {chunk['chunk_size']!r} != {size}."
                )
            if index in self.reported:
                duplicates += 1
            else:
                self.reported.add(index)
                processed += 1
        return processed, duplicates


def in_seconds(seconds: float) -> str:
    """The time `seconds` from now, RFC 3339."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
