"""A library goes through as a pipeline: uploads never wait on processing (#32).

Uploads run `concurrency` at a time; one watcher per `add` waits for every
asset and item with a request or two a round, whatever the number of
sources; the parts of a file go several at once on pooled connections, with
reports batched as the SDK batches them; statuses only go forward, and bars stop
when their work does.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from langchain_jockey import KnowledgeStore, _http, _sources
from langchain_jockey._ingest import ASSET_POLL, ITEM_POLL
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import Connections, add, connect, videos

ORDER = ("uploaded", "queued", "pending", "processing", "ready")


def _gets(emu: Emulator, since: int = 0) -> list[str]:
    return [r.path for r in emu.requests[since:] if r.method == "GET"]


def _by_source(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if e.source.endswith(name)]


# -- 1. processing never holds an upload slot; one watcher per add ---------------------


def test_waiting_reads_lists_a_round_whatever_the_number_of_sources(mode, tmp_path):
    interval = 0.05
    with Emulator(asset_time=0.3, index_time=0.8) as emu:
        store = KnowledgeStore.create(
            "many",
            **connect(emu, tmp_path, concurrency=12, poll_interval=interval),
        )
        folder = videos(tmp_path / "v", *(f"clip_{i:02d}.mp4" for i in range(12)))
        before = len(emu.requests)
        started = time.monotonic()
        results = add(mode, store, folder)
        took = time.monotonic() - started
        gets = _gets(emu, before + 1)  # after the listing of the store
    assert [r.status for r in results] == ["ready"] * 12
    # Never one asset or one item by its id: one list a round for all of them.
    assert [g for g in gets if "/assets/" in g or "/items/" in g] == []
    # Rounds are paced by the interval, not by the sources: each round asks
    # for the assets, or the items indexing (and the finished ones).
    assert len(gets) <= 3 * took / interval + 10, (len(gets), took)
    listed = [
        r for r in emu.requests if r.method == "GET" and r.path.endswith("/assets")
    ]
    assert listed  # the assets were read by `GET /assets?asset_ids=…`


def test_a_source_uploads_while_another_is_processing(mode, tmp_path):
    with Emulator(asset_time=0.05, index_time=1.0) as emu:
        store = KnowledgeStore.create(
            "one", **connect(emu, tmp_path, concurrency=1, poll_interval=0.02)
        )
        folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
        events: list[Any] = []
        add(mode, store, folder, on_progress=events.append)
    steps = [(Path(e.source).name, e.kind) for e in events]
    # With one upload slot, b's upload went while a was being indexed.
    assert steps.index(("b.mp4", "uploaded")) < steps.index(("a.mp4", "done"))


def test_an_item_still_indexing_at_wait_timeout_is_returned_saying_so(mode, tmp_path):
    with Emulator(asset_time=0.05, index_time=30) as emu:
        settings = connect(emu, tmp_path, poll_interval=0.02, wait_timeout=0.5)
        store = KnowledgeStore.create("slow", **settings)
        (result,) = add(mode, store, sample_video(tmp_path / "a.mp4"))
    assert result.status in ("queued", "pending", "processing")
    assert result.item_id is not None
    assert f"still {result.status} after 0.5 s" in result.error


# -- 2. polling as the API's guide says, unless told ----------------------------------


def test_polling_defaults_to_the_guide_and_takes_the_callers_interval(tmp_path):
    assert (ASSET_POLL, ITEM_POLL) == (5.0, 10.0)
    store = KnowledgeStore(knowledge_store_id="ks_1", api_key="k", state_dir=tmp_path)
    ctx, _ = store._context(
        str(sample_video(tmp_path / "a.mp4")),
        metadata=None,
        wait=True,
        on_progress=None,
        replace=False,
        verify=False,
    )
    assert (ctx.asset_poll, ctx.item_poll) == (5.0, 10.0)
    store.poll_interval = 0.5
    ctx, _ = store._context(
        str(tmp_path / "a.mp4"),
        metadata=None,
        wait=True,
        on_progress=None,
        replace=False,
        verify=False,
    )
    assert (ctx.asset_poll, ctx.item_poll) == (0.5, 0.5)


# -- 3. parts in parallel on pooled connections ----------------------------------------


@pytest.fixture
def puts_at_once(monkeypatch) -> dict[str, int]:
    """Count the part PUTs in flight (each held 30 ms longer); the most at once."""
    count = {"now": 0, "most": 0}
    lock = threading.Lock()

    def enter() -> None:
        with lock:
            count["now"] += 1
            count["most"] = max(count["most"], count["now"])

    def leave() -> None:
        with lock:
            count["now"] -= 1

    put, aput = _http.put_part, _http.aput_part

    def slow_put(*args: Any) -> str:
        enter()
        try:
            time.sleep(0.03)
            return put(*args)
        finally:
            leave()

    async def aslow_put(*args: Any) -> str:
        enter()
        try:
            await asyncio.sleep(0.03)
            return await aput(*args)
        finally:
            leave()

    monkeypatch.setattr(_http, "put_part", slow_put)
    monkeypatch.setattr(_http, "aput_part", aslow_put)
    return count


def test_parts_go_three_at_once_on_reused_connections_reported_ten_at_a_time(
    mode, emulator, tmp_path, puts_at_once
):
    proxy = Connections(emulator)
    settings = connect(emulator, tmp_path, multipart_threshold=1, part_concurrency=3)
    store = KnowledgeStore.create("parts", **{**settings, "base_url": proxy.url})
    video = sample_video(tmp_path / "a.mp4", size=25 * (64 << 10))  # 25 parts
    made = proxy.made
    (result,) = add(mode, store, video)
    proxy.close()
    assert result.status == "ready"
    assert puts_at_once["most"] == 3
    # One connection per part in flight, kept; plus the API's: not one a part.
    assert proxy.made - made <= 3 + 2, proxy.made - made
    requests = emulator.requests
    puts = [n for n, r in enumerate(requests) if r.method == "PUT"]
    reports = [
        (n, [c["chunk_index"] for c in r.body["completed_chunks"]])
        for n, r in enumerate(requests)
        if r.method == "POST"
        and isinstance(r.body, dict)
        and "completed_chunks" in r.body
    ]
    assert len(puts) == 25
    assert sorted(len(chunks) for _, chunks in reports) == [5, 10, 10]
    assert sorted(i for _, chunks in reports for i in chunks) == list(range(1, 26))
    assert reports[0][0] < puts[-1]  # reported while later parts were going


def test_a_multipart_upload_asks_for_hls_and_thumbnails(mode, emulator, tmp_path):
    store = KnowledgeStore.create(
        "hls", **connect(emulator, tmp_path, multipart_threshold=1)
    )
    add(mode, store, sample_video(tmp_path / "a.mp4", size=100_000))
    (created,) = [
        r
        for r in emulator.requests
        if (r.method, r.path) == ("POST", "/v1.3/assets/multipart-uploads")
    ]
    assert created.body["enable_hls"] is True
    assert created.body["enable_thumbnail"] is True


def test_a_multipart_asset_ready_at_once_is_not_watched_for_a_round(mode, tmp_path):
    # The default polling (assets every 5 s): a round's wait would show.
    with Emulator(asset_time=0, index_time=0, chunk_size=64 << 10) as emu:
        settings = {"base_url": emu.base_url, "api_key": emu.api_key}
        store = KnowledgeStore.create(
            "quick", **settings, state_dir=tmp_path / "state", multipart_threshold=1
        )
        [result] = add(mode, store, sample_video(tmp_path / "a.mp4", size=200_000))
        assert (result.status, result.uploaded) == ("ready", True)
        assert not [p for p in _gets(emu) if p == "/v1.3/assets"], _gets(emu)


# -- 5. aadd costs what add costs ---------------------------------------------------


class _Counted:
    """A SHA-256 that adds the bytes it hashes to `total`."""

    def __init__(self, total: list[int], data: bytes = b"") -> None:
        self._hash, self._total = hashlib.sha256(), total
        self.update(data)

    def update(self, data: Any) -> None:
        self._total[0] += memoryview(data).nbytes
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _same_size(folder: Path, size: int) -> Path:
    """Two files of one size: each may be a copy of the other, so each is
    hashed in a pass of its own before it is sent (the hash rule)."""
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        sample_video(folder / name, seconds=30, size=size)
    return folder


def _counted(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[Path]]:
    """Bytes `_sources` hashes, and the files it opens, from now on."""
    hashed: list[int] = [0]
    opened: list[Path] = []
    counting = SimpleNamespace(sha256=lambda data=b"": _Counted(hashed, data))
    monkeypatch.setattr(_sources, "hashlib", counting)
    open_file = _sources.open_file

    def counted_open(path: Path) -> Any:
        opened.append(path)
        return open_file(path)

    monkeypatch.setattr(_sources, "open_file", counted_open)
    return hashed, opened


def test_a_file_hashed_first_and_sent_whole_is_hashed_twice_not_three_times(
    mode, store, tmp_path, monkeypatch
):
    size = _sources.BLOCK + 500_000  # more than one block: read again to be sent
    folder = _same_size(tmp_path / "v", size)
    hashed, _ = _counted(monkeypatch)
    results = add(mode, store, folder)
    assert [r.uploaded for r in results] == [True, True]
    # The pass of its own, and the check of the bytes as they go: no digests
    # of grains, which only parts sent out of order need.
    assert hashed[0] == 2 * 2 * size


def _hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of what `asyncio.to_thread` runs, from now on."""
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return hops


@pytest.mark.parametrize("sizes", [(300_000, 300_001), (300_000, 300_000)])
def test_aadd_reads_a_files_journal_in_the_hop_that_takes_its_lock(
    store, tmp_path, monkeypatch, sizes
):
    # New sizes are hashed as they are sent, under the file's lock; one size
    # twice is hashed first, and sent under the content's lock. Either way
    # the journal is read in the hop that took the lock: each hop costs
    # aadd CPU that add does not spend.
    folder = tmp_path / "v"
    folder.mkdir()
    for name, size in zip(("a.mp4", "b.mp4"), sizes, strict=True):
        sample_video(folder / name, seconds=30, size=size)
    hops = _hops(monkeypatch)
    results = asyncio.run(store.aadd(folder))
    assert [r.uploaded for r in results] == [True, True]
    assert "load" not in hops, hops
    assert hops.count("_acquired") == 2 * (1 if sizes[0] == sizes[1] else 2), hops


def test_a_source_gets_a_thread_or_task_only_once_it_has_an_upload_slot(mode, tmp_path):
    # Processing is instant: no source ever waits, so a thread (or task) per
    # source started up front would be 16 at once, each a GIL hand-over
    # while the first ones upload.
    with Emulator(asset_time=0, index_time=0) as emu:
        store = KnowledgeStore.create("lazy", **connect(emu, tmp_path, concurrency=2))
        folder = videos(tmp_path / "v", *(f"clip_{i:02d}.mp4" for i in range(16)))
        peak = [0]

        def running(event: Any) -> None:
            if mode == "sync":
                names = [t.name for t in threading.enumerate()]
                now = sum(n.startswith("jockey-add") for n in names)
            else:
                now = len(asyncio.all_tasks())
            peak[0] = max(peak[0], now)

        results = add(mode, store, folder, on_progress=running)
    assert [r.status for r in results] == ["ready"] * 16
    # Two uploading, two more handing over: nowhere near one per source.
    assert 1 <= peak[0] <= 2 * 2 + 2, peak[0]


def test_a_file_of_one_block_hashed_first_is_read_and_hashed_once(
    mode, store, tmp_path, monkeypatch
):
    folder = _same_size(tmp_path / "v", 400_000)
    hashed, opened = _counted(monkeypatch)
    hops = _hops(monkeypatch)
    results = add(mode, store, folder)
    assert [r.uploaded for r in results] == [True, True]
    # Sent from the bytes it was hashed from: opened to check its head, then
    # to hash it, never to send it; hashed once; and on the async path no
    # hop to a thread to read it for the upload.
    assert sorted(p.name for p in opened) == ["a.mp4", "a.mp4", "b.mp4", "b.mp4"]
    assert hashed[0] == 2 * 400_000
    assert "_first" not in hops


# -- 7. statuses go forward; bars stop --------------------------------------------


def _ranks(statuses: list[str]) -> list[int]:
    return [ORDER.index(s) for s in statuses]


@pytest.fixture
def bars(monkeypatch) -> list[Any]:
    """The tqdm bars `show_progress` makes, each recording its postfixes."""
    tqdm_auto = pytest.importorskip("tqdm.auto")
    made: list[Any] = []

    class Recorded(tqdm_auto.tqdm):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": False, "file": _Null()})
            self.postfixes: list[str] = []
            made.append(self)

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            self.postfixes.append(s)
            super().set_postfix_str(s, refresh)

    monkeypatch.setattr(tqdm_auto, "tqdm", Recorded)
    return made


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_statuses_never_go_backwards_in_events_or_the_bar(mode, tmp_path, bars):
    with Emulator(asset_time=0.2, index_time=0.6) as emu:
        store = KnowledgeStore.create(
            "st", **connect(emu, tmp_path, poll_interval=0.02)
        )
        video = sample_video(tmp_path / "a.mp4")
        events: list[Any] = []
        add(mode, store, video, on_progress=events.append, show_progress=True)
    with_status = [e for e in events if e.kind in ("indexing", "done")]
    statuses = [e.status for e in with_status]
    assert statuses[-1] == "ready"
    assert _ranks(statuses) == sorted(_ranks(statuses)), statuses
    assert {"queued", "processing"} <= set(statuses)
    items_bar = bars[1]
    shown = [p.split()[0] for p in items_bar.postfixes if p]
    assert shown[0] == "uploaded"
    assert _ranks(shown) == sorted(_ranks(shown)), shown


def test_each_bar_stops_when_its_work_does(mode, tmp_path, bars):
    with Emulator(asset_time=0.05, index_time=0.5) as emu:
        store = KnowledgeStore.create("b", **connect(emu, tmp_path, poll_interval=0.02))
        folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
        upload_open_while_indexing: list[bool] = []

        def check(event: Any) -> None:
            if event.kind in ("indexing", "done") and len(bars) == 2:
                upload_open_while_indexing.append(not bars[0].disable)

        add(mode, store, folder, on_progress=check, show_progress=True)
    upload, items = bars
    # Once every source was past its upload, the upload bar was closed:
    # it was not redrawn, its rate falling, while the videos were indexed.
    assert upload_open_while_indexing[-1] is False
    assert upload.n == upload.total
    assert upload.disable
    assert items.disable
    assert items.n == items.total == 2
    assert not [t for t in threading.enumerate() if t.name == "jockey-progress"]
