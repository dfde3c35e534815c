"""SSE framing: byte boundaries, line endings and field rules (WHATWG SSE)."""

from __future__ import annotations

import json

import pytest

from langchain_jockey._sse import SSEDecoder
from tests.support import awkward_splits, events_of, transcript


def decode(chunks: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.flush())
    return out


@pytest.mark.parametrize(
    "name", ["plain_answer", "intermediate_outputs", "unknown_events"]
)
def test_every_fragmentation_yields_the_same_events(name: str) -> None:
    body = transcript(name)
    expected = [*events_of(body), "[DONE]"]
    for label, chunks in awkward_splits(body).items():
        got = [d.decode() if d == b"[DONE]" else json.loads(d) for d in decode(chunks)]
        assert got == expected, label


def test_data_without_space_and_other_fields_are_handled() -> None:
    body = b'event: x\nid: 7\nretry: 10\nfoo: bar\ndata:{"a":1}\n\n:comment\n\ndata: {"b":2}\n\n'
    assert decode([body]) == [b'{"a":1}', b'{"b":2}']


def test_multiple_data_lines_join_with_newline() -> None:
    assert decode([b"data: [1,\ndata: 2]\n\n"]) == [b"[1,\n2]"]


def test_unicode_line_separators_inside_json_do_not_split_an_event() -> None:
    payload = json.dumps({"delta": "a\u2028b\u2029c\x85d"}, ensure_ascii=False).encode()
    assert (
        json.loads(decode([b"data: " + payload + b"\n\n"])[0])["delta"]
        == "a\u2028b\u2029c\x85d"
    )


def test_event_with_empty_data_is_not_dispatched() -> None:
    assert decode([b"data:\n\ndata: \n\n"]) == []


def test_leading_bom_is_dropped_even_when_split() -> None:
    assert decode([b"\xef", b"\xbb\xbfdata: 1\n\n"]) == [b"1"]


def test_unterminated_last_event_is_returned_by_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [b"[DONE]"]


def test_cr_ends_a_line_at_once_and_its_lf_in_the_next_read_is_dropped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\r") == []
    assert decoder.feed(b"\n\r") == [b"1"]  # dispatched without waiting for more
    assert decoder.feed(b"\ndata: 2\r\r") == [b"2"]
    assert decoder.feed(b"\n") == []  # the LF of the last CRLF, not a blank line
    assert decoder.feed(b"data: 3\n\n") == [b"3"]


def test_an_endless_line_is_held_up_to_the_cap_and_no_further() -> None:
    from langchain_jockey._sse import EventTooLarge, SSEDecoder

    cap = 1024 * 1024
    decoder = SSEDecoder(max_event_bytes=cap)
    decoder.feed(b"data: ")
    fed = 6
    with pytest.raises(EventTooLarge) as caught:
        for _ in range(10_000):  # 40 MB if it were all kept
            held = sum(len(p) for p in decoder._pending or ())
            assert held <= cap
            decoder.feed(b"a" * 4096)
            fed += 4096
    assert caught.value.limit == cap
    assert fed <= cap + 4096 + 6  # it stopped at the first piece past the cap


def test_events_completed_before_the_cap_are_handed_over() -> None:
    from langchain_jockey._sse import EventTooLarge, SSEDecoder

    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(EventTooLarge) as caught:
        decoder.feed(b'data: {"a":1}\n\ndata: ' + b"x" * 200)
    assert caught.value.completed == [b'{"a":1}']
