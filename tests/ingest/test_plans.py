"""A multipart plan and its part URLs are checked before they are used or journaled.

The journal keeps an upload's id for 24 h so that the next run resumes it: a
plan journaled before it was checked would fail every run for a day. So a bad
answer (a wrong part count, part size, id or URL, a million parts) fails that
source alone, with a typed error, and leaves no journal. The store's own
upload directory is checked before anything is sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import JockeyIngestError, JockeyInputError, KnowledgeStore
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import add, connect
from tests.ingest.tamper import Tamper, route, tampered

CREATE = ("POST", "assets/multipart-uploads")
LONG_LABEL = "a" * 300


def _store(emu: Emulator, tmp: Path, rewrite: Any, **kwargs: Any) -> KnowledgeStore:
    """A new store on `emu`, through a `Tamper` with `rewrite`; by parts over 100 kB."""
    kwargs["multipart_threshold"] = 100_000
    made = KnowledgeStore.create("plans", **connect(emu, tmp, **kwargs))
    return tampered(emu, made.knowledge_store_id, tmp, Tamper(rewrite), **kwargs)


def _plan(change: Any) -> Any:
    """A rewrite of the emulator's new upload with `change(answer)`."""

    def rewrite(request: httpx.Request, answer: Any) -> Any:
        if route(request) == CREATE:
            change(answer)
        return answer

    return rewrite


def _set(**fields: Any) -> Any:
    return lambda answer: answer.update(fields)


def _first_url(url: str) -> Any:
    return lambda answer: answer["upload_urls"][0].update(url=url)


BAD_PLANS = {
    "a part too many": lambda a: a.update(total_chunks=a["total_chunks"] + 1),
    "parts of half the size": lambda a: a.update(chunk_size=a["chunk_size"] // 2),
    "an id that changes the path": _set(upload_id="../uploads"),
    "no asset id": _set(asset_id=None),
    "a URL that does not parse": _first_url("http://[::1"),
    "a URL with a NUL": _first_url("http://storage.test/p\x00art"),
    "a URL with a 300-character label": _first_url(f"http://{LONG_LABEL}.test/p"),
    "a URL with port 99999": _first_url("http://127.0.0.1:99999/p"),
    "a URL for part 0": lambda a: a["upload_urls"][0].update(chunk_index=0),
    "URLs that are not a list": _set(upload_urls="http://storage.test/p"),
}


@pytest.mark.parametrize("bad", BAD_PLANS)
def test_a_bad_plan_fails_that_source_unjournaled_and_a_good_server_then_adds_it(
    mode, emulator, tmp_path, bad
):
    store = _store(emulator, tmp_path, _plan(BAD_PLANS[bad]))
    video = sample_video(tmp_path / "a.mp4", size=300_000)
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, video)
    (failed,) = caught.value.results
    assert "JockeyServerError" in failed.error
    assert not list(store.state_dir.glob("*.json"))  # nothing to resume for 24 h
    good = KnowledgeStore(
        knowledge_store_id=store.knowledge_store_id, **connect(emulator, tmp_path)
    )
    good.multipart_threshold = store.multipart_threshold
    (result,) = add(mode, good, video)
    assert (result.status, result.uploaded) == ("ready", True)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://storage.test/p\x00",
        f"http://{LONG_LABEL}.test/",
        "http://127.0.0.1:99999/p",
    ],
)
@pytest.mark.parametrize("given", ["with the plan", "later"])
def test_a_bad_part_url_fails_only_its_source_and_the_others_results_are_kept(
    mode, emulator, tmp_path, url, given
):
    def rewrite(request: httpx.Request, answer: Any) -> Any:
        method, path = route(request)
        if (method, path) == CREATE and given == "later":
            answer["upload_urls"] = []  # every URL is asked for, part by part
        elif (method, path) == CREATE or path.endswith("/presigned-urls"):
            answer["upload_urls"][0]["url"] = url
        return answer

    store = _store(emulator, tmp_path, rewrite)
    big = sample_video(tmp_path / "big.mp4", size=300_000)
    small = sample_video(tmp_path / "small.mp4", size=50_000)
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, [big, small])
    by_name = {Path(r.source).name: r for r in caught.value.results}
    assert by_name["small.mp4"].status == "ready"
    assert by_name["big.mp4"].status == "failed"
    assert "JockeyServerError" in by_name["big.mp4"].error
    assert "upload URL" in by_name["big.mp4"].error


def test_a_plan_of_a_million_parts_is_refused_before_it_is_journaled(
    mode, emulator, tmp_path
):
    def a_million(answer: Any) -> None:
        answer.update(chunk_size=1, total_chunks=1_000_000)
        answer["upload_urls"] = [
            {"chunk_index": i, "url": f"http://127.0.0.1:9/{i}"}
            for i in range(1, 100_001)
        ]

    store = _store(emulator, tmp_path, _plan(a_million), max_retries=0)
    video = sample_video(tmp_path / "a.mp4", size=1_000_000)
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, video)
    assert "1,000,000 parts" in caught.value.results[0].error
    assert "at most 10,000" in caught.value.results[0].error
    assert not list(store.state_dir.glob("*.json"))


def _a_file(tmp: Path) -> Path:
    path = tmp / "a_file"
    path.write_text("x")
    return path


UNUSABLE = {
    "a file": _a_file,
    "under a file": lambda tmp: _a_file(tmp) / "uploads",
    "a name too long": lambda tmp: tmp / ("d" * 300),
}


@pytest.mark.parametrize("where", UNUSABLE)
def test_an_unusable_state_dir_is_refused_before_any_request(
    mode, emulator, tmp_path, where
):
    state_dir = UNUSABLE[where](tmp_path)
    store = KnowledgeStore(
        knowledge_store_id="ks_never_asked",
        **{**connect(emulator, tmp_path), "state_dir": state_dir},
    )
    video = sample_video(tmp_path / "a.mp4")
    with pytest.raises(JockeyInputError, match="state_dir") as caught:
        add(mode, store, video)
    assert str(state_dir) in str(caught.value)
    assert emulator.requests == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any directory")
def test_a_state_dir_without_write_permission_is_refused(mode, emulator, tmp_path):
    state_dir = tmp_path / "read_only"
    state_dir.mkdir(mode=0o500)
    store = KnowledgeStore(
        knowledge_store_id="ks_never_asked",
        **{**connect(emulator, tmp_path), "state_dir": state_dir},
    )
    with pytest.raises(JockeyInputError, match="state_dir"):
        add(mode, store, sample_video(tmp_path / "a.mp4"))
    assert emulator.requests == []
