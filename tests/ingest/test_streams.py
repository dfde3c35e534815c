"""File bytes as request content: checked against the hash in any order, cheap to read.

The parts of a multipart upload go several at once, so each grain of the
file is checked against its digest as it is read, whatever the order the
regions go in. On the async path a small file costs one hop to a thread,
not one per step (open, seek, read, check, close).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from langchain_jockey._sources import FileChangedError, FileState, FileStream, Hashed
from langchain_jockey.emulator import sample_video

PART = 64 << 10


def _body(stream: FileStream, mode: str) -> bytes:
    if mode == "sync":
        return b"".join(stream)

    async def read() -> bytes:
        return b"".join([chunk async for chunk in stream])

    return asyncio.run(read())


def _rewrite_keeping_state(path: Path, at: int) -> None:
    """Other bytes at `at`: same size, inode and modification time."""
    before = path.stat()
    with path.open("r+b") as file:
        file.seek(at)
        file.write(b"x" * 100)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_parts_sent_in_any_order_are_each_checked_against_the_hash(mode, tmp_path):
    video = sample_video(tmp_path / "a.mp4", size=5 * PART)
    hashed = Hashed.of(video, FileState.of(video))
    parts = [
        FileStream(video, i * PART, PART, lambda n: None, hashed=hashed)
        for i in range(5)
    ]
    # The last part first, then the first: each is as hashed.
    assert _body(parts[4], mode) == video.read_bytes()[4 * PART :]
    assert _body(parts[0], mode) == video.read_bytes()[:PART]
    _rewrite_keeping_state(video, 2 * PART + 10)
    assert _body(parts[1], mode) == video.read_bytes()[PART : 2 * PART]
    with pytest.raises(FileChangedError, match="changed while it was uploaded"):
        _body(parts[2], mode)


def test_parts_sent_at_once_hash_a_new_file_in_order_without_a_pass_of_its_own(
    mode, tmp_path
):
    video = sample_video(tmp_path / "a.mp4", size=5 * PART)
    hashed = Hashed(video, FileState.of(video))  # a new file: its hash not known
    for i in (1, 4, 0, 3, 2):  # as parallel parts may go
        stream = FileStream(video, i * PART, PART, lambda n: None, hashed=hashed)
        assert _body(stream, mode) == video.read_bytes()[i * PART : (i + 1) * PART]
    assert hashed.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()


def test_a_small_file_is_read_in_one_hop_to_a_thread(monkeypatch, tmp_path):
    video = sample_video(tmp_path / "a.mp4", size=300_000)
    hashed = Hashed.of(video, FileState.of(video))
    stream = FileStream(
        video, 0, video.stat().st_size, lambda n: None, b"head", b"tail", hashed
    )
    hops: list[Any] = []
    to_thread = asyncio.to_thread

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    assert _body(stream, "async") == b"head" + video.read_bytes() + b"tail"
    assert len(hops) == 1, hops
