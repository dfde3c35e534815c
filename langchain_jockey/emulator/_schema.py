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
"""Arrays and `anyOf` stop recursing here (a recursive `$ref` ends)."""
_MAX_NESTING = 32
"""Deeper than this, the schema is refused (an object `$ref`-ing itself would be)."""
_MAX_SIZE = 100_000
"""The most values and characters one answer may hold."""


class SchemaError(ValueError):
    """The schema cannot be used (a `$ref` that does not resolve, a bad type)."""


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        for prefix in ("#/$defs/", "#/definitions/"):
            if isinstance(ref, str) and ref.startswith(prefix):
                defs = root.get(prefix[2:-1])
                target = (
                    defs.get(ref[len(prefix) :]) if isinstance(defs, dict) else None
                )
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


def _string(
    name: str, moment: Moment | None, schema: dict[str, Any], low: int, high: int | None
) -> str:
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
    value = value.ljust(low, ".")
    return value if high is None else value[:high]


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
    low, high = _limit(schema, "minimum"), _limit(schema, "maximum")
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    if integer:
        result = math.floor(value)
        if low is not None and result < low:
            result = math.ceil(low)
        return result
    return value


def _limit(schema: dict[str, Any], key: str) -> float | None:
    """A numeric bound such as `minimum` as a float; `None` when it is no number.

    Raises:
        SchemaError: for an integer past a float's range (10**400).
    """
    value = schema.get(key)
    if not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        msg = f"{key} is too large"
        raise SchemaError(msg) from None


def _whole(schema: dict[str, Any], key: str) -> int | None:
    """A count such as `minItems`; `None` when absent.

    Raises:
        SchemaError: when it is not a whole number of at least 0.
    """
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ok = False
    else:
        ok = value >= 0 and value == int(value)
    if not ok:
        msg = f"{key} must be a whole number of at least 0, not {value!r}"
        raise SchemaError(msg)
    return int(value)


def _enum(values: list[Any], moment: Moment | None) -> Any:
    if moment is not None:
        words = moment.words | moment.video.title_words
        for value in values:
            if isinstance(value, str) and tokens(value) & words:
                return value
    return values[0]


def instance(schema: Any, moments: list[Moment]) -> Any:
    """A value that validates against `schema`, built from `moments`.

    Raises:
        SchemaError: for a schema that cannot be satisfied or resolved, that nests
            deeper than `_MAX_NESTING` (a `$ref` loop through objects does), or
            whose value would pass `_MAX_SIZE` values and characters.
    """
    return _Builder(schema, moments).value(schema, "", None, 0)


class _Builder:
    """Builds one value, counting its values and characters against `_MAX_SIZE`."""

    def __init__(self, root: Any, moments: list[Moment]) -> None:
        self.root = root if isinstance(root, dict) else {}
        self.moments = moments
        self.size = 0

    def spend(self, amount: int) -> None:
        self.size += amount
        if self.size > _MAX_SIZE:
            msg = f"the value would hold more than {_MAX_SIZE:,} values and characters"
            raise SchemaError(msg)

    def value(self, schema: Any, name: str, moment: Moment | None, depth: int) -> Any:
        where = name or "the root"
        if depth > _MAX_NESTING:
            msg = f"the schema nests deeper than {_MAX_NESTING} levels at {where}"
            raise SchemaError(msg)
        self.spend(1)
        moments = self.moments
        if schema is True or schema == {}:
            return moment.description if moment else None
        if not isinstance(schema, dict):
            msg = f"schema at {where} must be an object, not {type(schema).__name__}"
            raise SchemaError(msg)
        schema = _resolve(schema, self.root)
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
                    _resolve(o, self.root) if isinstance(o, dict) else o
                    for o in options
                ]
                usable = [
                    o
                    for o in resolved
                    if not (isinstance(o, dict) and o.get("type") == "null")
                ]
                if not usable or depth >= _MAX_DEPTH:
                    return None
                return self.value(usable[0], name, moment, depth + 1)
        kind = _kind(schema)
        if kind == "object":
            props = schema.get("properties") or {}
            if not isinstance(props, dict):
                msg = f"'properties' at {where} must be an object"
                raise SchemaError(msg)
            return {
                key: self.value(sub, key, moment, depth + 1)
                for key, sub in props.items()
            }
        if kind == "array":
            count = len(moments) if moments and depth < _MAX_DEPTH else 0
            count = max(count, _whole(schema, "minItems") or 0)
            high = _whole(schema, "maxItems")
            if high is not None:
                count = min(count, high)
            self.spend(count)
            items = schema.get("items", {})
            return [
                self.value(
                    items,
                    name,
                    moments[i % len(moments)] if moments else None,
                    depth + 1,
                )
                for i in range(count)
            ]
        if kind == "string":
            low = _whole(schema, "minLength") or 0
            self.spend(low)
            return _string(name, moment, schema, low, _whole(schema, "maxLength"))
        if kind in ("number", "integer"):
            return _number(name, moment, schema, integer=kind == "integer")
        if kind == "boolean":
            return moment is not None
        if kind == "null":
            return None
        if kind is None:
            return moment.description if moment else None
        msg = f"unsupported type {kind!r} at {where}"
        raise SchemaError(msg)
