"""The knowledge-store endpoints, as the official SDK sees them: every response
parses, with no field the SDK does not declare; search ranks like the answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from twelvelabs import TwelveLabs

from langchain_jockey.emulator import DEMO_STORE_ID, FAULT_HEADER, STORES
from tests.support import undeclared

STORE = STORES[DEMO_STORE_ID]
FOOTBALL = STORE.videos[2].item_id
BREAD = STORE.videos[3].item_id


@pytest.fixture
def sdk(emulator) -> TwelveLabs:
    return TwelveLabs(api_key=emulator.api_key, base_url=emulator.base_url)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"group_by": "item"},
        {"include_metadata": True},
        {"filter": {"item_id": {"eq": BREAD}}},
        {"filter": {"asset_type": {"in": ["video"]}, "item_id": {"in": [BREAD]}}},
        {"search_options": {"video": {"modalities": ["visual", "audio"]}}},
        {"page_size": 2},
    ],
    ids=["plain", "group-by-item", "metadata", "eq", "in", "audio", "paged"],
)
def test_the_sdk_parses_search_with_no_undeclared_field(sdk, options) -> None:
    result = sdk.knowledge_stores.search(
        knowledge_store_id=DEMO_STORE_ID, query={"text": "the bread dough"}, **options
    )
    assert result.data
    assert undeclared(result) == []
    assert [hit.rank for hit in result.data] == list(range(1, len(result.data) + 1))


def test_the_sdk_parses_the_store_and_its_items(sdk) -> None:
    store = sdk.knowledge_stores.retrieve(DEMO_STORE_ID)
    assert store.id == DEMO_STORE_ID
    assert undeclared(store) == []
    items = list(sdk.knowledge_store_items.list(DEMO_STORE_ID, page_limit=4))
    assert [i.id for i in items] == [v.item_id for v in STORE.videos]
    assert all(i.status == "ready" for i in items)
    assert all(undeclared(i) == [] for i in items)
    item = sdk.knowledge_store_items.retrieve(DEMO_STORE_ID, BREAD)
    assert item.metadata["title"] == STORE.videos[3].title


def search(client: httpx.Client, store: str = DEMO_STORE_ID, **body: Any) -> Any:
    return client.post(f"/knowledge-stores/{store}/search", json=body)


def test_search_ranks_clips_like_the_answers(client) -> None:
    hits = search(client, query={"text": "Who scores a goal?"}).json()["data"]
    assert hits[0]["item_id"] == FOOTBALL
    first = search(client, query={"text": "How is the bread shaped?"}).json()["data"][0]
    assert first["item_id"] == BREAD
    assert first["matches"][0]["start_sec"] == 180


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        (
            "When do the fishing boats come back, and what happens to their catch?",
            "sea",
        ),
        ("What happens at the start of the football match?", "sports"),
        ("When does the bread come out?", "food"),
    ],
)
def test_a_topic_word_keeps_other_topics_clips_out_of_the_top(
    client, query, topic
) -> None:
    hits = search(client, query={"text": query}, page_size=4).json()["data"]
    assert len(hits) == 4
    videos = {v.item_id: v for v in STORE.videos}
    assert all(topic in videos[h["item_id"]].topics for h in hits), hits


def test_group_by_item_gathers_each_videos_clips(client) -> None:
    hits = search(client, query={"text": "boats"}, group_by="item").json()["data"]
    ids = [h["item_id"] for h in hits]
    assert len(ids) == len(set(ids)) >= 2
    assert all(len(h["matches"]) >= 1 for h in hits)


def test_pages_follow_next_page_token_to_the_end(client) -> None:
    seen, token, pages = [], None, 0
    while True:
        body = {"query": {"text": "boats"}, "page_size": 2}
        if token:
            body["page_token"] = token
        page = search(client, **body).json()
        seen += [(h["item_id"], h["matches"][0]["start_sec"]) for h in page["data"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    everything = search(client, query={"text": "boats"}, page_size=50).json()["data"]
    assert seen == [(h["item_id"], h["matches"][0]["start_sec"]) for h in everything]
    assert pages > 1


def test_transcription_comes_with_clips_that_have_speech(client) -> None:
    hits = search(client, query={"text": "bread hollow"}).json()["data"]
    # Returned whenever the clip has speech, whichever modalities matched.
    assert hits[0]["matches"][0]["transcription"].startswith("Listen")
    assert hits[0]["matches"][0]["modalities"] == ["visual"]
    both = {"video": {"modalities": ["visual", "audio"]}}
    hits = search(client, query={"text": "bread hollow"}, search_options=both).json()[
        "data"
    ]
    assert hits[0]["matches"][0]["modalities"] == ["visual", "audio"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "parameter_not_provided"),
        ({"query": {"text": "  "}}, 400, "parameter_not_provided"),
        (
            {"query": {"text": "x"}, "filter": {"colour": {"eq": "red"}}},
            400,
            "parameter_unknown",
        ),
        ({"query": {"text": "x"}, "page_size": 51}, 400, "parameter_invalid"),
        ({"query": {"text": "x"}, "group_by": "video"}, 400, "parameter_invalid"),
        ({"query": {"text": "x"}, "page_token": "garbage"}, 400, "parameter_invalid"),
        ({"query": {"text": "x"}, "sort": 1}, 400, "parameter_unknown"),
    ],
)
def test_bad_searches_are_rejected_like_the_api(client, body, status, code) -> None:
    response = search(client, **body)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_unknown_store_and_item_are_not_found(client) -> None:
    assert search(client, "ks_nope", query={"text": "x"}).status_code == 404
    missing = client.get(f"/knowledge-stores/{DEMO_STORE_ID}/items/ksi_nope")
    assert missing.status_code == 404


def test_faults_and_keys_apply_to_search(client, emulator) -> None:
    injected = client.post(
        f"/knowledge-stores/{DEMO_STORE_ID}/search",
        json={"query": {"text": "x"}},
        headers={FAULT_HEADER: "status=503"},
    )
    assert injected.status_code == 503
    anonymous = httpx.post(
        f"{emulator.base_url}/knowledge-stores/{DEMO_STORE_ID}/search",
        json={"query": {"text": "x"}},
    )
    assert anonymous.status_code == 401
