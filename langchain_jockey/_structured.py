"""Structured output: schemas -> `text.format`, and the parser of Jockey's JSON.

Jockey has one structured-output mechanism, `text.format` `json_schema`
(docs/protocol.md): no JSON mode, no client tool calls. The JSON arrives as the
answer text, streamed in deltas like any text, so the parser yields
progressively filled objects while it streams:

- for dict schemas (JSON schema dicts, TypedDicts): partial dicts;
- for Pydantic models (v2 or v1): partial objects built without validation
  (`model_construct`; fields not received yet are unset), then the validated
  object once the answer is complete.

The answer is complete when the terminal chunk's `status` arrives (or, for
`invoke`, at once). A `status` of `incomplete` means Jockey cut the answer at
its token limit: the parser raises an `OutputParserException` that says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from operator import itemgetter
from typing import Any, cast, get_args, get_origin

import pydantic
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers.transform import BaseCumulativeTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.json import parse_partial_json
from typing_extensions import is_typeddict

from langchain_jockey.errors import JockeyInputError, warn

__all__ = [
    "JockeyJsonParser",
    "enrichment_schema",
    "response_format",
    "structured",
    "text_format",
]

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
# Everything up to an unterminated string: text outside strings, and whole
# strings (in the unrolled form, linear, with no backtracking blow-up).
_CLOSED = re.compile(r'(?:[^"]+|"[^"\\]*(?:\\.[^"\\]*)*")*')
# What may end a partial answer without being complete yet: a number, true,
# false or null not followed by a delimiter; inside a string, a cut escape.
_SCALAR_CHARS = "+-.0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ESCAPE = (  # one whole escape; a high surrogate only with its low half
    r"\\(?:u(?![dD][89abAB])[0-9A-Fa-f]{4}"
    r"|u[dD][89abAB][0-9A-Fa-f]{2}\\u[dD][c-fC-F][0-9A-Fa-f]{2}|[^u])"
)
_OPEN_STRING = re.compile(rf'"[^"\\]*(?:{_ESCAPE}[^"\\]*)*')


def complete_tokens(text: str) -> str:
    r"""`text` cut back to its last complete JSON token, for a partial parse.

    A number, `true`, `false` or `null` counts only once a delimiter follows
    it (`2` may become `225`), and a string may grow but never shows half an
    escape (`\\u00` may become any character).
    """
    closed = _CLOSED.match(text)
    if closed is not None and closed.end() < len(text):  # inside a string
        string = _OPEN_STRING.match(text, closed.end())
        return text[: string.end()] if string else text
    # The tail alone: a regex searched from the start would rescan every run of
    # word characters in the answer on every delta (quadratic).
    return text.rstrip(_SCALAR_CHARS)


def is_pydantic_class(schema: Any) -> bool:
    """Whether `schema` is a Pydantic (v2 or v1) model class."""
    return isinstance(schema, type) and issubclass(
        schema, (pydantic.BaseModel, pydantic.v1.BaseModel)
    )


def _rename_definitions(node: Any) -> Any:
    """Pydantic v1 writes `definitions`; Jockey resolves `$ref` into `$defs` only."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/definitions/", "#/$defs/")
            else:
                out["$defs" if key == "definitions" else key] = _rename_definitions(
                    value
                )
        return out
    if isinstance(node, list):
        return [_rename_definitions(v) for v in node]
    return node


def _json_schema(
    schema: Any, taker: str = "with_structured_output"
) -> tuple[str, dict[str, Any]]:
    """A title and a JSON schema for any schema form LangChain users pass."""
    if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        return schema.__name__, schema.model_json_schema()
    if isinstance(schema, type) and issubclass(schema, pydantic.v1.BaseModel):
        return schema.__name__, schema.schema()
    if is_typeddict(schema):
        return cast("type", schema).__name__, convert_to_json_schema(schema)
    if isinstance(schema, dict):
        if "parameters" in schema or schema.get("type") == "function":
            converted = convert_to_json_schema(schema)
            return str(converted.get("title") or "response"), converted
        return str(schema.get("title") or "response"), schema
    msg = (
        f"{taker} takes a Pydantic model (v2 or v1), a TypedDict or a "
        f"JSON schema dict, not {schema!r}."
    )
    raise JockeyInputError(msg)


# A knowledge store's enrichment schema: the keywords the platform takes, and
# those it refuses that a generated schema carries as annotations only (SDK
# `types/enrichment_config_json_schema.py`; docs/protocol.md).
_ENRICH_KEYWORDS = frozenset(
    {
        "type",
        "title",
        "description",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "format",
    }
)
_ENRICH_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean"})
_ANNOTATIONS = frozenset(
    {
        "default",
        "examples",
        "readOnly",
        "writeOnly",
        "$schema",
        "$comment",
        "$defs",
        "definitions",
    }
)


def enrichment_schema(schema: Any) -> dict[str, Any]:
    """The JSON schema a knowledge store's enrichment takes, from any schema form.

    Takes what `with_structured_output` takes (a Pydantic model class, v2 or
    v1, a TypedDict, a JSON schema dict) and writes it as the platform reads
    it: `$ref`s inlined, annotations dropped (`default`, `examples`,
    `readOnly`, `writeOnly`, `$schema`, `$comment`), an optional field
    (`anyOf` with `null`) as its one type, and `const` as a one-value `enum`.
    What is left is checked against the platform's rules: an object at the
    root, a `description` on every property, nested ones too, and only the
    keywords it takes (docs/protocol.md, "Knowledge stores").

    Raises:
        JockeyInputError: another form, or a schema the platform would refuse
            (it answers 422); the message says where.
    """
    _, raw = _json_schema(schema, "enrichment")
    defs = {
        name: node
        for key in ("definitions", "$defs")
        if isinstance(raw.get(key), dict)
        for name, node in raw[key].items()
    }
    found = _enrich_node(raw, defs, "", frozenset())
    if found.get("type") != "object" or not isinstance(found.get("properties"), dict):
        msg = "enrichment: the schema's root is an object with properties."
        raise JockeyInputError(msg)
    try:
        json.dumps(found, allow_nan=False)
    except (TypeError, ValueError) as exc:
        msg = f"enrichment: the schema cannot be sent as JSON ({exc})."
        raise JockeyInputError(msg) from None
    return found


def _enrich_bad(where: str, why: str) -> JockeyInputError:
    """An error at `where`: a dotted path of property names ("" is the root)."""
    at = f"property {where!r}" if where else "the schema"
    return JockeyInputError(f"enrichment: {at}: {why}.")


def _enrich_node(
    node: Any, defs: dict[str, Any], where: str, seen: frozenset[str]
) -> dict[str, Any]:
    """One schema node as the platform takes it (see `enrichment_schema`)."""
    if not isinstance(node, dict):
        raise _enrich_bad(where, "a schema is a JSON object")
    node, seen = _enrich_plain(node, defs, where, seen)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _ENRICH_KEYWORDS:
            taken = ", ".join(sorted(_ENRICH_KEYWORDS))
            raise _enrich_bad(
                where, f"{key!r} is not a keyword the platform takes ({taken})"
            )
        if key == "properties":
            if not isinstance(value, dict):
                raise _enrich_bad(where, "'properties' is an object")
            out[key] = {}
            for name, sub in value.items():
                inner = f"{where}.{name}" if where else str(name)
                prop = _enrich_node(sub, defs, inner, seen)
                if (
                    not isinstance(prop.get("description"), str)
                    or not prop["description"]
                ):
                    why = (
                        "has no description; the platform needs one on every property "
                        "(in Pydantic: Field(description=...))"
                    )
                    raise _enrich_bad(inner, why)
                out[key][name] = prop
        elif key == "items":
            out[key] = _enrich_node(value, defs, f"{where}[]", seen)
        elif key == "prefixItems":
            if not isinstance(value, list):
                raise _enrich_bad(where, "'prefixItems' is a list of schemas")
            out[key] = [_enrich_node(v, defs, f"{where}[]", seen) for v in value]
        elif key == "type" and (
            not isinstance(value, str) or value not in _ENRICH_TYPES
        ):
            kinds = ", ".join(sorted(_ENRICH_TYPES))
            raise _enrich_bad(where, f"'type' is one of {kinds} (no null, no lists)")
        elif key == "additionalProperties" and not isinstance(value, bool):
            raise _enrich_bad(where, "'additionalProperties' is true or false")
        else:
            out[key] = value
    return out


def _enrich_plain(
    node: dict[str, Any], defs: dict[str, Any], where: str, seen: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str]]:
    """`node` without a `$ref`, a one-branch `allOf`, a nullable `anyOf` or `const`.

    Also the definitions `seen` on the way down, so that a recursive one is found.
    """
    while True:
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in defs or not ref.startswith(("#/$defs/", "#/definitions/")):
                raise _enrich_bad(where, f"{ref!r} names no definition of the schema")
            if name in seen:
                raise _enrich_bad(
                    where,
                    f"{name!r} contains itself; the platform takes no recursive schema",
                )
            seen |= {name}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            node = {**defs[name], **rest}
            continue
        for key in ("anyOf", "oneOf", "allOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                kept = [b for b in branches if b != {"type": "null"}]
                if len(kept) != 1 or not isinstance(kept[0], dict):
                    raise _enrich_bad(
                        where, f"{key!r} is not taken (one type per field)"
                    )
                rest = {k: v for k, v in node.items() if k != key}
                node = {**kept[0], **rest}
                break
        else:
            break
    kinds = node.get("type")
    if isinstance(kinds, list) and len([k for k in kinds if k != "null"]) == 1:
        node = {**node, "type": next(k for k in kinds if k != "null")}
    if "const" in node:
        node = {k: v for k, v in node.items() if k != "const"} | {
            "enum": [node["const"]]
        }
    return node, seen


def response_format(schema: Any, *, strict: bool | None = None) -> dict[str, Any]:
    """The `text.format` of a schema: `{"type": "json_schema", name, schema, …}`.

    The name comes from the schema's title, made valid (`[A-Za-z0-9_-]{1,64}`).
    """
    title, json_schema = _json_schema(schema)
    name = _NAME_CHARS.sub("_", title).strip("_")[:64] or "response"
    fmt: dict[str, Any] = {
        "type": "json_schema",
        "name": name,
        "schema": _rename_definitions(json_schema),
    }
    description = json_schema.get("description")
    if isinstance(description, str) and description:
        fmt["description"] = description
    if strict is not None:
        fmt["strict"] = strict  # accepted and reserved by Jockey: no effect today
    return fmt


def text_format(spec: Any) -> dict[str, Any]:
    """Jockey's `text` option from an OpenAI-style `response_format`.

    LangChain's `create_agent` binds `response_format={"type": "json_schema",
    "json_schema": {"name", "schema", "strict"}}` when a model's profile says
    it has native structured output; the Responses form (`name` and `schema`
    at the top) and `{"type": "text"}` are taken too.
    """
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return {"format": {"type": "text"}}
    inner = spec.get("json_schema", spec) if kind == "json_schema" else None
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if not isinstance(inner, dict) or not isinstance(schema, dict):
        msg = (
            "response_format must be {'type': 'json_schema', 'json_schema': "
            f"{{'name': …, 'schema': {{…}}}}}} or {{'type': 'text'}}, not {spec!r}."
        )
        raise JockeyInputError(msg)
    titled = {**schema, "title": inner.get("name") or schema.get("title")}
    return {"format": response_format(titled, strict=inner.get("strict"))}


class JockeyJsonParser(BaseCumulativeTransformOutputParser[Any]):
    """Parses Jockey's JSON answer into a dict or a Pydantic object, streaming."""

    pydantic_object: Any = None
    """A Pydantic model class (v2 or v1) to build, or `None` for plain JSON."""

    @property
    def _type(self) -> str:
        return "jockey_json"

    def parse(self, text: str) -> Any:
        """Parse a complete JSON answer."""
        return self.parse_result([Generation(text=text)])

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:  # noqa: A002
        answer = _Answer(self)
        for chunk in input:
            if (parsed := answer.add(chunk)) is not None:
                yield parsed
        if (parsed := answer.end()) is not None:
            yield parsed

    async def _atransform(
        self,
        input: AsyncIterator[str | BaseMessage],  # noqa: A002
    ) -> AsyncIterator[Any]:
        answer = _Answer(self)
        async for chunk in input:
            if (parsed := answer.add(chunk)) is not None:
                yield parsed
        if (parsed := answer.end()) is not None:
            yield parsed

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the (accumulated) answer; partial until the response is final."""
        generation = result[0]
        text = generation.text
        message = getattr(generation, "message", None)
        meta = getattr(message, "response_metadata", {}) or {}
        status = meta.get("status")
        final = not partial or status is not None
        if final and status == "incomplete":
            reason = (meta.get("incomplete_details") or {}).get("reason", "unknown")
            msg = (
                f"Jockey's answer was truncated (status 'incomplete', reason "
                f"{reason!r}), so its JSON is incomplete and cannot be parsed."
            )
            raise OutputParserException(msg, llm_output=text)
        if not final:
            try:
                return self._partial(text)
            except (RecursionError, ValueError):  # too deep, or no JSON yet
                return None  # no partial: the final parse says why
        try:
            return self._final(text)
        except RecursionError:  # JSON nested deeper than Python parses
            msg = "Jockey's answer is JSON nested too deeply to parse."
            raise OutputParserException(msg, llm_output=text) from None

    def _final(self, text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError as exc:
            msg = f"Jockey's answer is not valid JSON: {exc}"
            raise OutputParserException(msg, llm_output=text) from exc
        return self._build(value, text)

    def _partial(self, text: str) -> Any:
        partial_text = complete_tokens(text)
        value = parse_partial_json(partial_text) if partial_text.strip() else None
        if value is None or self.pydantic_object is None:
            return value
        if not isinstance(value, dict):
            return None
        # Never validated while partial: validation would coerce half a string
        # ("2024" into a datetime of 1970). Only the final object is validated.
        return partial_object(self.pydantic_object, value)

    def _build(self, value: Any, text: str) -> Any:
        cls = self.pydantic_object
        if cls is None:
            return value
        try:
            if issubclass(cls, pydantic.BaseModel):
                return cls.model_validate(value)
            return cls.parse_obj(value)
        except (pydantic.ValidationError, pydantic.v1.ValidationError) as exc:
            msg = f"Jockey's JSON does not match {cls.__name__}: {exc}"
            raise OutputParserException(msg, llm_output=text) from exc


class _Answer:
    """A streamed JSON answer, gathered in linear time, parsed when it has grown.

    LangChain's parser parses the whole answer per chunk: quadratic (80 KB took
    41 s). Here: per chunk up to `_SMALL` characters, then each time the answer
    grew by a quarter (at most five times its length in all), and at the end.
    """

    def __init__(self, parser: JockeyJsonParser) -> None:
        self.parser = parser
        self.parts: list[str] = []
        self.size = self.parsed_size = 0
        self.meta: dict[str, Any] = {}
        self.previous: Any = None

    def add(self, chunk: str | BaseMessage) -> Any:
        """Take one chunk; a new partial (or the final) value, or `None`."""
        text = chunk if isinstance(chunk, str) else chunk.text
        if text:
            self.parts.append(text)
            self.size += len(text)
        meta = getattr(chunk, "response_metadata", None)
        if meta:
            self.meta.update(meta)
        due = self.size < _SMALL or self.size >= self.parsed_size * 5 // 4
        if self.meta.get("status") is None and not due:
            return None
        return self._parse()

    def end(self) -> Any:
        """The stream ended: a last parse if the text grew since the last one."""
        return self._parse() if self.size != self.parsed_size else None

    def _parse(self) -> Any:
        self.parsed_size = self.size
        message = AIMessage(content="".join(self.parts), response_metadata=self.meta)
        parsed = self.parser.parse_result(
            [ChatGeneration(message=message)], partial=True
        )
        if parsed is None or parsed == self.previous:
            return None
        self.previous = parsed
        return parsed


_SMALL = 1024


def _model_in(annotation: Any) -> Any:
    """The Pydantic model class inside `annotation` (`M`, `M | None`), if any."""
    if isinstance(annotation, type) and issubclass(
        annotation, (pydantic.BaseModel, pydantic.v1.BaseModel)
    ):
        return annotation
    for arg in get_args(annotation):
        if arg is not type(None) and (found := _model_in(arg)) is not None:
            return found
    return None


def _typed(annotation: Any, value: Any) -> Any:
    """`value` with the schema's number type: an int where only a float fits is a float.

    Nothing else is converted while the object is partial: a string that is
    half a date or a URL stays the string received so far.
    """
    if type(value) is int:
        kinds = get_args(annotation) or (annotation,)
        return float(value) if float in kinds and int not in kinds else value
    if isinstance(value, list) and get_origin(annotation) in (list, tuple, set):
        item = (get_args(annotation) or (Any,))[0]
        return [_typed(item, v) for v in value]
    return value


def _partial_value(annotation: Any, value: Any) -> Any:
    """A partly received value, safe to read.

    Dicts for models become (partial) models; complete scalars take the field's type.
    """
    model = _model_in(annotation)
    if model is None:
        return _typed(annotation, value)
    if isinstance(value, dict):
        return partial_object(model, value)
    if isinstance(value, list) and get_origin(annotation) in (list, tuple, set):
        return [partial_object(model, v) if isinstance(v, dict) else v for v in value]
    return value


def partial_object(cls: Any, value: dict[str, Any]) -> Any:
    """An unvalidated `cls` from a partly received JSON object, safe to read.

    Every declared field is set: a field not received yet is its default, or
    `None` when it has none; nested models are instances of their class, built
    the same way. Only the final object is validated.
    """
    if issubclass(cls, pydantic.BaseModel):
        fields = {}
        for name, info in cls.model_fields.items():
            key = info.alias if info.alias in value else name
            if key in value:
                fields[name] = _partial_value(info.annotation, value[key])
            elif info.is_required():
                fields[name] = None
            else:
                fields[name] = info.get_default(call_default_factory=True)
        return cls.model_construct(**fields)
    fields = {}
    for name, field in cls.__fields__.items():  # Pydantic v1
        key = field.alias if field.alias in value else name
        if key in value:
            fields[name] = _partial_value(field.outer_type_, value[key])
        else:
            fields[name] = None if field.required else field.get_default()
    return cls.construct(**fields)


def structured(  # noqa: PLR0917 - with_structured_output's arguments, passed on
    llm: BaseChatModel,
    schema: Any,
    method: str,
    include_raw: bool,
    strict: bool | None,
    kwargs: dict[str, Any],
) -> Runnable[LanguageModelInput, Any]:
    """`llm.with_structured_output(...)`: bind `text.format`, parse the JSON."""
    if kwargs:
        msg = f"with_structured_output got unknown argument(s) {sorted(kwargs)}."
        raise JockeyInputError(msg)
    if method != "json_schema":
        warn(
            f"Jockey has no {method!r}; ChatJockey uses method='json_schema' "
            "(Jockey's text.format) instead."
        )
    bound = llm.bind(
        text={"format": response_format(schema, strict=strict)},
        ls_structured_output_format={
            "kwargs": {"method": "json_schema", "strict": strict},
            "schema": schema,
        },
    )
    parser = JockeyJsonParser(
        pydantic_object=schema if is_pydantic_class(schema) else None
    )
    if not include_raw:
        return bound | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    on_error = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parse.with_fallbacks(
        [on_error], exception_key="parsing_error"
    )
