"""Citations' media: a JPEG of the moment, an HLS playlist, made by ffmpeg (#33 item 5).

The emulator serves them itself, without a key, under a signed path that
expires: for an uploaded video from its file (kept with a data directory), for a
demo video from a stand-in test pattern as long as the video.
"""

from __future__ import annotations

import contextlib
import gc
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import (
    DEMO_API_KEY,
    DEMO_STORE_ID,
    MEDIA_PATH,
    STORES,
    Emulator,
    _clips,
    sample_video,
)
from tests.ingest.conftest import FAST, connect
from tests.media import decodes, jpeg_size, real_video, segments

LIGHTHOUSE = {"description": "A keeper climbs the stairs of the lighthouse."}
DURATION = {v.item_id: v.duration for v in STORES[DEMO_STORE_ID].videos}


def cite(emu: Emulator, question: str, store: str = DEMO_STORE_ID) -> list[Any]:
    """The citations of the emulator's answer to `question`."""
    answer = httpx.post(
        f"{emu.base_url}/responses",
        headers={"x-api-key": emu.api_key},
        json={
            "knowledge_store_id": store,
            "input": [{"type": "message", "role": "user", "content": question}],
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    notes = answer.json()["output"][-1]["content"][0]["annotations"]
    assert notes, question
    return notes


def fetch(url: str) -> httpx.Response:
    """GET a media URL as a browser would: no key (a long timeout: made on demand)."""
    return httpx.get(url, timeout=120)


def check_playlist(url: str, seconds: float, within: tuple[float, float]) -> None:
    """The playlist is HLS, about `seconds` long, and its segments load as TS.

    Those that hold the seconds `within`, and the last one.
    """
    playlist = fetch(url)
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    names, total = segments(playlist.text)
    assert abs(total - seconds) < 1.0, (total, seconds)
    step = total / len(names)  # equal segments but the last: 4 s (hls_time)
    wanted = range(int(within[0] // step), min(len(names), int(within[1] // step) + 1))
    for name in [*(names[i] for i in wanted), names[-1]]:
        assert re.fullmatch(r"seg_\d{5}\.ts", name)  # relative: the token is its path
        segment = fetch(url.rsplit("/", 1)[0] + "/" + name)
        assert segment.status_code == 200
        assert segment.headers["content-type"] == "video/mp2t"
        assert segment.content[0] == 0x47  # an MPEG-TS sync byte


@pytest.fixture
def on_disk(tmp_path: Path) -> Any:
    """An emulator with a data directory, and a store on it."""
    with Emulator(data_dir=tmp_path / "data", **FAST) as emu:
        yield emu, KnowledgeStore.create("media", **connect(emu, tmp_path))


def test_a_demo_citation_shows_its_moment_and_plays_a_stand_in_as_long_as_the_video(
    emulator: Emulator,
) -> None:
    first, *_ = cite(emulator, "When do the fishing boats leave?")
    other, *_ = cite(emulator, "When does the ferry arrive?")
    assert first["item_id"] == other["item_id"]
    assert first["start_sec"] != other["start_sec"]
    pictures = []
    for note in (first, other):
        thumbnail = fetch(note["thumbnail_url"])
        assert thumbnail.status_code == 200
        assert thumbnail.headers["content-type"] == "image/jpeg"
        assert jpeg_size(thumbnail.content) == (320, 180)
        pictures.append(thumbnail.content)
    assert pictures[0] != pictures[1]  # each of its own moment
    assert first["hls_url"].split("/")[-2:] == other["hls_url"].split("/")[-2:]
    moment = (first["start_sec"], first["end_sec"])
    check_playlist(first["hls_url"], DURATION[first["item_id"]], moment)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])  # copied, or re-encoded
def test_an_uploaded_videos_citation_shows_and_plays_its_file_until_the_asset_goes(
    on_disk: Any, tmp_path: Path, codec: str
) -> None:
    emu, store = on_disk
    video = real_video(tmp_path / "lighthouse.mp4", 6, codec=codec)
    [added] = store.add(video, metadata=LIGHTHOUSE)
    (note,) = cite(emu, "Who climbs the lighthouse?", store.knowledge_store_id)
    assert note["item_id"] == added.item_id
    base = f"{emu.base_url.removesuffix('/v1.3')}{MEDIA_PATH}"
    assert note["thumbnail_url"].startswith(base)
    thumbnail = fetch(note["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert jpeg_size(thumbnail.content) == (320, 240)  # the file's own frame
    check_playlist(note["hls_url"], 6.0, (0, 6))
    assert decodes(note["hls_url"])
    media = tmp_path / "data" / "files" / f"{added.asset_id}.media"
    assert (media / "hls" / "index.m3u8").is_file()  # kept next to the file
    gone = httpx.delete(
        f"{emu.base_url}/assets/{added.asset_id}", headers={"x-api-key": emu.api_key}
    )
    assert gone.status_code == 204
    assert not media.exists()
    assert not (tmp_path / "data" / "files" / added.asset_id).exists()
    assert fetch(note["thumbnail_url"]).status_code == 404
    assert fetch(note["hls_url"]).status_code == 404


def test_media_need_no_key_and_a_bad_or_expired_token_gets_403(
    emulator: Emulator,
) -> None:
    note, *_ = cite(emulator, "When do the fishing boats leave?")
    url = note["thumbnail_url"]
    token, item = url.split("/")[-3:-1]
    clips = emulator.server.clips
    expired = clips.token(item, int(time.time()) - 1)
    other_item = clips.token("ksi_0195d0e0-0000-7000-8000-0000000000b1", 2**33)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    later = str(int(token.split(".")[0]) + 1) + "." + token.split(".")[1]
    bad = [expired, other_item, flipped, later, "", "x", "9" * 13 + ".x", "1.", "."]
    for wrong in bad:
        response = fetch(url.replace(f"/{token}/", f"/{wrong}/"))
        assert response.status_code == 403, wrong
        assert response.json()["code"] == "signature_invalid"
    assert fetch(url).status_code == 200  # no x-api-key: the token is enough
    keyed = httpx.get(url, headers={"x-api-key": "tlk_wrong"}, timeout=30)
    assert keyed.status_code == 200  # a key plays no part
    missing = url.rsplit("/", 1)[0]
    assert fetch(f"{missing}/other.jpg").status_code == 404
    assert fetch(f"{missing}/thumb_99999.jpg").status_code == 404  # past its end
    assert httpx.post(url).status_code == 405
    assert DEMO_API_KEY not in url


def test_a_token_lasts_an_hour(emulator: Emulator) -> None:
    note, *_ = cite(emulator, "Who scores first?")
    expires = int(note["hls_url"].split("/")[-3].split(".")[0])
    assert 3590 <= expires - time.time() <= 3600


@pytest.fixture
def no_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clips, "ffmpeg", lambda: None)


def test_without_ffmpeg_citations_have_no_media_urls(
    no_ffmpeg: None, on_disk: Any, tmp_path: Path
) -> None:
    emu, store = on_disk
    [added] = store.add(real_video(tmp_path / "lighthouse.mp4", 5), metadata=LIGHTHOUSE)
    for note in [
        *cite(emu, "Who scores first?"),
        *cite(emu, "Who climbs the lighthouse?", store.knowledge_store_id),
    ]:
        assert (note["thumbnail_url"], note["hls_url"]) == (None, None)
    assert not (tmp_path / "data" / "files" / f"{added.asset_id}.media").exists()


def test_ffmpeg_installed_while_the_emulator_runs_is_found_on_the_next_look(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing ffmpeg is not remembered: the `web` extra installed after the
    library's emulator started gives later answers their media."""
    monkeypatch.setattr(_clips, "_found", [])
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _clips.ffmpeg() is None
    exe = tmp_path / "ffmpeg"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert _clips.ffmpeg() == str(exe)
    exe.unlink()
    assert _clips.ffmpeg() == str(exe)  # a found one is remembered


def test_without_a_data_dir_an_uploaded_video_has_no_file_and_so_no_media(
    tmp_path: Path,
) -> None:
    with Emulator(**FAST) as emu:
        store = KnowledgeStore.create("media", **connect(emu, tmp_path))
        store.add(real_video(tmp_path / "lighthouse.mp4", 5), metadata=LIGHTHOUSE)
        (note,) = cite(emu, "Who climbs the lighthouse?", store.knowledge_store_id)
        assert (note["thumbnail_url"], note["hls_url"]) == (None, None)
        demo, *_ = cite(emu, "Who scores first?")
        assert demo["hls_url"] is not None  # the demo store's stand-ins need no file


def test_a_file_ffmpeg_cannot_read_gets_404_then_no_media_urls(
    on_disk: Any, tmp_path: Path
) -> None:
    emu, store = on_disk
    video = sample_video(tmp_path / "lighthouse.mp4", seconds=20)  # no tracks
    store.add(video, metadata=LIGHTHOUSE)
    (note,) = cite(emu, "Who climbs the lighthouse?", store.knowledge_store_id)
    failed = fetch(note["thumbnail_url"])
    assert failed.status_code == 404
    assert "could not make" in failed.json()["message"]
    (again,) = cite(emu, "Who climbs the lighthouse?", store.knowledge_store_id)
    assert (again["thumbnail_url"], again["hls_url"]) == (None, None)


def _stop_while_ffmpeg_makes_a_playlist(media: Path) -> Emulator:
    """An emulator stopped while ffmpeg was making a playlist for a request."""
    with Emulator(media_dir=media) as emu:
        (note, *_) = cite(emu, "When do the fishing boats leave?")
        url = note["hls_url"]
        threading.Thread(target=_quietly_fetch, args=(url,), daemon=True).start()
        deadline = time.monotonic() + 30
        while not list(media.glob("*/*/.hls-*/*")):  # ffmpeg is writing
            assert time.monotonic() < deadline, "ffmpeg did not start"
            time.sleep(0.02)
    return emu


def _quietly_fetch(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the emulator stops meanwhile
        fetch(url)


def test_stopping_while_ffmpeg_makes_media_leaves_nothing_for_the_closed_loop(
    tmp_path: Path,
) -> None:
    # Stopped mid-way, ffmpeg is killed and waited for on the emulator's loop:
    # nothing of it is left to close once that loop is closed (its pipe was, and
    # freeing the stopped emulator then raised "Event loop is closed").
    emu = _stop_while_ffmpeg_makes_a_playlist(tmp_path)
    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        for thread in threading.enumerate():  # asyncio's, each waiting for a child
            if thread.name.startswith("asyncio-waitpid-"):
                thread.join(10)
        del emu
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert [u.exc_value for u in unraisable] == []
