"""Response objects and the event sequence of a streamed response.

The order is the documented one (docs/protocol.md): `response.created`,
`response.in_progress`, then per output item `output_item.added` (a message
already holding one empty `output_text` part), `content_part.added`,
`output_text.delta`…, `output_text.done`, `content_part.done` (annotations
filled in), `output_item.done`; finally `response.completed` with the full
object and `usage` (`input_tokens`, `output_tokens` only). Sequence numbers are
added by the writer, which shares the counter with keepalives. A truncated
answer ends with `response.completed` whose status is `incomplete` (the SDK's
event union has no `response.incomplete`).

With `include: ["intermediate_outputs"]`, a commentary message, a
`function_call` (with `response.function_call_arguments.done`) and its
`function_call_output` come before the answer.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_jockey.emulator._answers import (
    Session,
    compose,
    narrate,
    pieces,
    select,
)
from langchain_jockey.emulator._prompts import read
from langchain_jockey.emulator._requests import ApiError, ParsedRequest
from langchain_jockey.emulator._schema import SchemaError, fill
from langchain_jockey.emulator._store import KnowledgeStore, Moment

__all__ = ["Plan", "events", "failed_snapshot", "new_id", "plan_response"]

_SEL = re.compile(r"\{\{sel:(\d+)\}\}")
Media = Callable[[str, float], tuple[str | None, str | None]]
"""A cited moment's `(thumbnail_url, hls_url)`, from its item id and start."""
_EMPTY_PART = {"type": "output_text", "text": "", "annotations": []}


def new_id(prefix: str) -> str:
    """`<prefix>_<UUIDv7>`: a millisecond timestamp, then random bits."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{prefix}_{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339() -> str:
    """Now, as `2026-07-11T03:13:57Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Output:
    """One output item: its finished form and the delta pieces of its text."""

    item: dict[str, Any]
    pieces: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything one response will say, decided before the first byte."""

    snapshot: dict[str, Any]
    outputs: list[Output]
    final: dict[str, Any]
    cited: tuple[Moment, ...]
    answer_text: str


def resolve_selections(
    req: ParsedRequest, store: KnowledgeStore
) -> tuple[str, frozenset[str] | None]:
    """The question with `{{sel:N}}` replaced by titles, and the item ids to search."""
    groups: list[frozenset[str]] = []
    for index, sel in enumerate(req.selections):
        if sel["kind"] == "item":
            if store.video(sel["id"]) is None:
                raise ApiError(
                    400,
                    "parameter_invalid",
                    f"selections[{index}]: item {sel['id']} is not in knowledge "
                    f"store {store.store_id}.",
                )
            groups.append(frozenset({sel["id"]}))
        else:
            members = store.collections.get(sel["id"])
            if members is None:
                raise ApiError(
                    400,
                    "parameter_invalid",
                    f"selections[{index}]: collection {sel['id']} is not in "
                    f"knowledge store {store.store_id}.",
                )
            groups.append(frozenset(members))
    used: set[int] = set()

    def title(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n >= len(groups):
            raise ApiError(
                400,
                "parameter_invalid",
                f"{match.group(0)} refers to selections[{n}], but only "
                f"{len(groups)} selection(s) were given.",
            )
        used.add(n)
        names = [v.title for v in store.videos if v.item_id in groups[n]]
        return " and ".join(names)

    question = _SEL.sub(title, req.question)
    chosen = [groups[i] for i in sorted(used)] if used else groups
    within = frozenset().union(*chosen) if chosen else None
    return question, within


def _message(
    item_id: str, phase: str, text: str, annotations: list[dict[str, Any]], status: str
) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "phase": phase,
        "content": [{"type": "output_text", "text": text, "annotations": annotations}],
    }


def _read_from(moments: list[Moment], note: str) -> str:
    """What a structured answer was read from, and what it did not find."""
    if not moments:
        return f"Nothing in the knowledge store answers this. {note}".strip()
    clips = "; ".join(f"{m.video.title} ({m.time_range})" for m in moments)
    return f"Reading the fields from: {clips}. {note}".strip()


def _steps(
    session: Session,
    question: str,
    found: list[Moment],
    within: frozenset[str] | None,
    reading: str = "",
) -> list[Output]:
    """Commentary, the search call and its results, then `reading`, if any.

    `reading` says what a structured answer's fields were read from and which
    the moments did not answer.
    """
    sid = session.session_id
    note = f"Searching the knowledge store for moments about: {question[:80]}"
    commentary = Output(
        _message(
            f"msg_{sid}_{session.next_item_number()}",
            "commentary",
            note,
            [],
            "completed",
        ),
        pieces(note),
    )
    number = session.next_item_number()
    args: dict[str, Any] = {"query": question[:200], "limit": len(found) or 3}
    if within is not None:
        args["item_ids"] = sorted(within)
    call = Output(
        {
            "type": "function_call",
            "id": f"fc_{sid}_{number}",
            "status": "completed",
            "name": "search_knowledge_store",
            "call_id": f"call_{number}",
            "arguments": json.dumps(args),
        }
    )
    results = [
        {
            "item_id": m.video.item_id,
            "title": m.video.title,
            "start_sec": m.start_sec,
            "end_sec": m.end_sec,
            "description": m.description,
        }
        for m in found
    ]
    result = Output(
        {
            "type": "function_call_output",
            "id": f"fco_{sid}_{session.next_item_number()}",
            "status": "completed",
            "call_id": f"call_{number}",
            "output": json.dumps(results),
        }
    )
    steps = [commentary, call, result]
    if reading:
        steps.append(
            Output(
                _message(
                    f"msg_{sid}_{session.next_item_number()}",
                    "commentary",
                    reading,
                    [],
                    "completed",
                ),
                pieces(reading),
            )
        )
    return steps


def plan_response(
    req: ParsedRequest,
    store: KnowledgeStore,
    session: Session,
    *,
    truncate_after: int | None = None,
    length: int | None = None,
    media: Media | None = None,
) -> Plan:
    """Decide the whole response.

    `length` (a load knob for benchmarks) makes the answer exactly that many
    deltas, repeating the composed answer's pieces, without citations.
    `media` gives each citation its media URLs (else they are `null`).

    Raises:
        ApiError: for selections or a schema the emulator cannot use (400).
    """
    question, within = resolve_selections(req, store)
    asked = read(question, req.instructions).question  # what the search is about
    found_note = ""
    if req.text_format is not None:
        moments = select(
            store,
            question,
            session,
            limit=3,
            within=within,
            instructions=req.instructions,
        )
        try:
            filled = fill(req.text_format["schema"], moments, asked, narrate)
        except SchemaError as exc:
            raise ApiError(
                400, "parameter_invalid", f"text.format.schema: {exc}"
            ) from None
        text = json.dumps(filled.value, ensure_ascii=False)
        found_note = _read_from(moments, filled.note)
        answer_pieces, annotations, cited = (
            pieces(text, json_text=True),
            [],
            tuple(moments),
        )
    else:
        answer = compose(
            store, question, session, instructions=req.instructions, within=within
        )
        text, annotations, cited = answer.text, answer.annotations, answer.cited
        if media is not None:
            annotations = [_with_media(note, media) for note in annotations]
        answer_pieces = pieces(text)
        if length is not None:
            answer_pieces = [
                answer_pieces[i % len(answer_pieces)] for i in range(length)
            ]
            text, annotations = "".join(answer_pieces), []
    outputs = (
        _steps(session, asked, list(cited), within, found_note)
        if req.intermediate
        else []
    )
    limit = min(x for x in (truncate_after, len(answer_pieces)) if x is not None)
    status = "completed"
    if limit < len(answer_pieces):
        answer_pieces = answer_pieces[:limit]
        text = "".join(answer_pieces)
        annotations = [a for a in annotations if a["end_index"] < len(text)]
        status = "incomplete"
    answer_id = f"msg_{session.session_id}_{session.next_item_number()}"
    outputs.append(
        Output(
            _message(answer_id, "final_answer", text, annotations, status),
            answer_pieces,
        )
    )
    snapshot: dict[str, Any] = {
        "id": new_id("resp"),
        "type": "response",
        "object": "response",
        "status": "in_progress",
        "incomplete_details": None,
        "output": [],
        "session_id": session.session_id,
        "knowledge_store_id": store.store_id,
        "created_at": rfc3339(),
    }
    context = sum(len(t.question) + len(t.text) for t in session.turns)
    usage = {
        "input_tokens": 1200
        + (len(question) + len(req.instructions or "") + context) // 4,
        "output_tokens": sum(len(o.pieces) for o in outputs),
    }
    final = {
        **snapshot,
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"}
        if status == "incomplete"
        else None,
        "output": [o.item for o in outputs],
        "usage": usage,
        "created_at": rfc3339(),
    }
    return Plan(snapshot, outputs, final, cited, text)


def _with_media(note: dict[str, Any], media: Media) -> dict[str, Any]:
    thumbnail, hls = media(note["item_id"], note["start_sec"])
    return {**note, "thumbnail_url": thumbnail, "hls_url": hls}


def failed_snapshot(plan: Plan) -> dict[str, Any]:
    """The `response.failed` snapshot: status failed, no usage (docs/protocol.md)."""
    return {**plan.snapshot, "status": "failed", "created_at": rfc3339()}


def events(plan: Plan) -> Iterator[dict[str, Any]]:
    """The events of `plan`, without sequence numbers, up to `response.completed`."""
    yield {"type": "response.created", "response": plan.snapshot}
    yield {"type": "response.in_progress", "response": plan.snapshot}
    for index, output in enumerate(plan.outputs):
        item = output.item
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            yield {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {
                    **item,
                    "status": "in_progress",
                    "content": [dict(_EMPTY_PART)],
                },
            }
            yield {
                "type": "response.content_part.added",
                **where,
                "content_index": 0,
                "part": dict(_EMPTY_PART),
            }
            for piece in output.pieces:
                yield {
                    "type": "response.output_text.delta",
                    **where,
                    "content_index": 0,
                    "delta": piece,
                }
            yield {
                "type": "response.output_text.done",
                **where,
                "content_index": 0,
                "text": part["text"],
            }
            yield {
                "type": "response.content_part.done",
                **where,
                "content_index": 0,
                "part": part,
            }
        elif item["type"] == "function_call":
            yield {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "status": "in_progress", "arguments": ""},
            }
            yield {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": item["arguments"],
            }
        else:
            yield {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "status": "in_progress", "output": ""},
            }
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    yield {"type": "response.completed", "response": plan.final}
