"""A file that changes while it uploads fails that source; no item gets a wrong hash.

An item's `source_sha256` says which bytes it holds, and later adds skip a
file whose hash the store holds. So the hash recorded must be the hash of the
bytes sent: a file appended to, replaced, or rewritten in place (its time kept)
while it uploads fails, directly or by parts, and the next add of the file as
it now is uploads it with its own hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import JockeyIngestError, KnowledgeStore
from langchain_jockey._sources import sha256_file
from langchain_jockey.emulator import sample_video
from tests.ingest.conftest import add, connect
from tests.ingest.tamper import Tamper, tampered


def _append(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b"\0" * 1000)


def _replace(path: Path) -> None:
    other = sample_video(path.with_name("other.mp4"), size=path.stat().st_size)
    other.replace(path)  # same size, other bytes, another inode


def _rewrite_keeping_time(path: Path) -> None:
    """Other bytes near the end, same size, same inode, same modification time."""
    before = path.stat()
    with path.open("r+b") as file:
        file.seek(before.st_size - 100)
        file.write(b"x" * 100)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


CHANGES: dict[str, Callable[[Path], None]] = {
    "appended": _append,
    "replaced": _replace,
    "rewritten in place, time kept": _rewrite_keeping_time,
}
# Direct: 2.5 MB goes in 1 MiB blocks; by parts: 300 kB in 64 KiB parts.
UPLOADS = {
    "direct": (2_500_000, {}),
    "multipart": (300_000, {"multipart_threshold": 1}),
}


def _once(change: Callable[[Path], None], path: Path) -> Callable[[Any], None]:
    """A progress callback that changes `path` when its first bytes have gone."""
    done: list[bool] = []

    def on_progress(event: Any) -> None:
        if event.kind == "uploading" and event.bytes_sent and not done:
            done.append(True)
            change(path)

    return on_progress


# When the hash is known: before the file is sent (remembered from an add to
# another store), or only from the bytes as they are sent (a new file). A file
# rewritten with its time kept looks unchanged, so only a hash known before
# can find it out; as it is sent, its hash is that of the bytes sent.
CASES = [
    (change, hashed, upload)
    for change in CHANGES
    for hashed in ("before", "as it is sent")
    for upload in UPLOADS
    if (change, hashed) != ("rewritten in place, time kept", "as it is sent")
]


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_a_file_that_changes_while_it_uploads_fails_and_no_wrong_hash_is_kept(
    mode, emulator, tmp_path, case
):
    change, hashed, upload = case
    size, settings = UPLOADS[upload]
    video = sample_video(tmp_path / "a.mp4", size=size)
    if hashed == "before":
        other = KnowledgeStore.create("other", **connect(emulator, tmp_path))
        add(mode, other, video)
    store = KnowledgeStore.create("changing", **connect(emulator, tmp_path, **settings))
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, video, on_progress=_once(CHANGES[change], video))
    (failed,) = caught.value.results
    assert failed.status == "failed"
    assert "FileChangedError" in failed.error
    assert "changed while it was uploaded" in failed.error
    assert store.items() == []
    # The file as it is now is a new upload, recorded with its own hash.
    (result,) = add(mode, store, video)
    assert (result.status, result.uploaded) == ("ready", True)
    (item,) = store.items()
    assert item.metadata["source_sha256"] == sha256_file(video)


def test_a_file_that_changes_while_a_resumed_upload_sends_fails(
    mode, emulator, tmp_path
):
    """Parts of an earlier run are not sent again; the file's state still is checked."""
    video = sample_video(tmp_path / "a.mp4", size=300_000)
    puts: list[int] = []

    def third_part_lost(request: httpx.Request) -> None:
        if request.method == "PUT":
            puts.append(1)
            if len(puts) == 3:
                raise httpx.ReadError("the connection was lost", request=request)

    async def athird_part_lost(request: httpx.Request) -> None:
        third_part_lost(request)

    settings = {"multipart_threshold": 1, "max_retries": 0}
    store = KnowledgeStore.create("resumed", **connect(emulator, tmp_path, **settings))
    tamper = Tamper(hold=third_part_lost, ahold=athird_part_lost)
    store_id = store.knowledge_store_id
    cut = tampered(emulator, store_id, tmp_path, tamper, **settings)
    with pytest.raises(JockeyIngestError):
        add(mode, cut, video)  # parts 1 and 2 are in; the journal keeps the upload
    assert list(store.state_dir.glob("*.json"))
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, video, on_progress=_once(_append, video))
    assert "changed while it was uploaded" in caught.value.results[0].error
    assert store.items() == []
    assert not list(store.state_dir.glob("*.json"))  # never resumed again
    (result,) = add(mode, store, video)
    assert result.status == "ready"
    (item,) = store.items()
    assert item.metadata["source_sha256"] == sha256_file(video)
