"""Structured output: a Pydantic schema, with partial objects printed as they fill in."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from _common import jockey


class Moment(BaseModel):
    title: str = Field(description="the video's title")
    description: str = Field(description="what happens")
    start_sec: float
    end_sec: float


class Answer(BaseModel):
    summary: str
    moments: list[Moment]


with jockey() as llm:
    structured = llm.with_structured_output(Answer)
    last = None
    for partial in structured.stream("When do the fishing boats leave and return?"):
        # Partial objects are not validated yet: every field is readable, and
        # one still missing is None (nested moments are Moment objects).
        filled = json.dumps(partial.model_dump(), default=str)
        print(f"partial ({len(filled):3d} chars): …{filled[-60:]}", flush=True)
        last = partial
    assert isinstance(last, Answer)
    print(f"\nfinal ({len(last.moments)} moments):")
    for moment in last.moments:
        print(
            f"- {moment.title} {moment.start_sec:g}-{moment.end_sec:g}s: {moment.description}"
        )
