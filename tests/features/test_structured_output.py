"""with_structured_output against the emulator: parsed objects, partials, raw, truncation."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel, Field
from pydantic import v1 as pydantic_v1
from typing_extensions import TypedDict

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import FAULT_HEADER
from tests.support import run

QUESTION = "When do the fishing boats leave?"


class Moment(BaseModel):
    title: str = Field(description="video title")
    description: str
    start_sec: float
    end_sec: float


class Answer(BaseModel):
    """The moments that answer the question."""

    summary: str
    moments: list[Moment]


class AnswerV1(pydantic_v1.BaseModel):
    summary: str
    start_sec: float


class AnswerDict(TypedDict):
    summary: str
    moments: list[str]


def test_pydantic_schema_gives_a_validated_object(mode, llm) -> None:
    result = run(mode, llm.with_structured_output(Answer), QUESTION)
    assert isinstance(result, Answer)
    assert result.moments
    assert result.moments[0].title == "Harbour at dawn (timelapse)"
    assert all(m.start_sec < m.end_sec for m in result.moments)


def test_pydantic_v1_typeddict_and_dict_schemas(mode, llm) -> None:
    v1 = run(mode, llm.with_structured_output(AnswerV1), QUESTION)
    assert isinstance(v1, AnswerV1)
    typed = run(mode, llm.with_structured_output(AnswerDict), QUESTION)
    assert isinstance(typed, dict)
    assert set(typed) == {"summary", "moments"}
    schema = Answer.model_json_schema()
    as_dict = run(mode, llm.with_structured_output(schema), QUESTION)
    assert as_dict == Answer.model_validate(as_dict).model_dump()


def test_request_carries_the_schema_as_text_format(emulator, llm) -> None:
    llm.with_structured_output(AnswerV1, strict=True).invoke(QUESTION)
    fmt = emulator.requests[-1].body["text"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["name"] == "AnswerV1"
    assert fmt["strict"] is True
    assert fmt["schema"]["properties"]["start_sec"]["type"] == "number"


class Inner(pydantic_v1.BaseModel):
    title: str


class Outer(pydantic_v1.BaseModel):
    best: Inner


def test_pydantic_v1_definitions_become_defs(emulator, llm) -> None:
    assert isinstance(llm.with_structured_output(Outer).invoke(QUESTION).best, Inner)
    sent = emulator.requests[-1].body["text"]["format"]["schema"]
    assert "$defs" in sent
    assert "definitions" not in sent
    assert sent["properties"]["best"]["$ref"].startswith("#/$defs/")


def test_schema_title_is_made_a_valid_format_name(emulator, llm) -> None:
    schema = {
        "title": "My answer: moments!",
        "type": "object",
        "properties": {"summary": {"type": "string"}},
    }
    llm.with_structured_output(schema).invoke(QUESTION)
    assert emulator.requests[-1].body["text"]["format"]["name"] == "My_answer_moments"


def test_streaming_yields_progressively_filled_objects(mode, llm) -> None:
    parts = run(mode, llm.with_structured_output(Answer), QUESTION, method="stream")
    assert len(parts) >= 4  # at least 3 distinct partial objects before the final one
    assert all(isinstance(p, Answer) for p in parts)
    assert len({repr(p) for p in parts}) == len(parts)
    assert len(parts[0].model_dump_json()) < len(parts[-1].model_dump_json())
    assert parts[-1] == Answer.model_validate(
        parts[-1].model_dump()
    )  # the last is complete
    dict_parts = run(
        mode, llm.with_structured_output(AnswerDict), QUESTION, method="stream"
    )
    assert len(dict_parts) >= 4
    assert dict_parts[-1] == run(mode, llm.with_structured_output(AnswerDict), QUESTION)


def test_include_raw_returns_raw_parsed_and_no_error(mode, llm) -> None:
    out = run(mode, llm.with_structured_output(Answer, include_raw=True), QUESTION)
    assert set(out) == {"raw", "parsed", "parsing_error"}
    assert isinstance(out["parsed"], Answer)
    assert out["parsing_error"] is None
    assert out["raw"].response_metadata["session_id"].startswith("sess_")


def test_truncated_answer_gives_a_parsing_error_that_says_so(mode, emulator) -> None:
    llm = ChatJockey(
        **emulator.chat_kwargs(), default_headers={FAULT_HEADER: "truncate_after=5"}
    )
    out = run(mode, llm.with_structured_output(Answer, include_raw=True), QUESTION)
    assert out["parsed"] is None
    assert "truncated" in str(out["parsing_error"])
    assert out["raw"].response_metadata["status"] == "incomplete"
    with pytest.raises(Exception, match="truncated"):
        run(mode, llm.with_structured_output(Answer), QUESTION, method="stream")


@pytest.mark.parametrize("method", ["json_mode", "function_calling"])
def test_other_methods_warn_and_use_json_schema(llm, method) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runnable = llm.with_structured_output(Answer, method=method)
    assert any("json_schema" in str(w.message) for w in caught)
    assert isinstance(runnable.invoke(QUESTION), Answer)


class _Options(BaseCallbackHandler):
    def __init__(self) -> None:
        self.options: list[dict[str, Any]] = []

    def on_chat_model_start(
        self, serialized, messages, *, options=None, **kwargs
    ) -> None:  # type: ignore[override]
        self.options.append(options or {})


def test_tracing_sees_the_schema(llm) -> None:
    handler = _Options()
    llm.with_structured_output(Answer).invoke(QUESTION, config={"callbacks": [handler]})
    list(
        llm.with_structured_output(Answer).stream(
            QUESTION, config={"callbacks": [handler]}
        )
    )
    assert len(handler.options) == 2
    for options in handler.options:
        assert options["ls_structured_output_format"][
            "schema"
        ] == convert_to_json_schema(Answer)


def test_streamed_partials_are_safe_to_read_with_nested_models(mode, llm) -> None:
    parts = run(mode, llm.with_structured_output(Answer), QUESTION, method="stream")
    for part in parts[:-1]:
        # Every declared field is readable; a missing one is None.
        assert part.summary is None or isinstance(part.summary, str)
        assert part.moments is None or isinstance(part.moments, list)
        for moment in part.moments or []:
            assert isinstance(moment, Moment)  # a model, not a dict
            for name in Moment.model_fields:
                getattr(moment, name)  # never AttributeError
    early = [p for p in parts if p.moments is None]
    assert early, "some partial arrived before the moments did"
    assert any(p.moments and p.moments[-1].end_sec is None for p in parts), (
        "some partial moment arrived before its end_sec"
    )
    assert isinstance(parts[-1].moments[0], Moment)
    assert parts[-1] == Answer.model_validate(parts[-1].model_dump())


def test_partial_objects_take_field_defaults_for_missing_fields() -> None:
    from langchain_jockey._structured import partial_object

    class WithDefaults(BaseModel):
        title: str = "untitled"
        tags: list[str] = Field(default_factory=list)
        moment: Moment | None = None
        required: int

    part = partial_object(WithDefaults, {"moment": {"title": "Goal"}})
    assert part.title == "untitled"
    assert part.tags == []
    assert part.required is None
    assert isinstance(part.moment, Moment)
    assert part.moment.title == "Goal"
    assert part.moment.start_sec is None

    class Legacy(pydantic_v1.BaseModel):
        inner: AnswerV1
        note: str = "n"

    legacy = partial_object(Legacy, {"inner": {"summary": "s"}})
    assert isinstance(legacy.inner, AnswerV1)
    assert legacy.inner.start_sec is None
    assert legacy.note == "n"
