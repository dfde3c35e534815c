"""Streamed structured output: a partial never shows a value the answer does not hold.

A number, `true`, `false` or `null` appears only once its JSON token is
complete; a string only grows; a value has the schema's type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel, HttpUrl
from pydantic import v1 as pydantic_v1

from langchain_jockey._structured import JockeyJsonParser, complete_tokens


class Moment(BaseModel):
    title: str
    start_sec: float
    end_sec: float
    verified: bool | None = None
    note: str | None = None


class Answer(BaseModel):
    moments: list[Moment]
    count: int


class AnswerV1(pydantic_v1.BaseModel):
    title: str
    start_sec: float


FINAL = {
    "moments": [
        {
            "title": 'Harbour "at" dawn \\ é ☃ \U0001f41f',
            "start_sec": 42,
            "end_sec": 225.5,
            "verified": True,
            "note": None,
        },
        {
            "title": "Fish market",
            "start_sec": -1.25e2,
            "end_sec": 1e3,
            "verified": False,
            "note": "a\nb",
        },
    ],
    "count": 2,
}
TEXT = json.dumps(FINAL, ensure_ascii=True)  # \u escapes and \" in the stream


def partials(text: str, cuts: list[int], schema: Any = None) -> Iterator[Any]:
    """What the parser yields for `text` cut into deltas at `cuts`."""
    bounds = [0, *sorted(set(cuts)), len(text)]
    chunks = [
        AIMessageChunk(content=text[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a
    ]
    return JockeyJsonParser(pydantic_object=schema).transform(iter(chunks))


def holds(partial: Any, final: Any) -> bool:
    """Whether every value in `partial` is the final one, or a prefix of a string."""
    if isinstance(partial, dict):
        return all(k in final and holds(v, final[k]) for k, v in partial.items())
    if isinstance(partial, list):
        return len(partial) <= len(final) and all(
            holds(p, f) for p, f in zip(partial, final)
        )
    if isinstance(partial, str):
        return isinstance(final, str) and final.startswith(partial)
    return type(partial) is type(final) and partial == final


def test_every_cut_of_the_answer_gives_only_values_it_holds() -> None:
    for cut in range(1, len(TEXT)):
        for partial in partials(TEXT, [cut]):
            assert holds(partial, FINAL), (TEXT[:cut], partial)


def test_one_character_at_a_time_numbers_appear_only_complete() -> None:
    seen = [p for p in partials(TEXT, list(range(len(TEXT)))) if p]
    starts = {m.get("start_sec") for p in seen for m in p.get("moments", [])[:1]}
    assert starts <= {None, 42}  # never 4
    ends = {m.get("end_sec") for p in seen for m in p.get("moments", [])[:1]}
    assert ends <= {None, 225.5}  # never 2, 22 or 225
    assert seen[-1] == FINAL


@given(st.lists(st.integers(min_value=1, max_value=len(TEXT) - 1), max_size=40))
def test_any_split_into_deltas_gives_only_values_the_answer_holds(
    cuts: list[int],
) -> None:
    for partial in partials(TEXT, cuts):
        assert holds(partial, FINAL)


def test_partial_models_have_the_schemas_types() -> None:
    seen = list(partials(TEXT, list(range(0, len(TEXT), 3)), Answer))
    for partial in seen:
        for moment in partial.moments or []:
            for name in ("start_sec", "end_sec"):
                value = getattr(moment, name)
                assert value is None or type(value) is float, (name, value)
            assert moment.verified in (None, True, False)
    assert seen[-1].moments[0].start_sec == 42.0


def test_partial_pydantic_v1_objects_have_the_schemas_types() -> None:
    text = '{"title": "Harbour", "start_sec": 42}'
    seen = list(partials(text, list(range(len(text))), AnswerV1))
    assert {type(p.start_sec) for p in seen} <= {type(None), float}


@pytest.mark.parametrize(
    ("text", "cut_to"),
    [
        ('{"a": 1, "b": 22', '{"a": 1, "b": '),
        ('{"a": 2.', '{"a": '),
        ('{"a": -', '{"a": '),
        ('{"a": 1e', '{"a": '),
        ("[tru", "["),
        ("[fals", "["),
        ('{"a": nul', '{"a": '),
        ('{"a": "x\\', '{"a": "x'),
        ('{"a": "x\\u00', '{"a": "x'),
        ('{"a": "x\\u00e9', '{"a": "x\\u00e9'),
        ('{"a": "x\\"y', '{"a": "x\\"y'),
        ('{"a": "q\\\\', '{"a": "q\\\\'),
        ('{"a": "q\\\\", "b": fal', '{"a": "q\\\\", "b": '),
        ('{"a": 12, ', '{"a": 12, '),
        ('{"a": [1, 2]', '{"a": [1, 2]'),
    ],
)
def test_complete_tokens_cuts_an_unfinished_scalar_or_escape(
    text: str, cut_to: str
) -> None:
    assert complete_tokens(text) == cut_to


class Event(BaseModel):
    when: datetime
    link: HttpUrl | None = None
    score: float


class ConstrainedV1(pydantic_v1.BaseModel):
    score: pydantic_v1.confloat(ge=0)  # type: ignore[valid-type]
    tags: pydantic_v1.conlist(str, min_items=1)  # type: ignore[valid-type]
    label: str


@pytest.mark.parametrize(
    "text",
    [
        '{"when": "2024-01-15T10:30:00Z", "link": "https://example.com/a", "score": 2}',
        # the date last: every required field is there while it is still half
        '{"score": 2, "link": "https://example.com/a", "when": "2024-01-15T10:30:00Z"}',
    ],
)
def test_half_a_date_or_a_url_stays_the_string_received(text) -> None:
    seen = list(partials(text, list(range(len(text))), Event))
    whens = [p.when for p in seen if p.when is not None]
    assert all(isinstance(w, str) for w in whens[:-1])  # never a made-up datetime
    assert all("2024-01-15T10:30:00Z".startswith(w) for w in whens[:-1])
    links = [p.link for p in seen[:-1] if p.link is not None]
    assert all("https://example.com/a".startswith(str(u)) for u in links)
    assert seen[-1].score == 2.0


def test_pydantic_v1_constrained_types_stream() -> None:
    text = '{"score": 0.9, "tags": ["save", "goal"], "label": "keeper"}'
    seen = list(partials(text, list(range(0, len(text), 2)), ConstrainedV1))
    assert seen[-1].label == "keeper"
    assert seen[-1].score == 0.9


def test_streaming_a_large_answer_parses_it_a_bounded_number_of_times(
    monkeypatch,
) -> None:
    # Linear, not quadratic: an 80 KB answer in 5-character deltas (16,000 of
    # them) is parsed, in all, a few times its length, not once per delta.
    from langchain_jockey import _structured

    parsed: list[int] = []
    real = _structured.parse_partial_json

    def counting(text: str) -> Any:
        parsed.append(len(text))
        return real(text)

    monkeypatch.setattr(_structured, "parse_partial_json", counting)
    answer = json.dumps(
        {"moments": [{"title": "x" * 70, "start_sec": i} for i in range(1000)]}
    )
    assert len(answer) > 80_000
    seen = list(partials(answer, list(range(5, len(answer), 5))))
    assert seen[-1] == json.loads(answer)
    assert sum(parsed) <= 8 * len(answer)
    assert len(seen) > 20  # and still many partials along the way


class Count(BaseModel):
    n: int
    label: str


def test_half_a_numeric_string_is_not_made_a_number() -> None:
    text = '{"label": "x", "n": "12345"}'
    seen = list(partials(text, list(range(len(text))), Count))
    values = [p.n for p in seen[:-1] if p.n is not None]
    assert all(isinstance(v, str) and "12345".startswith(v) for v in values)
