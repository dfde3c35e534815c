"""The knowledge-store endpoints: the store, its items, and search.

Shapes follow the official SDK (`twelvelabs` 1.3.6): `KnowledgeStore`,
`KnowledgeStoreItemsListResponse`, `KnowledgeStoreItem`,
`SearchKnowledgeStoreResponse` with `SearchKnowledgeStoreHit_Video` and
`VideoMatch`. Search ranks moments with the same BM25 as the answers
(`_store.py`); each moment is a clip.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from langchain_jockey.emulator._requests import ApiError, _bad
from langchain_jockey.emulator._store import KnowledgeStore, Moment, Video

__all__ = ["item_object", "list_items", "search", "store_object"]

_CREATED = "2026-07-01T09:00:00Z"
_MODALITIES = ("visual", "audio")
_FILTER_KEYS = {"asset_type", "item_id"}
_BODY_KEYS = {
    "query",
    "filter",
    "search_options",
    "group_by",
    "page_size",
    "page_token",
    "include_metadata",
}
# What is said aloud in the demo videos (a clip's `transcription`), by title and
# moment index.
_SPEECH = {
    "Under-12 football final": {
        6: "Keep your shape, stay compact, and win the second balls.",
    },
    "Sourdough bread masterclass": {
        0: "This is my starter. I feed it twice a day, equal flour and water.",
        2: "While it rests, the gluten starts to form on its own.",
        10: "Listen: if it sounds hollow, it is done.",
    },
    "Fish market walkthrough": {
        2: "Lot one, fresh cod, who will start me at forty?",
        8: "Steam it for twelve minutes and it is ready.",
    },
    "Lifeboat rescue drill": {
        11: "Good launch, quick recovery; next time call the casualty's position.",
    },
}
_USER_METADATA: dict[str, dict[str, Any]] = {
    "Harbour at dawn (timelapse)": {"location": "north quay", "camera": "timelapse"},
    "Fish market walkthrough": {"location": "market hall", "language": "en"},
    "Under-12 football final": {"sport": "football", "teams": ["red", "blue"]},
    "Sourdough bread masterclass": {"course": "baking", "language": "en"},
    "Mountain bike trail: Ridge Loop": {"sport": "cycling", "difficulty": "red"},
    "Lifeboat rescue drill": {"crew": "volunteer", "language": "en"},
}


def store_object(store: KnowledgeStore) -> dict[str, Any]:
    """`GET /knowledge-stores/{id}`: a `KnowledgeStore`."""
    return {
        "_id": store.store_id,
        "name": store.name,
        "description": "A demo knowledge store of invented videos.",
        "item_count": len(store.videos),
        "created_at": _CREATED,
        "updated_at": _CREATED,
        "metadata": {"demo": True},
    }


def item_object(video: Video) -> dict[str, Any]:
    """A `KnowledgeStoreItem` for a video: `ready`, with system and user metadata."""
    return {
        "_id": video.item_id,
        "asset_type": "video",
        "asset_id": video.item_id.replace("ksi_", "asset_"),
        "status": "ready",
        "system_metadata": {
            "asset_type": "video",
            "filename": f"{video.title.lower().replace(' ', '_')}.mp4",
            "duration": video.duration,
            "fps": 25.0,
            "width": 1920,
            "height": 1080,
            "codec_name": "h264",
            "size": int(video.duration * 500_000),
        },
        "metadata": {"title": video.title, **_USER_METADATA.get(video.title, {})},
        "created_at": _CREATED,
        "updated_at": _CREATED,
    }


def list_items(store: KnowledgeStore, page: int, page_limit: int) -> dict[str, Any]:
    """`GET /knowledge-stores/{id}/items`: one page of items, with `page_info`."""
    if page < 1 or not 1 <= page_limit <= 50:
        msg = "page must be at least 1 and page_limit between 1 and 50."
        raise ApiError(400, "parameter_invalid", msg)
    videos = store.videos[(page - 1) * page_limit : page * page_limit]
    return {
        "data": [item_object(v) for v in videos],
        "page_info": {
            "limit_per_page": page_limit,
            "page": page,
            "total_page": max(1, math.ceil(len(store.videos) / page_limit)),
            "total_results": len(store.videos),
        },
    }


def _operator(value: Any, name: str) -> list[Any]:
    """The values an `{eq}` / `{in}` filter allows."""
    if not isinstance(value, dict) or len(value) != 1 or not {"eq", "in"} >= set(value):
        raise _bad(f"filter.{name} takes exactly one of 'eq' or 'in'.")
    values = [value["eq"]] if "eq" in value else value["in"]
    if not isinstance(values, list) or not values:
        raise _bad(f"filter.{name}.in must be a non-empty array.")
    if not all(isinstance(v, str) for v in values):
        raise _bad(f"filter.{name} compares strings.")
    return values


def _within(store: KnowledgeStore, spec: Any) -> frozenset[str] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise _bad("filter must be an object.")
    unknown = set(spec) - _FILTER_KEYS
    if unknown:
        raise _bad(f"filter.{min(unknown)} is unknown.", "parameter_unknown")
    ids = {v.item_id for v in store.videos}
    if "asset_type" in spec and "video" not in _operator(
        spec["asset_type"], "asset_type"
    ):
        ids = set()
    if "item_id" in spec:
        ids &= set(_operator(spec["item_id"], "item_id"))
    return frozenset(ids)


def _token(offset: int, query: str) -> str:
    raw = json.dumps({"o": offset, "q": query}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: Any, query: str) -> int:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4))
        data = json.loads(raw)
        if data["q"] != query or type(data["o"]) is not int or data["o"] < 0:
            raise ValueError(token)  # noqa: TRY301 - reported just below
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        msg = "page_token is malformed or belongs to another search."
        raise _bad(msg) from exc
    return int(data["o"])


def _said(moment: Moment) -> str | None:
    """What is said aloud in `moment`: an added video's transcript, or the demo's."""
    if moment.video.metadata is not None:
        return moment.said
    return _SPEECH.get(moment.video.title, {}).get(moment.index)


def _match(moment: Moment, modalities: list[str]) -> dict[str, Any]:
    said = _said(moment)
    match: dict[str, Any] = {
        "start_sec": moment.start_sec,
        "end_sec": moment.end_sec,
        "modalities": [m for m in modalities if m == "visual" or said],
    }
    if not match["modalities"]:
        match["modalities"] = ["audio"]
    if said:
        match["transcription"] = said
    return match


def _metadata(video: Video) -> dict[str, Any]:
    """A hit's `metadata`: the video's title, then its item metadata (or the demo's).

    An added video's title is its metadata's `title`, else one made from its
    file name: the API returns only the metadata the caller gave, the emulator
    adds the title it reads, as for its demo videos, so that a retriever's
    clips stay readable.
    """
    given = video.metadata
    user = {
        "title": video.title,
        **(_USER_METADATA.get(video.title, {}) if given is None else given),
    }
    return {
        "system": {
            "duration": video.duration,
            "width": 1920,
            "height": 1080,
            "size": int(video.duration * 500_000),
        },
        "user": user,
    }


def search(store: KnowledgeStore, body: Any) -> dict[str, Any]:
    """`POST /knowledge-stores/{id}/search`: a `SearchKnowledgeStoreResponse`."""
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    unknown = set(body) - _BODY_KEYS
    if unknown:
        raise _bad(f"{min(unknown)} is unknown.", "parameter_unknown")
    query = body.get("query")
    text = query.get("text") if isinstance(query, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise _bad("query.text is required.", "parameter_not_provided")
    within = _within(store, body.get("filter"))
    options = body.get("search_options") or {}
    video = (options.get("video") or {}) if isinstance(options, dict) else None
    if not isinstance(video, dict):
        raise _bad("search_options must be {'video': {'modalities': [...]}}.")
    modalities = video.get("modalities") or ["visual"]
    if not isinstance(modalities, list) or not all(
        m in _MODALITIES for m in modalities
    ):
        raise _bad("search_options.video.modalities takes 'visual' and 'audio'.")
    group_by = body.get("group_by") or "none"
    if group_by not in ("none", "item"):
        raise _bad("group_by must be 'none' or 'item'.")
    size = body.get("page_size", 10)
    if type(size) is not int or not 1 <= size <= 50:
        raise _bad("page_size must be an integer from 1 to 50.")
    ranked = [m for _, m in store.rank(text, within=within)]
    if modalities == ["audio"]:
        ranked = [m for m in ranked if _said(m)]
    groups: list[list[Moment]] = []
    if group_by == "item":
        by_video: dict[str, list[Moment]] = {}
        for moment in ranked:
            by_video.setdefault(moment.video.item_id, []).append(moment)
        groups = list(by_video.values())
    else:
        groups = [[m] for m in ranked]
    start = _offset(body.get("page_token"), text)
    page = groups[start : start + size]
    hits = []
    for rank, group in enumerate(page, start + 1):
        hit: dict[str, Any] = {
            "asset_type": "video",
            "rank": rank,
            "item_id": group[0].video.item_id,
            "matches": [_match(m, modalities) for m in group],
        }
        if body.get("include_metadata"):
            hit["metadata"] = _metadata(group[0].video)
        hits.append(hit)
    response: dict[str, Any] = {
        "data": hits,
        "effective_search_options": {"video": {"modalities": modalities}},
    }
    if start + size < len(groups):
        response["next_page_token"] = _token(start + size, text)
    return response
