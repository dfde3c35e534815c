"""What the emulator makes of an added video: its real duration, and search hits
that carry the item's metadata and what is said in each clip (#32 item 7)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import FAST, add, connect

HARBOUR = {
    "title": "Harbour at sunrise",
    "description": "The trawlers leave the harbour at sunrise.",
    "transcript": "00:20 Gulls follow the boats out.\n00:40 Nets go over the side.",
    "camera": "drone",
}


def search(store: KnowledgeStore, text: str, **options: object) -> dict:
    key = store.api_key.get_secret_value()  # type: ignore[union-attr]
    with httpx.Client(base_url=store.base_url, headers={"x-api-key": key}) as client:
        answer = client.post(
            f"/knowledge-stores/{store.knowledge_store_id}/search",
            json={"query": {"text": text}, "include_metadata": True, **options},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_search_hits_carry_the_items_metadata_and_transcript(mode, store, tmp_path):
    video = sample_video(tmp_path / "harbour.mp4", seconds=60)
    [result] = add(mode, store, video, metadata=HARBOUR)
    hits = search(store, "gulls follow the boats")["data"]
    hit = hits[0]
    assert hit["item_id"] == result.item_id
    user = hit["metadata"]["user"]
    assert {k: user[k] for k in HARBOUR} == HARBOUR
    assert user["source_sha256"]  # the item's metadata, as the client gave it
    match = hit["matches"][0]
    assert (match["start_sec"], match["end_sec"]) == (20.0, 40.0)
    assert match["transcription"] == "Gulls follow the boats out."
    # A described (seen, not said) moment has no transcription.
    seen = search(store, "at sunrise")["data"][0]["matches"][0]
    assert "transcription" not in seen
    # Searching what is said finds only the transcript's moments.
    audio = {"search_options": {"video": {"modalities": ["audio"]}}}
    said = search(store, "harbour", **audio)["data"]
    assert {m["transcription"] for h in said for m in h["matches"]} == {
        "Gulls follow the boats out.",
        "Nets go over the side.",
    }


def test_the_retriever_gives_the_transcript_and_metadata_of_an_added_video(
    mode, store, tmp_path
):
    video = sample_video(tmp_path / "harbour.mp4", seconds=60)
    [result] = add(mode, store, video, metadata=HARBOUR)
    retriever = store.as_retriever(k=1)
    query = "nets go over the side"
    if mode == "sync":
        docs = retriever.invoke(query)
    else:
        docs = asyncio.run(retriever.ainvoke(query))
    [doc] = docs
    assert doc.page_content == "Nets go over the side."
    assert doc.metadata["item_id"] == result.item_id
    assert doc.metadata["title"] == "Harbour at sunrise"
    assert doc.metadata["transcription"] == "Nets go over the side."
    assert doc.metadata["user_metadata"]["description"] == HARBOUR["description"]
    assert doc.metadata["user_metadata"]["camera"] == "drone"
    assert (doc.metadata["start_sec"], doc.metadata["end_sec"]) == (40.0, 60.0)


# -- the real duration, whatever the MP4 layout --------------------------------------


def api(emu: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key})


@pytest.mark.parametrize("kept", ["in memory", "data dir"])
@pytest.mark.parametrize("way", ["direct", "multipart"])
def test_an_mp4_whose_moov_follows_mdat_has_its_real_duration(
    mode, tmp_path: Path, way: str, kept: str
):
    # ffmpeg's default layout: moov at the end, past the emulator's first bytes.
    video = sample_video(
        tmp_path / "clip.mp4", seconds=8, size=3_000_000, faststart=False
    )
    kept_in = {"data_dir": tmp_path / "data"} if kept == "data dir" else {}
    threshold = 1_000_000 if way == "multipart" else 100_000_000
    with Emulator(**FAST, **kept_in) as emu, api(emu) as client:
        store = KnowledgeStore.create(
            "t", **connect(emu, tmp_path, multipart_threshold=threshold)
        )
        [result] = add(mode, store, video, metadata={"description": "A ferry docks."})
        asset = client.get(f"/assets/{result.asset_id}").json()
        assert asset["method"] == way
        assert asset["duration"] == 8.0
        path = f"/knowledge-stores/{store.knowledge_store_id}/items/{result.item_id}"
        item = client.get(path).json()
        assert item["system_metadata"]["duration"] == 8.0
        answer = store.as_chat_model().invoke("When does the ferry dock?")
        cited = [c["extras"] for b in answer.content_blocks for c in b["annotations"]]
        assert cited
        assert all(c["end_sec"] <= 8.0 for c in cited), cited  # today: 00:30-01:00
