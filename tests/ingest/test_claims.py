"""Content claims of one store object: never a duplicate item, never a wait forever.

Two `add`s on one `KnowledgeStore` share its claims: a source whose content
another source is adding waits for that result. These tests pin the orders
that went wrong: a second `add` whose listing of the store was taken before
the first one finished, and an `aadd` cancelled while it held a claim.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import sample_video
from tests.ingest.conftest import uploads
from tests.ingest.tamper import Tamper, route

WAIT = 30.0  # seconds: only reached when an add hangs


def _listing(request: httpx.Request) -> bool:
    method, path = route(request)
    return method == "GET" and path.endswith("/items")


def _files(tmp: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """`a.mp4` and `b.mp4` (different content), and copies of them under other names."""
    folder, copies = tmp / "v", tmp / "copies"
    folder.mkdir()
    copies.mkdir()
    a = sample_video(folder / "a.mp4", size=150_000)
    b = sample_video(folder / "b.mp4", size=160_000)
    a_copy, b_copy = copies / "a_copy.mp4", copies / "b_copy.mp4"
    shutil.copyfile(a, a_copy)
    shutil.copyfile(b, b_copy)
    return [a, b], {"same": [a_copy, b_copy], "reversed": [b_copy, a_copy]}


def _second_listed_first_done_then(
    mode: str, store: KnowledgeStore, first: list[Path], second: list[Path]
) -> tuple[list[Any], list[Any]]:
    """`add(second)` lists the store, `add(first)` runs whole, then `second` goes on.

    Both adds run on one store object; the second one's listing of the store
    was taken before the first one made its items.
    """
    if mode == "sync":
        listed, first_done = threading.Event(), threading.Event()

        def hold(request: httpx.Request) -> None:
            if _listing(request) and not listed.is_set():
                listed.set()
                first_done.wait(WAIT)

        store.http_client = httpx.Client(transport=Tamper(hold=hold))
        out: list[Any] = []
        later = threading.Thread(target=lambda: out.append(store.add(second)))
        later.start()
        assert listed.wait(WAIT)
        results = store.add(first)
        first_done.set()
        later.join(WAIT)
        return results, out[0]

    async def run() -> tuple[list[Any], list[Any]]:
        listed, first_done = asyncio.Event(), asyncio.Event()

        async def ahold(request: httpx.Request) -> None:
            if _listing(request) and not listed.is_set():
                listed.set()
                await first_done.wait()

        store.http_async_client = httpx.AsyncClient(transport=Tamper(ahold=ahold))
        later = asyncio.create_task(store.aadd(second))
        await asyncio.wait_for(listed.wait(), WAIT)
        results = await asyncio.wait_for(store.aadd(first), WAIT)
        first_done.set()
        return results, await asyncio.wait_for(later, WAIT)

    return asyncio.run(run())


@pytest.mark.parametrize("order", ["same", "reversed"])
def test_concurrent_adds_of_the_same_content_make_no_duplicate_items(
    mode, emulator, store, tmp_path, order
):
    first, copies = _files(tmp_path)
    results, again = _second_listed_first_done_then(mode, store, first, copies[order])
    assert [r.uploaded for r in results] == [True, True]
    assert not any(r.uploaded for r in again)
    item_of = {Path(r.source).name: r.item_id for r in results + again}
    assert item_of["a_copy.mp4"] == item_of["a.mp4"]
    assert item_of["b_copy.mp4"] == item_of["b.mp4"]
    assert len(uploads(emulator)) == 2
    assert len(store.items()) == 2


async def test_a_cancelled_aadd_never_blocks_the_next_add_of_the_same_file(
    store, tmp_path
):
    video = sample_video(tmp_path / "a.mp4", size=150_000)
    task: asyncio.Task[Any] | None = None

    def cancel_mid_upload(event: Any) -> None:
        if event.kind == "uploading" and task is not None:
            task.cancel()

    task = asyncio.create_task(store.aadd(video, on_progress=cancel_mid_upload))
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await task
    # The task and its error (whose traceback holds the flow) are still
    # referenced, so nothing was garbage-collected: the claim must be free.
    (result,) = await asyncio.wait_for(store.aadd(video), WAIT)
    assert (result.status, result.uploaded) == ("ready", True)
    assert task.cancelled()
    assert cancelled.value.__traceback__ is not None


async def test_a_copy_waiting_on_a_cancelled_aadd_adds_it_itself(
    emulator, store, tmp_path
):
    video = sample_video(tmp_path / "a.mp4", size=150_000)
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(video, copy)
    started = asyncio.Event()
    first: asyncio.Task[Any] | None = None
    second: asyncio.Task[Any] | None = None

    def start_the_copy(event: Any) -> None:
        nonlocal second
        if event.kind == "uploading" and second is None:
            second = asyncio.create_task(store.aadd(copy))
            started.set()

    async def hold_the_upload(request: httpx.Request) -> None:
        if route(request) == ("POST", "assets"):
            await asyncio.sleep(0.5)  # the copy hashes and waits on the claim

    store.http_async_client = httpx.AsyncClient(transport=Tamper(ahold=hold_the_upload))
    first = asyncio.create_task(store.aadd(video, on_progress=start_the_copy))
    await asyncio.wait_for(started.wait(), WAIT)
    await asyncio.sleep(0.2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await first
    assert second is not None
    (result,) = await asyncio.wait_for(second, WAIT)
    assert (result.status, result.uploaded, result.error) == ("ready", True, None)
    assert first.cancelled()
    assert cancelled.value.__traceback__ is not None
