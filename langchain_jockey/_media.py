"""Media files by their bytes: the container, an MP4's duration, sample videos.

- `sniff` names a container from a file's first bytes (its signature, never its
  extension), so bad input is refused before anything is uploaded.
- `duration` reads an ISO-BMFF file's (MP4, MOV, 3GP, M4V, M4A) duration from
  `moov/mvhd`, seeking over the other boxes: `mdat`, which may be gigabytes, is
  never read. `duration_from_head` does the same on the first bytes of a file
  (enough when `moov` comes before `mdat`), and on its first and last bytes
  (enough when a small `moov` ends the file, ffmpeg's default). Both are one
  box walker.
- `sample_video` writes a tiny MP4 that both recognise, of any duration and
  size, with `moov` first or last.

Nothing here raises on malformed input: what cannot be read is `None`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "SNIFF_BYTES",
    "VIDEO_EXTENSIONS",
    "Container",
    "duration",
    "duration_from_head",
    "sample_video",
    "sniff",
]

SNIFF_BYTES = 4096
"""How many leading bytes of a file to give `sniff`: enough for every signature
it knows (MPEG-TS needs 189 bytes, more make it surer)."""

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts",
        ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv",
        ".mp3", ".wav", ".m4a", ".flac", ".ogg",
    }
)  # fmt: skip
"""Lowercase extensions, with the dot, of the files a directory scan picks up.
Only a scan uses them: whether a file is media is `sniff`'s decision."""


@dataclass(frozen=True)
class Container:
    """A media container format, as `sniff` recognises it.

    Attributes:
        name: Short name, the usual extension without the dot: `"mp4"`,
            `"mov"`, `"webm"`, `"mkv"`, `"avi"`, `"ts"`, `"mp3"`...
        mime: Its media type, e.g. `"video/mp4"` or `"audio/mpeg"`.
        kind: `"video"`, or `"audio"` for the formats that hold only sound.
    """

    name: str
    mime: str
    kind: str


_MP4 = Container("mp4", "video/mp4", "video")
_MOV = Container("mov", "video/quicktime", "video")
_3GP = Container("3gp", "video/3gpp", "video")
_M4V = Container("m4v", "video/x-m4v", "video")
_M4A = Container("m4a", "audio/mp4", "audio")
_WEBM = Container("webm", "video/webm", "video")
_MKV = Container("mkv", "video/x-matroska", "video")
_AVI = Container("avi", "video/x-msvideo", "video")
_WAV = Container("wav", "audio/wav", "audio")
_TS = Container("ts", "video/mp2t", "video")
_M2TS = Container("m2ts", "video/mp2t", "video")
_MPEG = Container("mpeg", "video/mpeg", "video")
_FLV = Container("flv", "video/x-flv", "video")
_ASF = Container("asf", "video/x-ms-asf", "video")
_OGV = Container("ogv", "video/ogg", "video")
_OGG = Container("ogg", "audio/ogg", "audio")
_MP3 = Container("mp3", "audio/mpeg", "audio")
_FLAC = Container("flac", "audio/flac", "audio")

_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
# ISO-BMFF brands of still images (HEIF, AVIF, Canon raw): an `ftyp` but no video.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
     b"avis", b"avci", b"crx "}
)  # fmt: skip
_TS_PACKET, _M2TS_PACKET, _SYNC = 188, 192, 0x47
_MAX_PACKETS = 8  # sync bytes checked in a transport stream's head


def sniff(head: bytes) -> Container | None:
    """The container whose signature `head` starts with, or `None`.

    The decision is by signature only: an MP4 named `.txt` is an MP4, a text
    file named `.mp4` is `None`. Recognised: ISO-BMFF by brand (MP4, QuickTime,
    3GP, M4V, audio M4A; HEIF/AVIF images are not media), Matroska and WebM by
    DocType, AVI, WAV, MPEG-TS (188- or 192-byte packets), MPEG-PS, FLV,
    ASF/WMV, Ogg (video when it carries Theora), MP3 (an ID3 tag or a Layer III
    frame header) and FLAC.

    Args:
        head: The first bytes of the file: `SNIFF_BYTES` of them, or the whole
            file if it is shorter. At least 64; MPEG-TS needs 189.

    Returns:
        The container, or `None` for anything else (text, images, archives,
        empty or unknown bytes).
    """
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _iso_brand(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head)
    if head.startswith(b"RIFF"):
        return {b"AVI ": _AVI, b"WAVE": _WAV}.get(head[8:12])
    if head.startswith(_ASF_GUID):
        return _ASF
    if head.startswith(b"FLV\x01"):
        return _FLV
    if head.startswith(b"OggS"):
        return _OGV if b"\x80theora" in head else _OGG
    if head.startswith(b"fLaC"):
        return _FLAC
    if head.startswith(b"ID3"):
        return _id3(head)
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return _MPEG  # a program stream, or an elementary stream's sequence header
    if _packets(head, 0, _TS_PACKET):
        return _TS
    if _packets(head, 4, _M2TS_PACKET):
        return _M2TS
    return _MP3 if _mp3_frame(head) else None


def _iso_brand(brand: bytes) -> Container | None:
    if brand in _IMAGE_BRANDS:
        return None
    if brand == b"qt  ":
        return _MOV
    if brand.startswith(b"3g"):  # 3gp4..3gp6, 3g2a, 3ge6...
        return _3GP
    if brand.startswith(b"M4V"):
        return _M4V
    if brand in {b"M4A ", b"M4B ", b"M4P "}:
        return _M4A
    return _MP4  # isom, iso2..iso6, mp41, mp42, avc1, dash, f4v...


def _vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at `pos`, and the position after it."""
    if pos >= len(data) or data[pos] == 0:
        return None
    end = pos + 9 - data[pos].bit_length()
    if end > len(data):
        return None
    value = int.from_bytes(data[pos:end], "big")
    return (value if marker else value & ((1 << 7 * (end - pos)) - 1)), end


def _matroska(head: bytes) -> Container | None:
    """WebM or Matroska by the EBML header's DocType (absent: "matroska")."""
    size = _vint(head, 4, marker=False)
    pos, end = (size[1], size[1] + size[0]) if size else (len(head), 0)
    while pos < min(end, len(head)):
        element = _vint(head, pos, marker=True)
        length = element and _vint(head, element[1], marker=False)
        if not element or not length:
            break
        pos = length[1] + length[0]
        if element[0] == 0x4282:  # DocType
            doc_type = head[length[1] : pos]
            return {b"webm": _WEBM, b"matroska": _MKV}.get(doc_type.rstrip(b"\0"))
    return _MKV


def _id3(head: bytes) -> Container | None:
    """MP3 after an ID3v2 tag, or FLAC when the tag precedes `fLaC`."""
    if len(head) < 10 or head[3] not in {2, 3, 4} or max(head[6:10]) >= 0x80:
        return None
    size = 10 + sum(byte << 7 * (3 - i) for i, byte in enumerate(head[6:10]))
    size += 10 if head[5] & 0x10 else 0  # a footer
    return _FLAC if head[size : size + 4] == b"fLaC" else _MP3


def _packets(head: bytes, first: int, step: int) -> bool:
    """A sync byte at the start of every packet that fits in `head` (2 at least)."""
    starts = range(first, min(len(head), first + _MAX_PACKETS * step), step)
    return len(starts) >= 2 and all(head[i] == _SYNC for i in starts)


def _mp3_frame(head: bytes) -> bool:
    """An MPEG audio Layer III frame header, without reserved values."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer == 1 and bitrate != 15 and rate != 3


# ISO-BMFF boxes ---------------------------------------------------------------

_MAX_BOXES = 4096  # boxes walked at one level before giving up


def _boxes(
    file: BinaryIO, start: int, end: int | None
) -> Iterator[tuple[bytes, int, int | None]]:
    """`(type, body start, body end)` of each box in `[start, end)`, by seeking.

    `end` `None` is the end of the file; so is a body end `None` (a box of size
    0, the last one). A box that cannot be read ends the walk.
    """
    offset = start
    for _ in range(_MAX_BOXES):
        if end is not None and offset + 8 > end:
            return
        file.seek(offset)
        header = file.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        body = offset + 8
        if size == 1:  # a 64-bit largesize follows the type
            large = file.read(8)
            if len(large) < 8:
                return
            size, body = int.from_bytes(large, "big"), body + 8
        if size == 0:
            yield kind, body, end
            return
        offset += size
        if offset < body or (end is not None and offset > end):
            return
        yield kind, body, offset


def _child(
    file: BinaryIO, parent: tuple[int, int | None], kind: bytes
) -> tuple[int, int | None] | None:
    """The body `(start, end)` of the first `kind` box in `parent`'s body."""
    found = (box for box in _boxes(file, *parent) if box[0] == kind)
    return next(((start, end) for _, start, end in found), None)


def _full_box(
    file: BinaryIO, body: tuple[int, int | None], v0: str, v1: str
) -> tuple[int, ...]:
    """A FullBox's fields, unpacked by the `struct` format of its version."""
    file.seek(body[0])
    version = file.read(4)[:1]
    fields = v1 if version == b"\x01" else v0
    data = file.read(struct.calcsize(fields))
    return struct.unpack(fields, data) if len(data) == struct.calcsize(fields) else ()


def _duration(file: BinaryIO) -> float | None:
    top = _boxes(file, 0, None)
    if next(top, (b"",))[0] != b"ftyp":
        return None
    moov = next(((start, end) for kind, start, end in top if kind == b"moov"), None)
    mvhd = None if moov is None else _child(file, moov, b"mvhd")
    if moov is None or mvhd is None:
        return None
    # creation and modification times, the timescale, the duration
    fields = _full_box(file, mvhd, ">IIII", ">QQIQ")
    if not fields or fields[2] == 0:
        return None
    timescale, length = fields[2], fields[3]
    mvex = _child(file, moov, b"mvex") if length == 0 else None
    if mvex is not None:  # fragmented: the whole duration is in mehd, if anywhere
        mehd = _child(file, mvex, b"mehd")
        length = (_full_box(file, mehd, ">I", ">Q") or (0,))[0] if mehd else 0
        if length == 0:
            return None
    if length in {0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF}:  # all ones: "unknown"
        return None
    return length / timescale


def duration(file: BinaryIO) -> float | None:
    """The duration in seconds of an ISO-BMFF file (MP4, MOV, 3GP, M4V, M4A).

    Read from `moov/mvhd` (or `moov/mvex/mehd` for a fragmented file whose
    `mvhd` says 0) by seeking from box to box: only box headers and `mvhd` are
    read, never `mdat`, so `moov` may come after gigabytes of media. Boxes with
    a 64-bit size and a last box of size 0 ("to the end") are read.

    Args:
        file: A seekable binary file. It is left at the position it had.

    Returns:
        Seconds, or `None` for another container, a file without `moov` or
        `mvhd`, a timescale of 0, an unknown duration, a file that is not
        seekable, or a truncated or garbled one.
    """
    try:
        position = file.tell()
    except (OSError, ValueError):
        return None
    try:
        return _duration(file)
    except (OSError, ValueError, OverflowError, struct.error):
        return None
    finally:
        with contextlib.suppress(OSError, ValueError):
            file.seek(position)


def duration_from_head(
    head: bytes, tail: bytes = b"", size: int | None = None
) -> float | None:
    """`duration` of a file of which only the first (and last) bytes are at hand.

    The head is enough when `moov` precedes `mdat` (a "fast start" file, or
    `sample_video`'s): the `mvhd` at the start of `moov` must be within `head`.
    With the file's last bytes too, a `moov` that ends the file (ffmpeg's
    default layout) is read when it starts within `tail`. What lies between is
    never needed: the walk seeks over `mdat`.

    Args:
        head: The first bytes of the file.
        tail: The last bytes of the file (they may overlap `head`).
        size: The file's size in bytes; required with `tail`.

    Returns:
        Seconds, or `None` as for `duration`, and when `mvhd` is in neither piece.
    """
    if not tail or size is None:
        return duration(io.BytesIO(head))
    pieces = _Pieces(size, {0: head, size - len(tail): tail})
    return duration(io.BufferedReader(pieces))


class _Pieces(io.RawIOBase):
    """A read-only file of `size` bytes of which only some pieces are known.

    Bytes outside the pieces read as zeros: a box header there has size 0 and
    no known type, so a walk that reaches one ends without a duration.
    """

    def __init__(self, size: int, pieces: dict[int, bytes]) -> None:
        super().__init__()
        self._size, self._pieces, self._at = size, pieces, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}
        self._at = max(0, base[whence] + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = max(0, min(len(view), self._size - self._at))
        view[:count] = bytes(count)
        at = self._at
        for start, data in self._pieces.items():
            low, high = max(start, at), min(start + len(data), at + count)
            if low < high:
                view[low - at : high - at] = data[low - start : high - start]
        self._at += count
        return count


# Sample files -------------------------------------------------------------------

_TIMESCALE = 1000  # sample_video's: milliseconds
_MATRIX = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def sample_video(
    path: str | os.PathLike[str],
    *,
    seconds: float = 30.0,
    size: int | None = None,
    faststart: bool = True,
) -> Path:
    """Write a tiny MP4 that `sniff` calls mp4 and whose `duration` is `seconds`.

    For tests and examples that need video files (a folder of them to ingest,
    a file of some exact size) without shipping any. The file is an `ftyp`
    box (brand `isom`), a `moov` holding one `mvhd` (timescale 1000) and an
    `mdat` box, in that order, so `duration_from_head` reads it too; with
    `faststart=False`, `moov` comes last, after `mdat`, as ffmpeg writes a file
    by default. It has no tracks: it passes a check of the container and its
    duration, not a decoder. `mdat` starts with the file's name, so samples
    with different names have different content (and content hashes).

    With `size`, `mdat` is padded with zeros so that the file is exactly
    `size` bytes: the file is extended by truncation (sparse where the file
    system allows it), so a sample of gigabytes is written at once and never
    held in memory.

    Example:
        ```python
        for i in range(3):
            sample_video(folder / f"clip{i}.mp4", seconds=10 + i)
        ```

    Args:
        path: The file to write (replaced if it exists; its folder must exist).
        seconds: The duration, a finite number >= 0, rounded to the millisecond
            (`mvhd` version 1 beyond 2**32 ms).
        size: The exact size in bytes of the file, or `None` for the smallest
            one. At least the size of the boxes: 152 bytes (164 for `mvhd` v1).
        faststart: `moov` before `mdat` (the default), else after it.

    Returns:
        `path`, as a `Path`.

    Raises:
        ValueError: `seconds` is negative or not finite, or `size` is too small
            for the boxes.
    """
    ticks = round(seconds * _TIMESCALE) if math.isfinite(seconds) else -1
    if not 0 <= ticks < 1 << 64:
        raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
    target = Path(path)
    version, times = (0, ">IIII") if ticks <= 0xFFFFFFFF else (1, ">QQIQ")
    mvhd = struct.pack(">B3x", version) + struct.pack(times, 0, 0, _TIMESCALE, ticks)
    # rate 1.0, volume 1.0, reserved, the identity matrix, pre_defined, next_track_ID
    mvhd += struct.pack(">IH10x9I24xI", 0x10000, 0x100, *_MATRIX, 1)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    moov = _box(b"moov", _box(b"mvhd", mvhd))
    boxes = len(ftyp) + len(moov)
    name = target.name.encode(errors="replace")
    if size is None:
        size = boxes + 8 + len(name)
    room = size - boxes  # mdat, header included
    header = (
        struct.pack(">I4s", room, b"mdat")
        if room <= 0xFFFFFFFF
        else struct.pack(">I4sQ", 1, b"mdat", room)
    )
    if room < len(header):
        raise ValueError(f"size must be at least {boxes + 8} bytes, not {size}")
    mdat = header + name[: room - len(header)]
    with target.open("wb") as out:
        if faststart:
            out.write(ftyp + moov + mdat)
            out.truncate(size)
        else:
            out.write(ftyp + mdat)
            out.truncate(size - len(moov))
            out.seek(size - len(moov))
            out.write(moov)
    return target
