"""Structured output: a JSON value valid for a `text.format` JSON schema.

Supports what docs/protocol.md lists: object, array, string, number, integer,
boolean, null, `enum`, `const`, `anyOf` (and `oneOf`, `type` lists),
`$ref` into root `$defs` (also `definitions`, which Pydantic v1 writes), and
`minItems`/`maxItems`, `minimum`/`maximum`, `minLength`/`maxLength`. Like the
platform (docs/protocol.md, "Request"), every property is filled in (it adds
all of them to `required`) and `default` is ignored.

Real Jockey watches the video; the emulator reads each field's value from the
moments its answer cites (`_reader.py`), by the field's name, description and
type:

- a string gets the shortest phrase that answers it (a name, a time phrase, a
  place, a reason), never the whole sentence or the title unless asked
  (`title`, `description`, `summary`: the answer told in words);
- an integer or number gets a number the moment writes in digits or words
  next to the field's word; `start_sec` / `end_sec` get the moment's times;
- a boolean gets whether the moment says what the field names;
- an enum or `Literal` gets the option the moment names;
- an array of objects gets one item per cited moment; an array of strings or
  numbers the values read from each cited moment; nested objects are read
  from the same moments;
- what the moments do not say is not found: `null` where the schema allows
  it (`Optional`), else the type's empty value (`""`, `0`, `false`, `[]`, an
  enum's `unknown` / `other` / `none` option or its first), and the answer says
  which: a `summary` / `answer` / `explanation` field ends "Not found: …", and
  so does the commentary (`include: ["intermediate_outputs"]`);
- a video added with only a file name has its title to read, and little else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_jockey.emulator import _reader
from langchain_jockey.emulator._reader import Ask
from langchain_jockey.emulator._store import Moment

__all__ = ["Filled", "SchemaError", "fill"]

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


def _first(read: Callable[[Moment], Any], moments: list[Moment]) -> Any:
    """The first answer `read` finds in `moments`; `None` if none does."""
    for moment in moments:
        found = read(moment)
        if found is not None:
            return found
    return None


_NOT_FOUND_OPTIONS = ("unknown", "other", "none", "unclear", "not_found", "n/a")


@dataclass(frozen=True)
class _Missing:
    """Not found: the value to use where the schema allows no `null`."""

    empty: Any


@dataclass(frozen=True)
class Filled:
    """A structured answer: its value and the fields the moments do not answer."""

    value: Any
    missing: tuple[str, ...]

    @property
    def note(self) -> str:
        """`Not found: cake flavor.`, or empty when every field was found."""
        if not self.missing:
            return ""
        return "Not found: " + ", ".join(dict.fromkeys(self.missing)) + "."


def fill(
    schema: Any,
    moments: list[Moment],
    question: str = "",
    narrate: Any = None,
) -> Filled:
    """A value valid for `schema`, read from the cited `moments`.

    `narrate(moments)` tells moments in words (for `summary` fields).

    Raises:
        SchemaError: for a schema that cannot be satisfied or resolved, that nests
            deeper than `_MAX_NESTING` (a `$ref` loop through objects does), or
            whose value would pass `_MAX_SIZE` values and characters.
    """
    first = _Builder(schema, moments, question, narrate, "")
    value = first.top()
    note = Filled(value, tuple(first.missing)).note
    if note and first.summaries:  # say what was not found in the summary fields
        value = _Builder(schema, moments, question, narrate, note).top()
    return Filled(value, tuple(first.missing))


class _Builder:
    """Builds one value, counting its values and characters against `_MAX_SIZE`."""

    def __init__(
        self,
        root: Any,
        moments: list[Moment],
        question: str,
        narrate: Any,
        note: str,
    ) -> None:
        self.root = root if isinstance(root, dict) else {}
        self.schema = root
        self.moments = moments
        self.question = question
        self.narrate = narrate
        self.note = note
        self.size = 0
        self.missing: list[str] = []
        self.summaries = 0

    def top(self) -> Any:
        ask = Ask.of("", None, self.question)
        value = self.value(self.schema, ask, self.moments, 1, 0)
        if not isinstance(value, _Missing):
            return value
        if not isinstance(value.empty, dict):  # an object's fields say themselves
            self.missing.append(ask.label)
        return value.empty

    def spend(self, amount: int) -> None:
        self.size += amount
        if self.size > _MAX_SIZE:
            msg = f"the value would hold more than {_MAX_SIZE:,} values and characters"
            raise SchemaError(msg)

    def ask(self, name: str, schema: Any) -> Ask:
        described = schema.get("description") if isinstance(schema, dict) else None
        if described is None and isinstance(schema, dict) and "$ref" in schema:
            try:
                described = _resolve(schema, self.root).get("description")
            except SchemaError:
                described = None
        return Ask.of(name, described, self.question)

    def value(
        self, schema: Any, ask: Ask, pool: list[Moment], position: int, depth: int
    ) -> Any:
        where = ask.name or "the root"
        if depth > _MAX_NESTING:
            msg = f"the schema nests deeper than {_MAX_NESTING} levels at {where}"
            raise SchemaError(msg)
        self.spend(1)
        if schema is True or schema == {}:
            return pool[0].description if pool else None
        if not isinstance(schema, dict):
            msg = f"schema at {where} must be an object, not {type(schema).__name__}"
            raise SchemaError(msg)
        schema = _resolve(schema, self.root)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.option(schema["enum"], ask, _reader.candidates(ask, pool))
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
                found = self.value(usable[0], ask, pool, position, depth + 1)
                if isinstance(found, _Missing) and len(usable) < len(resolved):
                    return _Missing(None)  # nullable: not found is null
                return found
        kind = _kind(schema)
        nullable = isinstance(schema.get("type"), list) and "null" in schema["type"]
        found = self.typed(kind, schema, ask, pool, position, depth)
        if isinstance(found, _Missing) and nullable:
            return _Missing(None)
        return found

    def typed(  # noqa: PLR0917 - the value of one typed schema
        self,
        kind: str | None,
        schema: dict[str, Any],
        ask: Ask,
        pool: list[Moment],
        position: int,
        depth: int,
    ) -> Any:
        where = ask.name or "the root"
        moments = _reader.candidates(ask, pool)
        if kind == "object":
            return self.object(schema, pool, position, depth)
        if kind == "array":
            return self.array(schema, ask, pool, depth)
        if kind == "string":
            text = self.string(schema, ask, pool, moments)
            if text is None:
                return _Missing(self.clip("", schema))
            return self.clip(text, schema)
        if kind in ("number", "integer"):
            found = _first(lambda m: _reader.number(ask, m, position), moments)
            return self.number(schema, found, integer=kind == "integer")
        if kind == "boolean":
            if not moments:
                return _Missing(False)  # noqa: FBT003 - the empty boolean
            return any(_reader.supports(ask, m) for m in moments)
        if kind == "null":
            return None
        if kind is None:
            return moments[0].description if moments else _Missing(None)
        msg = f"unsupported type {kind!r} at {where}"
        raise SchemaError(msg)

    def object(
        self, schema: dict[str, Any], pool: list[Moment], position: int, depth: int
    ) -> Any:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            where = "an object"
            msg = f"'properties' at {where} must be an object"
            raise SchemaError(msg)
        out: dict[str, Any] = {}
        found = 0
        for key, sub in props.items():
            ask = self.ask(str(key), sub)
            value = self.value(sub, ask, pool, position, depth + 1)
            if isinstance(value, _Missing):
                self.missing.append(ask.label)
                value = value.empty
            else:
                found += 1
            out[key] = value
        return _Missing(out) if props and not found else out

    def array(
        self, schema: dict[str, Any], ask: Ask, pool: list[Moment], depth: int
    ) -> Any:
        items = schema.get("items", {})
        resolved = _resolve(items, self.root) if isinstance(items, dict) else items
        per_moment = not isinstance(resolved, dict) or _kind(resolved) in (
            "object",
            "array",
            None,
        )
        per_moment = per_moment or ask.kind in ("", "what", "title", "range", "when")
        values: list[Any] = []
        phrases = (
            not per_moment
            and _kind(resolved) == "string"
            and not {"enum", "const", "anyOf", "oneOf"} & set(resolved)
        )
        if phrases and depth < _MAX_DEPTH:  # "dry suits", "helmets"
            for moment in pool:
                for text in _reader.texts(ask, moment):
                    clipped = self.clip(text, resolved)
                    if clipped not in values:
                        values.append(clipped)
        elif depth < _MAX_DEPTH:
            for i, moment in enumerate(pool):
                value = self.value(items, ask, [moment], i + 1, depth + 1)
                if isinstance(value, _Missing):
                    if per_moment:
                        values.append(value.empty)
                    continue
                if per_moment or value not in values:
                    values.append(value)
        low, high = _whole(schema, "minItems") or 0, _whole(schema, "maxItems")
        if high is not None:
            values = values[:high]
        while len(values) < low:
            filler = self.value(items, ask, [], len(values) + 1, depth + 1)
            values.append(filler.empty if isinstance(filler, _Missing) else filler)
        self.spend(len(values))
        return values if values or not pool else _Missing([])

    def clip(self, text: str, schema: dict[str, Any]) -> str:
        """`text` within the schema's `minLength` (padded) and `maxLength`."""
        low, high = _whole(schema, "minLength") or 0, _whole(schema, "maxLength")
        self.spend(max(low, len(text)))
        text = text.ljust(low, ".")
        return text if high is None else text[:high]

    def string(
        self,
        schema: dict[str, Any],
        ask: Ask,
        pool: list[Moment],
        moments: list[Moment],
    ) -> str | None:
        if ask.kind == "summary":
            self.summaries += 1
            if not pool:
                told = "I could not find anything about that in this knowledge store."
            else:
                told = self.narrate(pool) if self.narrate else pool[0].description
            return f"{told} {self.note}".strip()
        if not moments:
            return None
        if schema.get("format") == "date-time":
            return "2026-07-11T03:13:57Z"  # the emulator's one date
        found: str | None = _first(lambda m: _reader.text(ask, m), moments)
        return found

    def number(
        self, schema: dict[str, Any], value: float | None, *, integer: bool
    ) -> Any:
        low, high = _limit(schema, "minimum"), _limit(schema, "maximum")
        result = 0.0 if value is None else value
        if low is not None:
            result = max(result, low)
        if high is not None:
            result = min(result, high)
        if integer:
            whole = math.floor(result)
            if low is not None and whole < low:
                whole = math.ceil(low)
            out: Any = whole
        else:
            out = result
        return _Missing(out) if value is None else out

    def option(self, options: list[Any], ask: Ask, moments: list[Moment]) -> Any:
        chosen = _first(lambda m: _reader.option(ask, options, m), moments)
        if chosen is not None:
            return chosen
        if None in options:
            return _Missing(None)
        fallback = next(
            (
                o
                for o in options
                if isinstance(o, str) and o.lower() in _NOT_FOUND_OPTIONS
            ),
            options[0],
        )
        return _Missing(fallback)
