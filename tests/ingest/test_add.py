"""KnowledgeStore.add against the emulator, sync and async: the whole path and its failures."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from langchain_jockey import JockeyIngestError, JockeyInputError, KnowledgeStore
from langchain_jockey._sources import FileStream
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import add, connect, uploads, videos

META = {
    "harbour_sunrise.mp4": {
        "description": "The trawlers leave the harbour at sunrise.",
        "transcript": "00:20 Gulls follow the boats out.",
    },
    "pottery_class.mp4": {"description": "Students throw bowls on the wheel."},
}


def meta(source: str) -> dict[str, str]:
    return META[Path(source).name]


def test_a_folder_becomes_ready_items_that_answers_cite_and_search_finds(
    mode, emulator, store, tmp_path
) -> None:
    folder = videos(tmp_path / "v", *META)
    results = add(mode, store, folder, metadata=meta)
    assert [Path(r.source).name for r in results] == sorted(META)
    assert all(r.status == "ready" and r.uploaded and r.error is None for r in results)
    assert len({r.item_id for r in results}) == 2
    info = store.info()
    assert info.counts == {"ready": 2}
    assert {i.item_id for i in store.items()} == {r.item_id for r in results}
    # Answers and search see the new videos, through the bound objects.
    answer = store.as_chat_model().invoke("When do the trawlers leave the harbour?")
    cited = [c for b in answer.content_blocks for c in b.get("annotations", [])]
    harbour = next(r.item_id for r in results if "harbour" in r.source)
    assert "[1]" in answer.text
    assert any(c.get("extras", {}).get("item_id") == harbour for c in cited), cited
    docs = store.as_retriever(k=1).invoke("gulls follow the boats")
    assert docs[0].metadata["item_id"] == harbour
    assert docs[0].metadata["start_sec"] == 20.0


def test_adding_the_same_files_again_uploads_nothing(mode, emulator, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    first = add(mode, store, folder)
    sent = len(uploads(emulator))
    again = add(mode, store, folder)
    assert len(uploads(emulator)) == sent == 2
    assert [(r.item_id, r.status, r.uploaded) for r in again] == [
        (r.item_id, "ready", False) for r in first
    ]
    assert store.info().item_count == 2


def test_a_bad_file_in_a_folder_fails_alone_and_the_rest_finish(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "good_1.mp4", "good_2.mp4")
    (folder / "notes.mp4").write_text("not a video at all")
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, folder)
    results = {Path(r.source).name: r for r in caught.value.results}
    assert results["good_1.mp4"].status == results["good_2.mp4"].status == "ready"
    bad = results["notes.mp4"]
    assert bad.status == "failed"
    assert "not a supported video" in bad.error
    assert [Path(r.source).name for r in caught.value.failures] == ["notes.mp4"]
    assert "notes.mp4" in str(caught.value)
    assert len(uploads(emulator)) == 2  # the bad one was never sent


def test_a_processing_failure_fails_that_item_and_says_so(mode, store, tmp_path):
    folder = videos(tmp_path / "v", "corrupt_take.mp4", "fine.mp4")
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, folder)
    by_name = {Path(r.source).name: r for r in caught.value.results}
    assert by_name["fine.mp4"].status == "ready"
    failed = by_name["corrupt_take.mp4"]
    assert failed.status == "failed"
    assert failed.item_id is not None
    assert "could not index" in failed.error


def test_large_files_go_by_multipart_upload_with_no_key_on_the_part_urls(
    mode, emulator, tmp_path
):
    store = KnowledgeStore.create(
        "mp", **connect(emulator, tmp_path, multipart_threshold=100_000)
    )
    video = sample_video(tmp_path / "long.mp4", seconds=60, size=300_000)
    results = add(mode, store, video)
    assert results[0].status == "ready"
    puts = [r for r in emulator.requests if r.method == "PUT"]
    assert len(puts) == 5  # 300,000 bytes in 64 KiB parts
    assert all("x-api-key" not in r.headers for r in puts)
    assert all(u.startswith("PUT ") for u in uploads(emulator))  # no direct upload


@pytest.mark.parametrize("how", ["direct", "multipart"])
def test_a_file_name_that_is_not_utf_8_is_told_with_replacement_characters(
    mode, emulator, tmp_path, how
):
    """A name's bytes that do not decode (lone surrogates in Python) cannot be
    encoded in a form or sent as JSON text: the API is told U+FFFD for each."""
    folder = tmp_path / "v"
    folder.mkdir()
    try:
        sample_video(folder / os.fsdecode(b"\x9b2J\xff.mp4"), size=300_000)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    threshold = 100_000 if how == "multipart" else 100_000_000
    store = KnowledgeStore.create(
        "names", **connect(emulator, tmp_path, multipart_threshold=threshold)
    )
    (result,) = add(mode, store, folder)
    assert (result.status, result.error) == ("ready", None)
    (item,) = store.items()
    assert item.filename == "\ufffd2J\ufffd.mp4"


def test_progress_events_come_in_order_with_totals(mode, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4", "c.mp4")
    size = sum(p.stat().st_size for p in folder.iterdir())
    events = []
    add(mode, store, folder, on_progress=events.append)
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        kinds = [e.kind for e in events if e.source.endswith(name)]
        assert kinds[0] == "hashing"
        assert kinds.index("uploading") < kinds.index("uploaded")
        assert kinds.index("uploaded") < kinds.index("indexing")
        assert kinds[-1] == "done"
    assert all(e.bytes_total == size and e.items_total == 3 for e in events)
    sent = [e.bytes_sent for e in events]
    assert sent == sorted(sent)
    done = [e.items_done for e in events]
    assert done == sorted(done)
    assert (events[-1].bytes_sent, events[-1].items_done) == (size, 3)
    statuses = {e.status for e in events if e.kind == "indexing"}
    assert "ready" in statuses


def test_rate_limits_are_waited_out(mode, tmp_path):
    with Emulator(
        asset_time=0.05, index_time=0.1, rate_limit=6, rate_window=1.0
    ) as emu:
        store = KnowledgeStore.create("rl", **connect(emu, tmp_path))
        folder = videos(tmp_path / "v", "a.mp4", "b.mp4", "c.mp4")
        started = time.monotonic()
        results = add(mode, store, folder)
        assert [r.status for r in results] == ["ready"] * 3
        assert time.monotonic() - started >= 1.0  # at least one window waited
        assert len(emu.requests) > 6


def test_without_wait_items_are_returned_queued(mode, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4")
    results = add(mode, store, folder, wait=False)
    assert results[0].status in ("queued", "pending", "processing")


def test_twenty_uploads_at_once(mode, emulator, tmp_path):
    store = KnowledgeStore.create("many", **connect(emulator, tmp_path, concurrency=20))
    folder = videos(tmp_path / "v", *(f"clip_{i:02d}.mp4" for i in range(20)))
    results = add(mode, store, folder)
    assert len(results) == 20
    assert all(r.status == "ready" for r in results)
    assert len({r.item_id for r in results}) == 20
    assert len(uploads(emulator)) == 20


def test_a_url_is_imported_by_the_api_not_downloaded(mode, emulator, store):
    results = add(mode, store, "https://videos.example.invalid/match/final.mp4")
    assert results[0].status == "ready"
    assert results[0].uploaded
    form = next(r for r in emulator.requests if r.path == "/v1.3/assets")
    assert form.method == "POST"


def test_remove_and_delete(store, tmp_path):
    results = store.add(videos(tmp_path / "v", "a.mp4", "b.mp4"))
    store.remove(results[0].item_id)
    assert [i.item_id for i in store.items()] == [results[1].item_id]
    store.delete()
    from langchain_jockey import JockeyNotFoundError

    with pytest.raises(JockeyNotFoundError):
        store.info()


async def test_async_reads_and_removes(store, tmp_path):
    results = await store.aadd(videos(tmp_path / "v", "a.mp4"))
    assert (await store.ainfo()).counts == {"ready": 1}
    await store.aremove(results[0].item_id)
    assert await store.aitems() == []
    await store.adelete()


def test_open_an_existing_store_by_id(emulator, store, tmp_path):
    again = KnowledgeStore(
        knowledge_store_id=store.knowledge_store_id, **connect(emulator, tmp_path)
    )
    assert again.info().name == "test"


def test_as_tool_asks_this_store(emulator, store, tmp_path):
    store.add(videos(tmp_path / "v", "harbour_sunrise.mp4"), metadata=meta)
    tool = store.as_tool()
    assert tool.llm.knowledge_store_id == store.knowledge_store_id
    out = tool.invoke({"question": "When do the trawlers leave?"})
    assert "trawlers" in str(out).lower()


def test_acreate_makes_a_store(emulator, tmp_path):
    store = asyncio.run(KnowledgeStore.acreate("a", **connect(emulator, tmp_path)))
    assert store.knowledge_store_id.startswith("ks_")


def test_the_ingest_error_pickles_with_its_results(store, tmp_path):
    import pickle

    folder = videos(tmp_path / "v", "fine.mp4", "corrupt_take.mp4")
    with pytest.raises(JockeyIngestError) as caught:
        store.add(folder)
    clone = pickle.loads(pickle.dumps(caught.value))
    assert clone.results == caught.value.results
    assert [r.source for r in clone.failures] == [
        r.source for r in caught.value.failures
    ]
    assert str(clone) == str(caught.value)


def test_a_file_gone_after_the_checks_fails_alone(mode, emulator, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4", "c.mp4")
    doomed = folder / "b.mp4"

    def delete_b(event) -> None:
        if event.kind == "hashing" and event.source == str(doomed):
            doomed.unlink()  # after the checks, before it is read

    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, folder, on_progress=delete_b)
    by_name = {Path(r.source).name: r for r in caught.value.results}
    assert by_name["b.mp4"].status == "failed"
    assert "FileNotFoundError" in by_name["b.mp4"].error
    assert by_name["a.mp4"].status == by_name["c.mp4"].status == "ready"


class _Unblocker:
    """Opens `fifo` for writing until stopped: a reader stuck on it gets EOF.

    Without it, a client that opens a FIFO for reading waits forever, and so
    would the test; `used` says whether a reader had to be freed.
    """

    def __init__(self, fifo: Path, after: float) -> None:
        self.fifo, self.used = fifo, False
        self.stop = threading.Event()
        threading.Thread(target=self._run, args=(after,), daemon=True).start()

    def _run(self, after: float) -> None:
        if self.stop.wait(after):
            return
        while not self.stop.is_set():
            try:
                if not stat.S_ISFIFO(os.stat(self.fifo).st_mode):
                    raise FileNotFoundError  # not swapped in yet
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no FIFO, or no reader yet (ENXIO)
                time.sleep(0.05)
                continue
            self.used = True
            os.close(fd)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_swapped_in_after_the_checks_fails_alone(mode, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    swapped = folder / "b.mp4"
    unblocker = _Unblocker(swapped, after=10.0)

    def swap_b(event) -> None:
        if event.kind == "hashing" and event.source == str(swapped):
            swapped.unlink()  # after the checks, before it is read
            os.mkfifo(swapped)

    try:
        with pytest.raises(JockeyIngestError) as caught:
            add(mode, store, folder, on_progress=swap_b)
    finally:
        unblocker.stop.set()
    assert not unblocker.used  # nothing waited on the FIFO
    by_name = {Path(r.source).name: r for r in caught.value.results}
    assert "not a regular file any more" in by_name["b.mp4"].error
    assert "JockeyInputError" in by_name["b.mp4"].error
    assert by_name["a.mp4"].status == "ready"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_an_upload_stream_refuses_a_fifo_instead_of_waiting(mode, tmp_path):
    fifo = tmp_path / "a.mp4"
    os.mkfifo(fifo)
    unblocker = _Unblocker(fifo, after=5.0)
    stream = FileStream(fifo, 0, 100, lambda n: None)

    async def read_async() -> list[bytes]:
        return [block async for block in stream]

    try:
        with pytest.raises(JockeyInputError, match="not a regular file any more"):
            list(stream) if mode == "sync" else asyncio.run(read_async())
    finally:
        unblocker.stop.set()
    assert not unblocker.used


def test_a_file_whose_item_failed_is_added_again(mode, emulator, store, tmp_path):
    folder = videos(tmp_path / "v", "corrupt_take.mp4")
    with pytest.raises(JockeyIngestError):
        add(mode, store, folder)
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, folder)
    (again,) = caught.value.results
    assert again.uploaded
    assert "could not index" in again.error
    assert len(uploads(emulator)) == 2


def test_the_same_content_twice_in_one_add_is_uploaded_once(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    (folder / "copy_of_a.mp4").write_bytes((folder / "a.mp4").read_bytes())
    results = add(mode, store, [folder / "a.mp4", folder, folder / "a.mp4"])
    assert [Path(r.source).name for r in results] == [
        "a.mp4",
        "a.mp4",
        "copy_of_a.mp4",
        "a.mp4",
    ]
    assert len({r.item_id for r in results}) == 1
    assert [r.uploaded for r in results].count(True) == 1
    assert len(uploads(emulator)) == 1
    assert store.info().item_count == 1


def test_two_threads_adding_the_same_folder_upload_each_file_once(emulator, tmp_path):
    import threading

    store = KnowledgeStore.create(
        "twice", **connect(emulator, tmp_path, multipart_threshold=100_000)
    )
    folder = tmp_path / "v"
    folder.mkdir()
    for i in range(4):
        sample_video(folder / f"clip_{i}.mp4", size=150_000 + i)
    outcomes: list = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(store.add(folder)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2
    assert [r.item_id for r in outcomes[0]] == [r.item_id for r in outcomes[1]]
    assert store.info().item_count == 4
