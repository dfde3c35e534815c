"""Media by its bytes: container signatures, MP4 durations, sample videos."""

from __future__ import annotations

import io
import math
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_jockey._media import (
    SNIFF_BYTES,
    VIDEO_EXTENSIONS,
    Container,
    duration,
    duration_from_head,
    sample_video,
    sniff,
)

MIB = 1 << 20


def box(kind: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def large_box(kind: bytes, body: bytes = b"") -> bytes:
    """A box with size 1 and a 64-bit largesize."""
    return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body


def ftyp(brand: bytes = b"isom") -> bytes:
    return box(b"ftyp", brand + b"\0\0\2\0" + b"isomiso2mp41")


def mvhd(ticks: int, timescale: int = 1000, version: int = 0) -> bytes:
    if version == 0:
        times = struct.pack(">IIII", 0, 0, timescale, ticks)
    else:
        times = struct.pack(">QQIQ", 0, 0, timescale, ticks)
    return box(b"mvhd", bytes([version, 0, 0, 0]) + times + bytes(80))


MDAT_AT = len(ftyp()) + len(box(b"moov", mvhd(0)))  # in a sample_video file


def head_of(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(SNIFF_BYTES)


def padded(head: bytes, length: int = 64) -> bytes:
    return head + bytes(max(0, length - len(head)))


def ebml(doc_type: bytes | None) -> bytes:
    children = b"\x42\x86\x81\x01"  # EBMLVersion 1
    if doc_type is not None:
        children += b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(children)]) + children


def packets(size: int, offset: int, count: int) -> bytes:
    packet = bytes(offset) + b"\x47" + bytes(size - offset - 1)
    return packet * count


ASF = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
OGG = b"OggS\0\2" + bytes(22)  # the first page's header
ID3 = b"ID3\4\0\0\0\0\0\x05"  # an ID3v2.4 tag of 5 bytes
SIGNATURES = {
    "isom": (ftyp(b"isom"), "mp4", "video/mp4", "video"),
    "mp41": (ftyp(b"mp41"), "mp4", "video/mp4", "video"),
    "mp42": (ftyp(b"mp42"), "mp4", "video/mp4", "video"),
    "avc1": (ftyp(b"avc1"), "mp4", "video/mp4", "video"),
    "iso5": (ftyp(b"iso5"), "mp4", "video/mp4", "video"),
    "dash": (ftyp(b"dash"), "mp4", "video/mp4", "video"),
    "quicktime": (ftyp(b"qt  "), "mov", "video/quicktime", "video"),
    "3gp": (ftyp(b"3gp5"), "3gp", "video/3gpp", "video"),
    "3g2": (ftyp(b"3g2a"), "3gp", "video/3gpp", "video"),
    "m4v": (ftyp(b"M4V "), "m4v", "video/x-m4v", "video"),
    "m4a": (ftyp(b"M4A "), "m4a", "audio/mp4", "audio"),
    "m4b": (ftyp(b"M4B "), "m4a", "audio/mp4", "audio"),
    "webm": (ebml(b"webm"), "webm", "video/webm", "video"),
    "matroska": (ebml(b"matroska"), "mkv", "video/x-matroska", "video"),
    "ebml-without-doctype": (ebml(None), "mkv", "video/x-matroska", "video"),
    "avi": (b"RIFF\0\1\0\0AVI LIST", "avi", "video/x-msvideo", "video"),
    "wav": (b"RIFF\0\1\0\0WAVEfmt ", "wav", "audio/wav", "audio"),
    "mpeg-ts": (packets(188, 0, 22), "ts", "video/mp2t", "video"),
    "mpeg-ts-two-packets": (packets(188, 0, 2)[:189], "ts", "video/mp2t", "video"),
    "m2ts": (packets(192, 4, 22), "m2ts", "video/mp2t", "video"),
    "mpeg-ps": (b"\0\0\1\xba\x44\0\4\0", "mpeg", "video/mpeg", "video"),
    "mpeg-es": (b"\0\0\1\xb3\x16\0\xf0", "mpeg", "video/mpeg", "video"),
    "flv": (b"FLV\x01\x05\0\0\0\x09", "flv", "video/x-flv", "video"),
    "asf": (ASF, "asf", "video/x-ms-asf", "video"),
    "ogg-vorbis": (OGG + b"\x01vorbis", "ogg", "audio/ogg", "audio"),
    "ogg-theora": (OGG + b"\x80theora", "ogv", "video/ogg", "video"),
    "mp3-id3": (ID3 + bytes(5) + b"\xff\xfb", "mp3", "audio/mpeg", "audio"),
    "mp3-frame": (b"\xff\xfb\x90\x64", "mp3", "audio/mpeg", "audio"),
    "mp3-mpeg2-frame": (b"\xff\xf3\x64\xc4", "mp3", "audio/mpeg", "audio"),
    "flac": (b"fLaC\0\0\0\x22", "flac", "audio/flac", "audio"),
    "flac-after-id3": (b"ID3\3\0\0\0\0\0\x02\0\0fLaC", "flac", "audio/flac", "audio"),
}  # fmt: skip


@pytest.mark.parametrize("label", SIGNATURES)
def test_each_container_is_recognised_by_its_signature(label: str) -> None:
    head, name, mime, kind = SIGNATURES[label]
    length = len(head) if label == "mpeg-ts-two-packets" else 64
    assert sniff(padded(head, length)) == Container(name, mime, kind)


NOT_MEDIA = {
    "empty": b"",
    "text": b"Hello, this is a plain text file about videos.\n" * 100,
    "utf-16 text": "\ufeffHello, videos".encode("utf-16-le") * 200,
    "json": b'{"video": "clip.mp4", "ftyp": "isom"}',
    "png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(50),
    "jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes(50),
    "zip": b"PK\x03\x04\x14\0\0\0\x08\0" + bytes(60),
    "gzip": b"\x1f\x8b\x08\0" + bytes(60),
    "pdf": b"%PDF-1.7\n" + bytes(60),
    "ftyp cut before its brand": b"\0\0\0\x14ftypis",
    "heic image": padded(ftyp(b"heic")),
    "avif image": padded(ftyp(b"avif")),
    "webp image": padded(b"RIFF\0\1\0\0WEBPVP8 "),
    "other ebml doctype": padded(ebml(b"foo")),
    "adts aac": padded(b"\xff\xf1\x50\x80"),
    "ts sync broken at 376": bytes(packets(188, 0, 2)) + b"\x00" * 300,
    "a lone sync byte": padded(b"\x47"),
    "id3 with a bad version": padded(b"ID3\xff\0\0\0\0\0\0"),
    "short garbage": b"\0\0\0",
}


@pytest.mark.parametrize("label", NOT_MEDIA)
def test_what_is_not_media_sniffs_as_none(label: str) -> None:
    assert sniff(NOT_MEDIA[label]) is None


def test_the_extension_does_not_matter_only_the_bytes(tmp_path: Path) -> None:
    disguised = sample_video(tmp_path / "notes.txt", seconds=5)
    assert sniff(head_of(disguised)).name == "mp4"  # type: ignore[union-attr]
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video")
    assert sniff(fake.read_bytes()) is None


@given(st.binary(max_size=600))
def test_sniff_never_raises_on_any_bytes(head: bytes) -> None:
    assert sniff(head) is None or isinstance(sniff(head), Container)


def test_video_extensions_are_lowercase_with_a_dot_and_cover_the_usual_formats() -> (
    None
):
    assert all(ext.startswith(".") and ext == ext.lower() for ext in VIDEO_EXTENSIONS)
    for ext in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m2ts", ".wmv", ".ogv"):
        assert ext in VIDEO_EXTENSIONS
    for ext in (".mp3", ".wav", ".m4a", ".flac", ".ogg"):
        assert ext in VIDEO_EXTENSIONS
    assert ".txt" not in VIDEO_EXTENSIONS


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (mvhd(90_500, 1000, version=0), 90.5),
        (mvhd(30 * 600, 600, version=0), 30.0),
        (mvhd(1 << 40, 1000, version=1), (1 << 40) / 1000),
        (mvhd(48_000 * 7, 48_000, version=1), 7.0),
    ],
    ids=["v0-ms", "v0-600", "v1-64-bit", "v1-48k"],
)
def test_duration_reads_mvhd_version_0_and_1(header: bytes, expected: float) -> None:
    data = ftyp() + box(b"moov", header) + box(b"mdat", b"x" * 100)
    assert duration(io.BytesIO(data)) == expected
    assert duration_from_head(data) == expected


def test_mvhd_need_not_be_the_first_child_of_moov() -> None:
    moov = box(b"moov", box(b"udta", b"meta" * 10) + mvhd(4000))
    assert duration_from_head(ftyp() + box(b"free") + moov) == 4.0


def test_boxes_with_a_64_bit_largesize_are_walked() -> None:
    data = ftyp() + large_box(b"free", b"\0" * 40) + large_box(b"moov", mvhd(12_000))
    assert duration_from_head(data) == 12.0


def test_a_last_box_of_size_0_extends_to_the_end_of_the_file() -> None:
    moov = b"\0\0\0\0moov" + mvhd(3000)
    assert duration_from_head(ftyp() + box(b"free") + moov) == 3.0
    mdat_to_the_end = b"\0\0\0\0mdat" + box(b"moov", mvhd(3000))
    assert duration_from_head(ftyp() + mdat_to_the_end) is None


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data or b"")
        return data  # type: ignore[return-value]


def test_moov_after_gigabytes_of_mdat_is_read_by_seeking(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    media = 5 << 30  # over 4 GiB: mdat needs a largesize
    with path.open("wb") as out:
        out.write(ftyp() + struct.pack(">I4sQ", 1, b"mdat", 16 + media))
        out.truncate(out.tell() + media)  # sparse: instant
        out.seek(0, io.SEEK_END)
        out.write(box(b"moov", mvhd(61_000)))
    with CountingFile(path) as file:
        file.seek(7)
        assert duration(file) == 61.0
        assert file.bytes_read < 512
        assert file.tell() == 7, "the position is restored"
    assert duration_from_head(head_of(path)) is None


@pytest.mark.parametrize(
    "data",
    [
        ftyp() + box(b"mdat", b"x" * 50),
        ftyp() + box(b"moov", box(b"trak")),
        ftyp() + box(b"moov", mvhd(5000, timescale=0)),
        ftyp() + box(b"moov", mvhd(0xFFFFFFFF)),
        box(b"moov", mvhd(5000)),
        box(b"free") + ftyp() + box(b"moov", mvhd(5000)),
        ftyp() + box(b"moov", mvhd(5000)[:30]),
        ftyp() + b"\0\0\0\x04moov" + box(b"moov", mvhd(5000)),
        padded(ebml(b"webm"), 200),
        b"",
    ],
    ids=[
        "no-moov",
        "no-mvhd",
        "timescale-0",
        "unknown-duration",
        "no-ftyp",
        "ftyp-not-first",
        "truncated-mvhd",
        "box-smaller-than-its-header",
        "webm",
        "empty",
    ],
)
def test_duration_is_none_when_it_cannot_be_read(data: bytes) -> None:
    assert duration_from_head(data) is None


def test_a_fragmented_mp4_takes_its_duration_from_mehd() -> None:
    mehd = box(b"mehd", b"\1\0\0\0" + struct.pack(">Q", 45_000))
    moov = box(b"moov", mvhd(0) + box(b"mvex", box(b"trex") + mehd))
    assert duration_from_head(ftyp(b"iso6") + moov) == 45.0
    unknown = box(b"moov", mvhd(0) + box(b"mvex", box(b"trex")))
    assert duration_from_head(ftyp(b"iso6") + unknown) is None


def test_an_unseekable_file_has_no_duration() -> None:
    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

        def seek(self, *args: object) -> int:
            raise io.UnsupportedOperation

    assert duration(Pipe(ftyp() + box(b"moov", mvhd(1000)))) is None


@pytest.fixture(scope="module")
def sample_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("media")
    return sample_video(folder / "cut.mp4", seconds=42.25).read_bytes()


@settings(max_examples=300)
@given(st.data())
def test_duration_from_head_never_raises_on_a_cut_sample(
    sample_bytes: bytes, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(sample_bytes)))
    got = duration_from_head(sample_bytes[:cut])
    if cut >= MDAT_AT:  # ftyp and moov are whole
        assert got == 42.25
    else:
        assert got in {None, 42.25}


@given(st.binary(max_size=400), st.binary(max_size=8))
def test_duration_from_head_never_raises_on_garbage_after_ftyp(
    tail: bytes, brand: bytes
) -> None:
    got = duration_from_head(ftyp(brand.ljust(4)[:4]) + tail)
    assert got is None or (math.isfinite(got) and got >= 0)


@pytest.mark.parametrize("seconds", [0.0, 0.5, 4.25, 30.0, 3599.999, 86_400.0, 2.0**33])
def test_sample_video_round_trips_its_duration(tmp_path: Path, seconds: float) -> None:
    path = sample_video(tmp_path / "clip.mp4", seconds=seconds)
    assert path == tmp_path / "clip.mp4"
    head = head_of(path)
    assert sniff(head) == Container("mp4", "video/mp4", "video")
    with path.open("rb") as file:
        assert duration(file) == seconds
    assert duration_from_head(head) == seconds


def test_sample_video_defaults_to_thirty_seconds_and_accepts_a_str(
    tmp_path: Path,
) -> None:
    path = sample_video(str(tmp_path / "default.mp4"))
    assert isinstance(path, Path)
    assert duration_from_head(path.read_bytes()) == 30.0


@pytest.mark.parametrize("size", [152, 153, 1000, 5 * MIB + 3])
def test_sample_video_with_size_is_exactly_that_many_bytes(
    tmp_path: Path, size: int
) -> None:
    path = sample_video(tmp_path / "sized.mp4", seconds=9.5, size=size)
    assert path.stat().st_size == size
    with path.open("rb") as file:
        assert duration(file) == 9.5
        file.seek(MDAT_AT)  # mdat ends exactly at the end of the file
        mdat_size, kind = struct.unpack(">I4s", file.read(8))
        assert (kind, MDAT_AT + mdat_size) == (b"mdat", size)


def test_sample_videos_with_different_names_differ_in_content(tmp_path: Path) -> None:
    one = sample_video(tmp_path / "one.mp4", seconds=10, size=4096)
    two = sample_video(tmp_path / "two.mp4", seconds=10, size=4096)
    assert one.read_bytes() != two.read_bytes()


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf, 1e30])
def test_sample_video_refuses_an_impossible_duration(
    tmp_path: Path, seconds: float
) -> None:
    with pytest.raises(ValueError, match="seconds"):
        sample_video(tmp_path / "bad.mp4", seconds=seconds)


def test_sample_video_refuses_a_size_too_small_for_its_boxes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 152 bytes"):
        sample_video(tmp_path / "small.mp4", size=151)


def test_a_200_mb_sample_is_written_without_holding_it_in_memory(
    tmp_path: Path,
) -> None:
    tracemalloc.start()
    try:
        path = sample_video(tmp_path / "big.mp4", seconds=600, size=200_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB
    assert path.stat().st_size == 200_000_000
    with path.open("rb") as file:
        assert duration(file) == 600.0
    assert sniff(head_of(path)).name == "mp4"  # type: ignore[union-attr]


def test_a_sample_over_4_gib_has_a_64_bit_mdat(tmp_path: Path) -> None:
    size = (4 << 30) + 1000
    path = sample_video(tmp_path / "huge.mp4", seconds=7, size=size)
    assert path.stat().st_size == size
    with path.open("rb") as file:
        assert duration(file) == 7.0
        file.seek(MDAT_AT)
        assert struct.unpack(">I4sQ", file.read(16)) == (1, b"mdat", size - MDAT_AT)


@pytest.mark.parametrize("size", [None, 5 * MIB + 3, (4 << 30) + 1000])
def test_sample_video_without_faststart_puts_moov_after_mdat(
    tmp_path: Path, size: int | None
) -> None:
    path = sample_video(tmp_path / "late.mp4", seconds=8.5, size=size, faststart=False)
    if size is not None:
        assert path.stat().st_size == size
    with path.open("rb") as file:
        assert duration(file) == 8.5
        file.seek(len(ftyp()))
        assert file.read(16)[4:8] == b"mdat"
        file.seek(-len(box(b"moov", mvhd(0))), io.SEEK_END)
        assert file.read(8)[4:] == b"moov"
    head = head_of(path)
    assert sniff(head).name == "mp4"  # type: ignore[union-attr]
    if size is not None:  # the head alone holds no moov
        assert duration_from_head(head) is None


@pytest.mark.parametrize("tail_bytes", [116, 200, 4096])  # moov: 116 bytes
def test_duration_from_head_and_tail_reads_a_moov_that_ends_the_file(
    tmp_path: Path, tail_bytes: int
) -> None:
    size = 5 * MIB
    path = sample_video(tmp_path / "late.mp4", seconds=61, size=size, faststart=False)
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        file.seek(-tail_bytes, io.SEEK_END)
        tail = file.read()
    assert duration_from_head(head) is None
    assert duration_from_head(head, tail, size) == 61.0


def test_duration_from_head_and_tail_is_none_when_moov_starts_before_the_tail(
    tmp_path: Path,
) -> None:
    size = 5 * MIB
    path = sample_video(tmp_path / "late.mp4", seconds=61, size=size, faststart=False)
    data = path.read_bytes()
    assert duration_from_head(data[:SNIFF_BYTES], data[-50:], size) is None
