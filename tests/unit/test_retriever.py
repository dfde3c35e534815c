"""KnowledgeStoreRetriever over httpx.MockTransport: documents, pages, bad input,
errors; sync and async."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from langchain_jockey import (
    JockeyAuthenticationError,
    JockeyInputError,
    KnowledgeStoreRetriever,
)
from tests.support import API_KEY, STORE

ITEM = "ksi_0190cccc-0000-7000-8000-000000000003"


def hit(rank: int, start: float, *, said: str | None = None) -> dict[str, Any]:
    match: dict[str, Any] = {
        "start_sec": start,
        "end_sec": start + 10,
        "modalities": ["visual"],
    }
    if said:
        match["transcription"] = said
    return {
        "asset_type": "video",
        "rank": rank,
        "item_id": ITEM,
        "metadata": {"user": {"title": "Match highlights", "sport": "football"}},
        "matches": [match],
    }


class Pages:
    """Answers searches with the given pages, in order; records the bodies."""

    def __init__(self, *pages: dict[str, Any], status: int = 200) -> None:
        self.pages = list(pages)
        self.status = status
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        assert request.url.path == f"/v1.3/knowledge-stores/{STORE}/search"
        assert request.headers["x-api-key"] == API_KEY
        page = self.pages[min(len(self.bodies), len(self.pages)) - 1]
        return httpx.Response(self.status, json=page)

    def retriever(self, **kwargs: Any) -> KnowledgeStoreRetriever:
        transport = httpx.MockTransport(self)
        return KnowledgeStoreRetriever(
            knowledge_store_id=STORE,
            api_key=API_KEY,
            base_url="https://jockey.test/v1.3",
            http_client=httpx.Client(transport=transport),
            http_async_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )


@pytest.fixture(params=["sync", "async"])
def get(request):
    def go(retriever, query, **kwargs):
        if request.param == "sync":
            return retriever.invoke(query, **kwargs)
        return asyncio.run(retriever.ainvoke(query, **kwargs))

    return go


def test_each_clip_becomes_a_document_with_its_metadata(get) -> None:
    server = Pages({"data": [hit(1, 70, said="What a header!"), hit(2, 185)]})
    first, second = get(server.retriever(k=2), "the goal")
    assert first.page_content == "What a header!"  # the transcription
    assert second.page_content == "Match highlights, 03:05–03:15"  # title, range
    assert first.metadata == {
        "item_id": ITEM,
        "title": "Match highlights",
        "start_sec": 70.0,
        "end_sec": 80.0,
        "rank": 1,
        "modalities": ["visual"],
        "transcription": "What a header!",
        "knowledge_store_id": STORE,
        "source": f"{ITEM}#t=70,80",
        "user_metadata": {"title": "Match highlights", "sport": "football"},
    }
    assert first.id == f"{ITEM}:70-80"
    assert get(server.retriever(k=2), "the goal")[0].id == first.id  # stable
    assert server.bodies[0] == {
        "query": {"text": "the goal"},
        "page_size": 2,
        "include_metadata": True,
    }


def test_pages_are_fetched_until_there_are_k(get) -> None:
    server = Pages(
        {"data": [hit(1, 0), hit(2, 10)], "next_page_token": "t2"},
        {"data": [hit(3, 20), hit(4, 30)], "next_page_token": "t3"},
    )
    docs = get(server.retriever(k=3), "goal")
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    assert [b.get("page_token") for b in server.bodies] == [None, "t2"]
    assert [b["page_size"] for b in server.bodies] == [3, 1]


def test_options_are_sent_as_the_api_names_them(get) -> None:
    server = Pages({"data": [hit(1, 0)]})
    retriever = server.retriever(
        filter={"item_id": {"in": [ITEM]}},
        modalities=["visual", "audio"],
        group_by="item",
    )
    get(retriever, "goal", k=7)
    assert server.bodies[0] == {
        "query": {"text": "goal"},
        "filter": {"item_id": {"in": [ITEM]}},
        "search_options": {"video": {"modalities": ["visual", "audio"]}},
        "group_by": "item",
        "page_size": 7,
        "include_metadata": True,
    }


@pytest.mark.parametrize(
    ("make", "query", "kwargs", "fragment"),
    [
        (dict, "", {}, "non-empty query"),
        (dict, "   ", {}, "non-empty query"),
        (dict, "goal", {"k": 0}, "k must be"),
        (dict, "goal", {"top": 3}, "takes k="),
        (lambda: {"filter": {"colour": {"eq": "red"}}}, "goal", {}, "filter takes"),
        (lambda: {"filter": {"item_id": ITEM}}, "goal", {}, "exactly one of"),
    ],
)
def test_bad_input_is_an_error_before_any_request(
    get, make, query, kwargs, fragment
) -> None:
    server = Pages({"data": []})
    with pytest.raises(JockeyInputError, match=fragment):
        get(server.retriever(**make()), query, **kwargs)
    assert server.bodies == []


def test_k_below_one_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="k"):
        KnowledgeStoreRetriever(knowledge_store_id=STORE, api_key="k", k=0)


def test_http_errors_are_the_same_typed_errors_as_chatjockey(get) -> None:
    server = Pages({"code": "api_key_invalid", "message": "no"}, status=401)
    with pytest.raises(JockeyAuthenticationError):
        get(server.retriever(), "goal")


def test_the_key_is_in_no_repr() -> None:
    retriever = KnowledgeStoreRetriever(knowledge_store_id=STORE, api_key=API_KEY)
    assert API_KEY not in repr(retriever)
    assert API_KEY not in str(retriever.model_dump())
