"""Standard LangChain content blocks for Jockey messages. No I/O.

Registered as the content translator of provider `"twelvelabs"`, so
`message.content_blocks` (and `output_version="v1"`) show:

- Jockey's commentary as one `reasoning` block;
- its tool steps as `server_tool_call` / `server_tool_result` blocks (Jockey
  runs them itself; they are never client tool calls);
- the answer as one `text` block whose `annotations` are `Citation`s. Jockey's
  `end_index` is inclusive; a `Citation`'s is exclusive, so
  `text[c["start_index"]:c["end_index"]]` is the `[N]` marker. The video time
  range, ids and URLs are in `extras`.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import register_translator

from langchain_jockey._output import PROVIDER, REASONING_KEY, STEPS_KEY

__all__ = ["citation", "register"]

_EXTRAS = (
    "type",
    "item_id",
    "collection_id",
    "start_sec",
    "end_sec",
    "title",
    "thumbnail_url",
    "hls_url",
)


def citation(note: dict[str, Any]) -> types.Citation:
    """A LangChain `Citation` from a Jockey annotation (offsets into the text)."""
    block = types.Citation(type="citation")
    if isinstance(note.get("start_index"), int):
        block["start_index"] = note["start_index"]
    if isinstance(note.get("end_index"), int):
        block["end_index"] = note["end_index"] + 1
    if isinstance(note.get("title"), str):
        block["title"] = note["title"]
    if isinstance(note.get("hls_url"), str):
        block["url"] = note["hls_url"]
    block["extras"] = {k: note[k] for k in _EXTRAS if k in note}
    return block


def _steps(steps: Any) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = []
    for step in steps if isinstance(steps, list) else ():
        if not isinstance(step, dict):
            continue
        call_id = str(step.get("call_id") or step.get("id") or "")
        if step.get("type") == "function_call":
            raw = step.get("arguments")
            try:
                args = json.loads(raw or "{}") if isinstance(raw, str) else raw
            except (ValueError, RecursionError):
                args = raw
            blocks.append(
                types.ServerToolCall(
                    type="server_tool_call",
                    id=call_id,
                    name=str(step.get("name") or ""),
                    args=args if isinstance(args, dict) else {"arguments": args},
                )
            )
        elif step.get("type") == "function_call_output":
            blocks.append(
                types.ServerToolResult(
                    type="server_tool_result",
                    tool_call_id=call_id,
                    status="success",
                    output=step.get("output"),
                )
            )
    return blocks


def _translate(message: AIMessage) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get(REASONING_KEY)
    if isinstance(reasoning, str) and reasoning:
        blocks.append(
            types.ReasoningContentBlock(type="reasoning", reasoning=reasoning)
        )
    blocks.extend(_steps(message.additional_kwargs.get(STEPS_KEY)))
    text = str(message.text)  # an exact str: core merges blocks by type
    notes = message.response_metadata.get("annotations")
    if text or notes or not blocks:
        block = types.TextContentBlock(type="text", text=text)
        if isinstance(notes, list) and notes:
            block["annotations"] = [citation(n) for n in notes if isinstance(n, dict)]
        blocks.append(block)
    return blocks


def _translate_chunk(chunk: AIMessageChunk) -> list[types.ContentBlock]:
    # A chunk with only reasoning or a step must not add an empty text block:
    # while streaming, core numbers blocks by changes of type.
    blocks = _translate(chunk)
    if (
        len(blocks) > 1
        and blocks[-1]["type"] == "text"
        and not blocks[-1].get("text")
        and not blocks[-1].get("annotations")
    ):
        blocks.pop()
    return blocks


def register() -> None:
    """Make `content_blocks` of Jockey messages use this module."""
    register_translator(PROVIDER, _translate, _translate_chunk)
