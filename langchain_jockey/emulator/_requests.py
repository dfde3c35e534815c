"""Validating `POST /responses` bodies the way the API does (docs/protocol.md).

Errors use the flat body `{code, message, docs_url}` (docs/protocol.md,
"Errors"). Where the real behaviour is unknown, the emulator is strict, so that
a client that passes here sends only what the API documents:

- unknown top-level fields are `400 parameter_unknown` (the API has that code);
  the legacy `model` (only `"jockey1.0"`), `metadata` and the undocumented
  `max_output_tokens` are accepted. `max_output_tokens` is checked (a positive
  integer) and ignored: one demo sends it to the live API, which takes it,
  and nothing documents an effect (docs/protocol.md). The `truncate_after`
  fault gives a cut answer;
- a `text.format.name` must match `^[A-Za-z0-9_-]{1,64}$`, as in Open Responses;
- several input items are joined into one question.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "ApiError", "ParsedRequest", "loads", "parse_request"]

MAX_CONTENT = 10_000
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a request body may have."""
_KNOWN = frozenset(
    {
        "knowledge_store_id",
        "input",
        "stream",
        "session_id",
        "instructions",
        "include",
        "selections",
        "text",
        "model",
        "metadata",
        "max_output_tokens",
    }
)
_PREFIX = {"item": "ksi_", "collection": "ksic_"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApiError(Exception):
    """An HTTP error answer: status, code, message and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        """The flat error body."""
        return {
            "code": self.code,
            "message": self.message,
            "docs_url": f"https://docs.twelvelabs.io/errors/{self.code}",
        }


def _bad(message: str, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, code, message)


def _not_json(value: str) -> Any:
    raise ValueError(value)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(text)
    return value


def _depth(value: Any) -> int:
    """How deeply `value` nests, level by level (no recursion), to `MAX_DEPTH + 1`."""
    depth, level = 0, [value]
    while depth <= MAX_DEPTH:
        level = [v for v in level if isinstance(v, (dict, list))]
        if not level:
            return depth
        depth += 1
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v)]
    return depth


def loads(raw: bytes) -> Any:
    """Parse a request body as JSON the API accepts.

    `NaN`, `Infinity` and numbers past a float's range are not JSON numbers, and
    nesting is bounded, so what the emulator reads is plain, finite and shallow.

    Raises:
        ApiError: 400 for a body that is not such JSON.
    """
    try:
        value = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError):
        raise _bad("The request body is not valid JSON.") from None
    if _depth(value) > MAX_DEPTH:
        msg = f"The request body nests arrays and objects deeper than {MAX_DEPTH}."
        raise _bad(msg)
    return value


@dataclass(frozen=True)
class ParsedRequest:
    """A validated request."""

    store_id: str
    question: str
    stream: bool
    session_id: str | None
    instructions: str | None
    intermediate: bool
    selections: tuple[dict[str, str], ...]
    text_format: dict[str, Any] | None


def _input(value: Any) -> str:
    if value is None:
        raise _bad(
            "Input required: the 'input' array is missing.", "parameter_not_provided"
        )
    if not isinstance(value, list) or not value:
        raise _bad("'input' must be a non-empty array of input items.")
    contents = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object.")
        if item.get("type", "message") != "message":
            raise _bad(f"{where}.type must be 'message'.")
        if item.get("role") != "user":
            raise _bad(
                f"{where}.role must be 'user'; got {item.get('role')!r}. Only 'user' "
                "is supported: use 'instructions' for system text and 'session_id' "
                "for history."
            )
        content = item.get("content")
        if not isinstance(content, str):
            raise _bad(f"{where}.content must be a string.")
        if not 1 <= len(content) <= MAX_CONTENT:
            raise _bad(
                f"{where}.content must be 1 to {MAX_CONTENT:,} characters; "
                f"got {len(content):,}."
            )
        contents.append(content)
    return "\n\n".join(contents)


def _selections(value: Any) -> tuple[dict[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad("'selections' must be an array.")
    out: list[dict[str, str]] = []
    for index, item in enumerate(value):
        kind = item.get("kind") if isinstance(item, dict) else None
        ident = item.get("id") if isinstance(item, dict) else None
        prefix = _PREFIX.get(kind) if isinstance(kind, str) else None
        if prefix is None or not isinstance(ident, str) or not ident.startswith(prefix):
            raise _bad(
                f"selections[{index}] must be {{'kind': 'item', 'id': 'ksi_…'}} or "
                "{'kind': 'collection', 'id': 'ksic_…'}."
            )
        out.append({"kind": str(kind), "id": ident})
    return tuple(out)


def _text_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    fmt = value.get("format") if isinstance(value, dict) else None
    if not isinstance(value, dict) or (fmt is not None and not isinstance(fmt, dict)):
        raise _bad("'text' must be {'format': {...}}.")
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") != "json_schema":
        raise _bad(
            "text.format.type must be 'text' or 'json_schema'; "
            f"got {fmt.get('type')!r}."
        )
    name = fmt.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad("text.format.name is required and must match ^[A-Za-z0-9_-]{1,64}$.")
    if not isinstance(fmt.get("schema"), dict):
        raise _bad("text.format.schema is required and must be a JSON schema object.")
    for key in ("description", "strict"):
        if key in fmt and fmt[key] is not None:
            expected = str if key == "description" else bool
            if not isinstance(fmt[key], expected):
                raise _bad(f"text.format.{key} must be a {expected.__name__}.")
    return fmt


def _optional(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    # bool is an int in Python, not in JSON Schema.
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if value is not None and not ok:
        raise _bad(f"'{key}' must be a {kind.__name__}.")
    return value


def parse_request(raw: bytes) -> ParsedRequest:
    """Validate a request body.

    Raises:
        ApiError: 400 with the API's codes for anything malformed.
    """
    body = loads(raw)
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise _bad(f"The {unknown[0]} parameter is unknown.", "parameter_unknown")
    store = body.get("knowledge_store_id")
    if not isinstance(store, str) or not store:
        raise _bad(
            "Knowledge store required: 'knowledge_store_id' is missing.",
            "parameter_not_provided",
        )
    model = body.get("model")
    if model is not None and model != "jockey1.0":
        raise _bad(f"'model' must be 'jockey1.0'; got {model!r}.")
    include = body.get("include")
    if include is not None and (
        not isinstance(include, list)
        or any(i != "intermediate_outputs" for i in include)
    ):
        raise _bad("'include' may only contain 'intermediate_outputs'.")
    limit = _optional(body, "max_output_tokens", int)
    if limit is not None and limit < 1:
        raise _bad("'max_output_tokens' must be a positive integer.")
    return ParsedRequest(
        store_id=store,
        question=_input(body.get("input")),
        stream=bool(_optional(body, "stream", bool)),
        session_id=_optional(body, "session_id", str),
        instructions=_optional(body, "instructions", str),
        intermediate=bool(include),
        selections=_selections(body.get("selections")),
        text_format=_text_format(body.get("text")),
    )
