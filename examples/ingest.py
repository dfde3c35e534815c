"""From a folder of videos to a streamed, cited answer and a retriever query.

Makes three small video files (tiny but valid MP4s), creates a knowledge
store, adds the folder with progress bars (upload, then indexing), and asks
about the new videos. Running it again on the same store uploads nothing.

The emulator does not watch videos: what a video is about comes from its file
name and the `description` and `transcript` metadata given here (with the live
API, Jockey watches the video itself and the metadata is just metadata).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import jockey, mmss

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import sample_video

VIDEOS = {
    "lighthouse_tour.mp4": (
        95,
        {
            "description": "A keeper climbs the spiral stairs of the lighthouse.",
            "transcript": "00:40 The lamp turns once every ten seconds.\n"
            "01:10 From the gallery you can see the whole bay.",
        },
    ),
    "pottery_class.mp4": (
        120,
        {
            "description": "Students throw bowls on the wheel.",
            "transcript": "00:30 Wet your hands before you centre the clay.\n"
            "01:20 The bowls dry for a day before the kiln.",
        },
    ),
    "tram_ride.mp4": (
        60,
        {"description": "A tram crosses the old bridge at dusk."},
    ),
}

with jockey() as llm, tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    for name, (seconds, _) in VIDEOS.items():
        sample_video(folder / name, seconds=seconds)

    store = KnowledgeStore.create(
        "Example: city life", base_url=llm.base_url, api_key=llm.api_key
    )
    results = store.add(
        folder,
        metadata=lambda source: VIDEOS[Path(source).name][1],
        show_progress=True,
    )
    for result in results:
        print(f"{Path(result.source).name}: {result.item_id} {result.status}")

    again = store.add(folder, metadata=lambda source: VIDEOS[Path(source).name][1])
    print(f"Added again: {sum(r.uploaded for r in again)} uploaded (already there).")

    question = "How often does the lighthouse lamp turn?"
    print(f"\nQ: {question}\nA: ", end="", flush=True)
    for chunk in store.as_chat_model().stream(question):
        print(chunk.text, end="", flush=True)
    print()

    docs = store.as_retriever(k=2).invoke("drying bowls before the kiln")
    for doc in docs:
        meta = doc.metadata
        start, end = mmss(meta["start_sec"]), mmss(meta["end_sec"])
        print(f"Clip: {meta['title']} {start}-{end}")
