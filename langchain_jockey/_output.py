"""Reading a Jockey response's `output` list. No I/O.

Shared by the stream reducer (on the terminal snapshot) and the non-streaming
path, so both give the same text, citations, reasoning and steps.

- The answer is the text of the `message` items whose `phase` is
  `final_answer` or absent (PROTOCOL.md §7.1), joined in order.
- Annotations keep Jockey's own form (inclusive `end_index`), with offsets moved
  from their content part into that joined text, so `text[start:end + 1]` is
  the `[N]` marker. `_blocks` turns them into LangChain `Citation`s.
- Commentary messages (any other `phase`) are Jockey's narration while it works:
  reasoning, joined with blank lines, never part of the answer.
- `function_call` / `function_call_output` items are Jockey's own tool steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "REASONING_KEY",
    "STEPS_KEY",
    "Output",
    "is_answer",
    "read_output",
    "step_of",
]

REASONING_KEY = "reasoning_content"
"""`additional_kwargs` key of Jockey's commentary (the convention of other
LangChain integrations that stream reasoning)."""
STEPS_KEY = "jockey_steps"
"""`additional_kwargs` key of Jockey's tool steps, in order."""
_ANSWER_PHASES = (None, "final_answer")


def is_answer(item: Mapping[str, Any]) -> bool:
    """A message without `phase` is the answer; an unknown phase is not (§7.1)."""
    return (
        item.get("type", "message") == "message" and item.get("phase") in _ANSWER_PHASES
    )


def _texts(item: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    parts = []
    for part in item.get("content") or ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            notes = part.get("annotations")
            parts.append((part["text"], notes if isinstance(notes, list) else []))
    return parts


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
    """What a response said."""

    text: str = ""
    annotations: list[dict[str, Any]] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def additional_kwargs(self) -> dict[str, Any]:
        """`AIMessage.additional_kwargs` for the reasoning and steps, if any."""
        extra: dict[str, Any] = {}
        if self.reasoning:
            extra[REASONING_KEY] = "\n\n".join(self.reasoning)
        if self.steps:
            extra[STEPS_KEY] = self.steps
        return extra


def read_output(output: Any) -> Output:
    """Answer text, citations, reasoning and steps of an `output` list."""
    result = Output()
    if not isinstance(output, list):
        return result
    for item in output:
        if not isinstance(item, dict):
            continue
        step = step_of(item)
        if step is not None:
            result.steps.append(step)
        elif is_answer(item):
            for text, notes in _texts(item):
                offset = len(result.text)
                for note in notes:
                    if isinstance(note, dict) and isinstance(
                        note.get("start_index"), int
                    ):
                        moved = dict(note)
                        moved["start_index"] += offset
                        if isinstance(moved.get("end_index"), int):
                            moved["end_index"] += offset
                        result.annotations.append(moved)
                result.text += text
        elif item.get("type", "message") == "message":
            narration = "".join(text for text, _ in _texts(item))
            if narration:
                result.reasoning.append(narration)
    return result
