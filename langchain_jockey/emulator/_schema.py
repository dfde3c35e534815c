"""Structured output: a JSON value valid for a `text.format` JSON schema.

Supports what docs/protocol.md lists: object, array, string, number, integer,
boolean, null, `enum`, `const`, `anyOf` (and `oneOf`, `type` lists),
`$ref` into root `$defs` (also `definitions`, which Pydantic v1 writes), and
`minItems`/`maxItems`, `minimum`/`maximum`, `minLength`/`maxLength`. Like the
platform, every property is filled in (it adds all of them to `required`).
Values are drawn from the matched moments, chosen by the property's name.
"""

from __future__ import annotations

import math
import re
from typing import Any

from langchain_jockey.emulator._store import Moment, tokens

__all__ = ["SchemaError", "instance"]

_MAX_DEPTH = 8


class SchemaError(ValueError):
    """The schema cannot be used (a `$ref` that does not resolve, a bad type)."""


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        for prefix in ("#/$defs/", "#/definitions/"):
            if isinstance(ref, str) and ref.startswith(prefix):
                target = root.get(prefix[2:-1], {}).get(ref[len(prefix) :])
                break
        else:
            target = root if ref == "#" else None
        if not isinstance(target, dict):
            msg = f"$ref {ref!r} does not resolve to a schema in the root $defs"
            raise SchemaError(msg)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest}
        seen += 1
        if seen > 32:
            msg = f"$ref {ref!r} loops"
            raise SchemaError(msg)
    return schema


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        return non_null[0] if non_null else "null"
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
    return kind if isinstance(kind, str) else None


def _string(name: str, moment: Moment | None, schema: dict[str, Any]) -> str:
    words = set(re.findall(r"[a-z]+", name.lower()))
    if moment is None:
        value = "nothing in the knowledge store matches"
    elif words & {"title", "video", "name", "source"}:
        value = moment.video.title
    elif words & {"time", "timestamp", "range", "when"}:
        value = moment.time_range
    elif words & {"id", "item"}:
        value = moment.video.item_id
    elif words & {"url", "link"}:
        value = str(moment.citation(0, 0)["hls_url"])
    elif schema.get("format") == "date-time":
        value = "2026-07-11T03:13:57Z"
    else:
        value = moment.description
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if len(value) < low:
        value = value.ljust(low, ".")
    if isinstance(high, int):
        value = value[:high]
    return value


def _number(
    name: str, moment: Moment | None, schema: dict[str, Any], *, integer: bool
) -> float | int:
    words = tokens(name.replace("_", " "))
    value: float
    if moment is None:
        value = 0.0
    elif words & {"end", "stop", "finish"}:
        value = moment.end_sec
    elif words & {"duration", "length"}:
        value = moment.video.duration
    elif words & {"score", "confidence", "relevance", "probability"}:
        value = 0.9
    elif words & {"count", "number", "total", "num", "index", "rank"}:
        value = moment.index + 1
    else:
        value = moment.start_sec
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, (int, float)):
        value = max(value, float(low))
    if isinstance(high, (int, float)):
        value = min(value, float(high))
    if integer:
        result = math.floor(value)
        if isinstance(low, (int, float)) and result < low:
            result = math.ceil(low)
        return result
    return value


def _enum(values: list[Any], moment: Moment | None) -> Any:
    if moment is not None:
        words = moment.words | moment.video.title_words
        for value in values:
            if isinstance(value, str) and tokens(value) & words:
                return value
    return values[0]


def instance(
    schema: Any,
    moments: list[Moment],
    *,
    root: dict[str, Any] | None = None,
    name: str = "",
    moment: Moment | None = None,
    depth: int = 0,
) -> Any:
    """A value that validates against `schema`, built from `moments`.

    Raises:
        SchemaError: for a schema that cannot be satisfied or resolved.
    """
    if schema is True or schema == {}:
        return moment.description if moment else None
    if not isinstance(schema, dict):
        where = name or "the root"
        msg = f"schema at {where} must be an object, not {type(schema).__name__}"
        raise SchemaError(msg)
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if moment is None and moments:
        moment = moments[0]
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _enum(schema["enum"], moment)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            resolved = [
                _resolve(o, root) if isinstance(o, dict) else o for o in options
            ]
            usable = [
                o
                for o in resolved
                if not (isinstance(o, dict) and o.get("type") == "null")
            ]
            if not usable or depth >= _MAX_DEPTH:
                return None
            return instance(
                usable[0], moments, root=root, name=name, moment=moment, depth=depth + 1
            )
    kind = _kind(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            msg = f"'properties' at {name or 'the root'} must be an object"
            raise SchemaError(msg)
        return {
            key: instance(
                sub, moments, root=root, name=key, moment=moment, depth=depth + 1
            )
            for key, sub in props.items()
        }
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = len(moments) if moments else 0
        if depth >= _MAX_DEPTH:
            count = 0
        count = max(count, low)
        if isinstance(high, int):
            count = min(count, high)
        items = schema.get("items", {})
        return [
            instance(
                items,
                moments,
                root=root,
                name=name,
                moment=moments[i % len(moments)] if moments else None,
                depth=depth + 1,
            )
            for i in range(count)
        ]
    if kind == "string":
        return _string(name, moment, schema)
    if kind in ("number", "integer"):
        return _number(name, moment, schema, integer=kind == "integer")
    if kind == "boolean":
        return moment is not None
    if kind == "null":
        return None
    if kind is None:
        return moment.description if moment else None
    msg = f"unsupported type {kind!r} at {name or 'the root'}"
    raise SchemaError(msg)
