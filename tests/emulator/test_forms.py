"""The multipart/form-data parser: any chunking, bounded memory, 400 for bad bodies."""

from __future__ import annotations

import hashlib
import itertools
import tracemalloc

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_jockey.emulator import _forms
from langchain_jockey.emulator._forms import (
    MAX_HEADER_BLOCK,
    FilePart,
    Form,
    FormParser,
)
from langchain_jockey.emulator._requests import ApiError

B = "sep-Ar4t0r"
CT = f"multipart/form-data; boundary={B}"


def httpx_body(content: bytes) -> tuple[bytes, str]:
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"method": "direct", "user_metadata": '{"a": 1}'},
        files={"file": ("clip.mp4", content, "video/mp4")},
    )
    return request.read(), request.headers["content-type"]


def noise(seed: int, size: int) -> bytes:
    """Deterministic bytes that look random."""
    return hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)


def parse(body: bytes, content_type: str = CT, chunks=None, **limits) -> Form:
    parser = FormParser(content_type, **limits)
    for chunk in chunks if chunks is not None else [body]:
        parser.feed(chunk)
    return parser.close()


def form(*parts: bytes, boundary: str = B, end: bytes = b"--\r\n") -> bytes:
    """A body from raw parts (headers, blank line, content)."""
    delimiter = b"--" + boundary.encode()
    return b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + end


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file(name: str, filename: str, content: bytes, content_type: str = "video/mp4"):
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode() + content


def rejected(body: bytes, content_type: str = CT, **limits) -> str:
    with pytest.raises(ApiError) as caught:
        parse(body, content_type, **limits)
    assert (caught.value.status, caught.value.code) == (400, "parameter_invalid")
    return caught.value.message


CONTENT = noise(0, 300)
SMALL = form(
    field("method", b"direct"),
    field("user_metadata", b'{"a": 1}'),
    file("file", "clip.mp4", CONTENT),
)
EXPECTED = Form(
    fields={"method": "direct", "user_metadata": '{"a": 1}'},
    files={
        "file": FilePart(
            filename="clip.mp4",
            content_type="video/mp4",
            size=300,
            head=CONTENT[:100],
            sha256=hashlib.sha256(CONTENT).hexdigest(),
        )
    },
)


def test_the_body_httpx_builds_parses_to_its_fields_and_file() -> None:
    content = noise(1, 200_000)
    body, content_type = httpx_body(content)
    result = parse(body, content_type, head_bytes=1000)
    assert result.fields == {"method": "direct", "user_metadata": '{"a": 1}'}
    assert result.files == {
        "file": FilePart(
            filename="clip.mp4",
            content_type="video/mp4",
            size=len(content),
            head=content[:1000],
            sha256=hashlib.sha256(content).hexdigest(),
        )
    }


def test_every_split_point_of_a_small_body_gives_the_same_form() -> None:
    assert parse(SMALL, head_bytes=100) == EXPECTED
    for i in range(len(SMALL) + 1):
        assert parse(SMALL, chunks=[SMALL[:i], SMALL[i:]], head_bytes=100) == EXPECTED


def test_a_body_fed_one_byte_at_a_time_gives_the_same_form() -> None:
    chunks = [SMALL[i : i + 1] for i in range(len(SMALL))]
    assert parse(SMALL, chunks=chunks, head_bytes=100) == EXPECTED


LARGE_CONTENT = noise(2, 20_000)
LARGE, LARGE_TYPE = httpx_body(LARGE_CONTENT)
LARGE_FORM = parse(LARGE, LARGE_TYPE, head_bytes=5000)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, len(LARGE) - 1), max_size=200))
def test_any_chunking_of_a_larger_body_gives_the_same_form(cuts: set[int]) -> None:
    points = [0, *sorted(cuts), len(LARGE)]
    chunks = [LARGE[a:b] for a, b in itertools.pairwise(points)]
    assert parse(LARGE, LARGE_TYPE, chunks=chunks, head_bytes=5000) == LARGE_FORM
    assert LARGE_FORM.files["file"].size == len(LARGE_CONTENT)


def test_a_5_mb_file_fed_in_1_kib_chunks_keeps_memory_bounded() -> None:
    block = noise(3, 1024)
    blocks = 5 * 1024
    digest = hashlib.sha256()
    parser = FormParser(CT)
    tracemalloc.start()
    try:
        parser.feed(form(field("method", b"direct"), end=b""))
        parser.feed(b'\r\nContent-Disposition: form-data; name="file"; filename="a"')
        parser.feed(b"\r\n\r\n")
        for _ in range(blocks):
            digest.update(block)
            parser.feed(bytes(block))
        parser.feed(f"\r\n--{B}--\r\n".encode())
        result = parser.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024, peak  # the file is 5 MiB; the head is 64 KiB
    part = result.files["file"]
    assert part.size == blocks * 1024
    assert part.head == (block * 64)[:65536]
    assert len(part.head) == 65536
    assert part.sha256 == digest.hexdigest()


def test_a_1_mb_body_fed_one_byte_at_a_time_holds_only_a_delimiter_tail() -> None:
    content = noise(4, 1_000_000)
    body, content_type = httpx_body(content)
    parser = FormParser(content_type)
    delimiter = len(b"\r\n--") + len(content_type.partition("boundary=")[2])
    largest = 0
    for i in range(len(body)):
        parser.feed(body[i : i + 1])
        if parser._state == _forms._BODY:  # headers are capped apart
            largest = max(largest, len(parser._buffer))
    assert largest < delimiter
    assert parser.close().files["file"].sha256 == hashlib.sha256(content).hexdigest()


def test_boundary_like_bytes_inside_a_file_do_not_end_it() -> None:
    tricky = b"a\r\n--" + B[:-1].encode() + b"b\r\n--" + B.encode()[:3] + b"\r\n-"
    content = tricky * 3 + b"\r\n--" + B[:-1].encode()
    body = form(file("file", "x.bin", content), field("method", b"direct"))
    for i in range(len(body) + 1):
        result = parse(body, chunks=[body[:i], body[i:]])
        assert result.files["file"].head == content
        assert result.fields == {"method": "direct"}


def test_the_quoted_and_unquoted_boundary_both_work() -> None:
    quoted = 'multipart/form-data; boundary="weird =?b:o,u(n)d\'a+r_y"'
    body = form(field("a", b"1"), boundary="weird =?b:o,u(n)d'a+r_y")
    assert parse(body, quoted).fields == {"a": "1"}
    assert parse(form(field("a", b"1")), f"Multipart/Form-Data;boundary={B}").fields
    assert parse(form(field("a", b"1")), f'multipart/form-data; boundary="{B}"')


def test_a_missing_content_type_or_boundary_is_400() -> None:
    assert "no Content-Type" in rejected(SMALL, "")
    assert "no boundary" in rejected(SMALL, "multipart/form-data")
    assert "no boundary" in rejected(SMALL, "multipart/form-data; charset=utf-8")
    assert "not 1 to 70" in rejected(SMALL, "multipart/form-data; boundary=")
    assert "not 1 to 70" in rejected(SMALL, f"multipart/form-data; boundary={'x' * 71}")
    assert "not 1 to 70" in rejected(SMALL, 'multipart/form-data; boundary="a b "')
    assert "cannot be read" in rejected(SMALL, 'multipart/form-data; boundary="open')


def test_a_content_type_other_than_multipart_form_data_is_400_naming_it() -> None:
    assert "'application/json'" in rejected(SMALL, "application/json")
    assert "multipart/mixed" in rejected(SMALL, f"multipart/mixed; boundary={B}")


def test_a_body_without_its_closing_boundary_is_400() -> None:
    message = "The form ended before its closing boundary."
    for cut in (0, 10, len(SMALL) // 2, len(SMALL) - 5, len(SMALL) - 4):
        assert rejected(SMALL[:cut]) == message
    assert rejected(b"no delimiter at all") == message


def test_a_header_block_too_large_is_400() -> None:
    big = b"X-Pad: " + b"p" * MAX_HEADER_BLOCK + b"\r\n"
    body = form(big + field("a", b"1"))
    assert "over 16384 bytes" in rejected(body)
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    with pytest.raises(ApiError, match="over 16384 bytes"):
        parse(body, chunks=chunks)
    unterminated = form(end=b"\r\nContent-Disposition: x" + b"y" * MAX_HEADER_BLOCK)
    assert "over 16384 bytes" in rejected(unterminated)


def test_more_parts_than_max_parts_is_400() -> None:
    body = form(*(field(f"f{i}", b"v") for i in range(4)))
    assert len(parse(body, max_parts=4).fields) == 4
    assert rejected(body, max_parts=3) == "The form has more than 3 parts."


def test_a_field_over_field_limit_is_400_naming_it() -> None:
    body = form(field("user_metadata", b"x" * 11))
    assert parse(body, field_limit=11).fields == {"user_metadata": "x" * 11}
    assert "'user_metadata' is over 10 bytes" in rejected(body, field_limit=10)


def test_a_field_that_is_not_utf8_is_400_naming_it() -> None:
    assert "'method' is not UTF-8" in rejected(form(field("method", b"\xff\xfe")))
    assert parse(form(field("m", "été".encode()))).fields == {"m": "été"}


@pytest.mark.parametrize(
    ("part", "says"),
    [
        (b"\r\nbody", "no headers"),
        (b"Content-Type: text/plain\r\n\r\nv", "no Content-Disposition"),
        (b'Content-Disposition: attachment; name="a"\r\n\r\nv', "not form-data"),
        (b"Content-Disposition: form-data\r\n\r\nv", "has no name"),
        (b"Content-Disposition form-data\r\n\r\nv", "not 'Name: value'"),
        (b'Content-Disposition: form-data; name="\xff"\r\n\r\nv', "not UTF-8"),
        (b"Content-Disposition: form-data; name=a; filename*=latin9''x\r\n\r\n", "*"),
        (b"Content-Disposition: form-data; name=a; filename*=utf-8''%ff\r\n\r\n", "*"),
    ],
)
def test_a_malformed_part_is_400(part: bytes, says: str) -> None:
    assert says in rejected(form(part))


def test_a_boundary_line_not_ending_in_crlf_or_dashes_is_400() -> None:
    body = f"--{B}\r\n".encode() + field("a", b"1") + f"\r\n--{B}x\r\n".encode()
    assert "something other than CRLF" in rejected(body)
    padded = f"--{B}".encode() + b" " * 1025 + b"\r\n" + field("a", b"1")
    assert "too much white space" in rejected(padded)


def test_an_error_is_raised_again_on_later_calls() -> None:
    parser = FormParser(CT, max_parts=0)
    with pytest.raises(ApiError):
        parser.feed(SMALL)
    with pytest.raises(ApiError, match="more than 0 parts"):
        parser.feed(b"")
    with pytest.raises(ApiError, match="more than 0 parts"):
        parser.close()


def test_preamble_epilogue_and_transport_padding_are_ignored() -> None:
    body = b"preamble --" + B.encode() + b"\r\n--" + B.encode() + b" \t\r\n"
    body += field("a", b"1") + f"\r\n--{B}--epilogue \r\n--{B}\r\n junk".encode()
    for i in range(len(body) + 1):
        assert parse(body, chunks=[body[:i], body[i:]]) == Form({"a": "1"}, {})


def test_the_last_part_of_a_name_wins_field_or_file() -> None:
    body = form(field("a", b"1"), field("a", b"2"), file("f", "x", b"x"))
    assert parse(body).fields == {"a": "2"}
    replaced = parse(form(file("a", "x", b"x"), field("a", b"3")))
    assert (replaced.fields, replaced.files) == ({"a": "3"}, {})
    assert set(parse(form(field("a", b"3"), file("a", "x", b"x"))).files) == {"a"}


def test_file_names_quoted_escaped_extended_and_empty() -> None:
    def filename(disposition: bytes) -> str | None:
        part = b"Content-Disposition: form-data; " + disposition + b"\r\n\r\nc"
        return parse(form(part)).files["f"].filename

    assert filename(rb'name="f"; filename="say \"hi\".mp4"') == 'say "hi".mp4'
    assert filename(rb'name="f"; filename="C:\clips\a;b.mp4"') == r"C:\clips\a;b.mp4"
    assert filename(rb'name="f"; filename="\\x"') == "\\x"
    assert filename(b"name=f; filename=plain.mp4") == "plain.mp4"
    assert filename('name=f; filename="naïve.mp4"'.encode()) == "naïve.mp4"
    extended = b"name=f; filename=\"x\"; filename*=UTF-8''na%C3%AFve.mp4"
    assert filename(extended) == "naïve.mp4"
    assert filename(b'name="f"; filename=""') is None


def test_a_file_without_content_type_and_an_empty_file() -> None:
    part = b'Content-Disposition: form-data; name="f"; filename="e"\r\n\r\n'
    empty = parse(form(part)).files["f"]
    assert empty == FilePart("e", None, 0, b"", hashlib.sha256().hexdigest())
