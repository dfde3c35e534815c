"""Reading the parts of a Jockey response: output items, ids, citations. No I/O.

- The answer is the text of the `message` items whose `phase` is
  `final_answer` or absent (docs/protocol.md, "Response objects"), joined in order.
- Annotations keep Jockey's own form (inclusive `end_index`), with offsets moved
  from their content part into that joined text, so `text[start:end + 1]` is
  the `[N]` marker. `_blocks` turns them into LangChain `Citation`s. Only
  annotations that fit the text, in order and without overlap, are kept.
- `function_call` / `function_call_output` items are Jockey's own tool steps.

Every reader here takes any JSON value and ignores what has the wrong type.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROVIDER",
    "REASONING_KEY",
    "STEPS_KEY",
    "Output",
    "is_answer",
    "read_output",
    "seconds",
    "step_of",
    "text_parts",
    "time_range",
    "valid_id",
    "valid_text",
]

logger = logging.getLogger("langchain_jockey")

PROVIDER = "twelvelabs"
"""`model_provider` of Jockey messages, `ls_provider` of their traces, and the
name core's content-block translator is registered under."""
REASONING_KEY = "reasoning_content"
"""`additional_kwargs` key of Jockey's commentary (the convention of other
LangChain integrations that stream reasoning)."""
STEPS_KEY = "jockey_steps"
"""`additional_kwargs` key of Jockey's tool steps, in order."""
_ANSWER_PHASES = (None, "final_answer")
_TIMES = ("start_sec", "end_sec")
_MAX_ID = 256


def valid_id(value: Any) -> str | None:
    """`value` if it is a sane id (a session, item or response id), else `None`.

    A string of 1-256 characters that encodes as UTF-8 (no lone surrogates)
    and holds no control characters.
    """
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        return None
    if not value.isprintable():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with surrogate pairs joined and every lone surrogate as U+FFFD.

    A lone surrogate cannot be encoded: `print` or `.encode()` of the answer
    would fail on it. (JSON decoding joins the pairs inside one string; two
    halves from two deltas are joined by the caller first.)
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def seconds(value: Any) -> float | None:
    """A time from the server as seconds: a finite number >= 0, else `None`.

    `null`, strings, booleans, NaN and infinities are not times.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def time_range(start: Any, end: Any) -> str:
    """`mm:ss-mm:ss` (with an en dash) for a clip or a cited moment; `?` if unknown."""

    def mmss(value: Any) -> str:
        time = seconds(value)
        if time is None:
            return "?"
        whole = int(time)
        return f"{whole // 60:02d}:{whole % 60:02d}"

    return f"{mmss(start)}\u2013{mmss(end)}"


def is_answer(item: Mapping[str, Any]) -> bool:
    """A message without `phase` is the answer; an unknown phase is not."""
    return (
        item.get("type", "message") == "message" and item.get("phase") in _ANSWER_PHASES
    )


def text_parts(parts: Any, offset: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """The joined text of content parts, and their annotations moved by `offset`."""
    text, notes = "", []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            continue
        moved = offset + len(text)
        for note in part.get("annotations") or ():
            if isinstance(note, dict) and type(note.get("start_index")) is int:
                note = dict(note)  # noqa: PLW2901 - a moved copy
                note["start_index"] += moved
                if type(note.get("end_index")) is int:
                    note["end_index"] += moved
                notes.append(note)
        text += valid_text(part["text"])  # one code point each: offsets hold
    return text, notes


def step_of(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A tool step from a `function_call` / `function_call_output` item."""
    kind = item.get("type")
    keys: tuple[str, ...]
    if kind == "function_call":
        keys = ("id", "call_id", "name", "arguments")
    elif kind == "function_call_output":
        keys = ("id", "call_id", "output")
    else:
        return None
    return {"type": kind, **{k: item.get(k) for k in keys}}


@dataclass
class Output:
    """The answer a response snapshot holds."""

    text: str = ""
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def checked(text: str, notes: Iterable[Any]) -> list[dict[str, Any]]:
        """The annotations that fit `text`: in range, in order, not overlapping."""
        kept: list[dict[str, Any]] = []
        end = -1
        for note in notes:
            start, last = note.get("start_index"), note.get("end_index")
            if (
                type(start) is int
                and type(last) is int
                and end < start <= last < len(text)
            ):
                for key in _TIMES:  # a time that is not one is left out
                    if key in note and seconds(note[key]) is None:
                        note = {k: v for k, v in note.items() if k != key}  # noqa: PLW2901
                kept.append(note)
                end = last
            else:
                logger.debug("Jockey annotation dropped, not in the text: %.200r", note)
        return kept


def read_output(output: Any) -> Output:
    """Answer text and citations of an `output` list."""
    result = Output()
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and is_answer(item):
            text, notes = text_parts(item.get("content"), len(result.text))
            result.text += text
            result.annotations.extend(notes)
    return result
