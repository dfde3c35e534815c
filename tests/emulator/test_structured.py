"""Structured output: `text.format` json_schema -> JSON valid for the schema (docs/protocol.md)."""

from __future__ import annotations

import copy
import json
from typing import Literal, Optional

import jsonschema
import pytest
from pydantic import BaseModel
from pydantic import v1 as pydantic_v1

from tests.emulator.conftest import answer_text, body, stream_events

MOMENT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "start_sec": {"type": "number"},
        "end_sec": {"type": "number"},
    },
}


class Clip(BaseModel):
    title: str
    start_sec: float
    end_sec: float
    kind: Literal["goal", "save", "other"]


class Highlights(BaseModel):
    best: Clip
    others: list[Clip]
    comment: Optional[str]  # noqa: UP045 - the Optional form is what users write


class JokeV1(pydantic_v1.BaseModel):
    setup: str
    punchline: str


SCHEMAS = {
    "flat": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "start_sec": {"type": "number"}},
    },
    "nested": {
        "type": "object",
        "properties": {
            "video": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "duration": {"type": "number"},
                },
            },
            "moment": MOMENT,
        },
    },
    "array_of_objects": {
        "type": "object",
        "properties": {"moments": {"type": "array", "items": MOMENT}},
    },
    "enums": {
        "type": "object",
        "properties": {
            "sport": {"type": "string", "enum": ["cycling", "football", "baking"]},
            "level": {"enum": ["low", "high"]},
        },
    },
    "bounded_integers": {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 1, "maximum": 2},
            "start_second": {"type": "integer", "minimum": 0},
        },
    },
    "booleans": {
        "type": "object",
        "properties": {
            "has_goal": {"type": "boolean"},
            "is_outdoors": {"type": "boolean"},
        },
    },
    "nullable_anyof": {
        "type": "object",
        "properties": {
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "score": {"anyOf": [{"type": "null"}, {"type": "number", "maximum": 1}]},
            "maybe": {"type": ["string", "null"]},
        },
    },
    "defs_and_refs": {
        "$defs": {
            "Moment": MOMENT,
            "Pair": {"type": "object", "properties": {"a": {"$ref": "#/$defs/Moment"}}},
        },
        "type": "object",
        "properties": {
            "best": {"$ref": "#/$defs/Moment"},
            "others": {"type": "array", "items": {"$ref": "#/$defs/Pair"}},
        },
    },
    "array_bounds": {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string", "maxLength": 12},
                "minItems": 4,
                "maxItems": 5,
            },
            "none": {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
        },
    },
    "const_and_null": {
        "type": "object",
        "properties": {"version": {"const": 2}, "nothing": {"type": "null"}},
    },
    "top_level_array": {"type": "array", "items": {"type": "string"}},
    "pydantic_v2": Highlights.model_json_schema(),
    "pydantic_v1": JokeV1.schema(),
    "deep": {
        "type": "object",
        "properties": {
            "a": {
                "type": "object",
                "properties": {
                    "b": {
                        "type": "object",
                        "properties": {
                            "c": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"d": {"type": "integer"}},
                                },
                            }
                        },
                    }
                },
            }
        },
    },
}


def strictified(schema):
    """The schema as the platform rewrites it: every property required, no extras."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def structured(client, schema, question="What happens in the football final?", **extra):
    fmt = {"type": "json_schema", "name": "answer", "schema": schema}
    events = stream_events(client, body(question, text={"format": fmt}, **extra))
    return events, answer_text(events)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_output_validates_against_the_schema(client, name) -> None:
    schema = SCHEMAS[name]
    events, text = structured(client, schema)
    value = json.loads(text)
    jsonschema.validate(value, strictified(schema))
    assert (
        sum(e["type"] == "response.output_text.delta" for e in events) > 1
    )  # streamed
    final = events[-1]["response"]["output"][-1]["content"][0]
    assert final["text"] == text
    assert final["annotations"] == []


def test_values_are_drawn_from_the_matched_moments(client) -> None:
    _, text = structured(
        client, SCHEMAS["array_of_objects"], "When do the fishing boats leave?"
    )
    moments = json.loads(text)["moments"]
    assert moments[0]["title"] == "Harbour at dawn (timelapse)"
    assert "fishing boats" in " ".join(m["description"] for m in moments)
    assert all(m["start_sec"] < m["end_sec"] for m in moments)


def test_enum_values_follow_the_matched_moments(client) -> None:
    _, text = structured(
        client, SCHEMAS["enums"], "What happens in the football final?"
    )
    assert json.loads(text)["sport"] == "football"


def test_non_streaming_structured_output_is_the_same_json(client) -> None:
    fmt = {"type": "json_schema", "name": "answer", "schema": SCHEMAS["nested"]}
    _, streamed = structured(client, SCHEMAS["nested"])
    plain = client.post(
        "/responses",
        json=body("What happens in the football final?", text={"format": fmt}),
    ).json()
    assert plain["output"][0]["content"][0]["text"] == streamed


def test_unresolvable_ref_is_a_bad_request(client) -> None:
    fmt = {
        "type": "json_schema",
        "name": "answer",
        "schema": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}},
    }
    response = client.post("/responses", json=body(text={"format": fmt}))
    assert response.status_code == 400
    assert "$ref" in response.json()["message"]
