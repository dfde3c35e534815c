"""The records of `state_dir` (`_state.py`): a log that survives bad bytes and
stays bounded, and locks that one holder at a time has, freed when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from langchain_jockey import _state
from langchain_jockey._sources import FileState, Known
from langchain_jockey._state import FileLock, StateLog

SHA = "ab" * 32


def state(n: int) -> FileState:
    return FileState(size=1000 + n, mtime_ns=n, inode=n, device=1)


def fresh(directory: Path) -> StateLog:
    """The log as a new process reads it."""
    log = StateLog(directory)
    log.read()
    return log


def test_a_remembered_hash_is_recalled_by_another_reader(tmp_path):
    StateLog(tmp_path).remember(state(1), SHA, "video/mp4")
    assert fresh(tmp_path).recall(state(1)) == Known(SHA, "video/mp4")
    assert fresh(tmp_path).recall(state(2)) is None


def test_a_corrupt_log_is_passed_over_line_by_line(tmp_path):
    good = f"h 1 1 1001 1 {SHA} video/mp4\n".encode()
    (tmp_path / "state-1.log").write_bytes(
        b"\x00\xff garbage\nh 2 2 x 2 "
        + SHA.encode()
        + b" video/mp4\n"  # a size that is no number
        + good
        + b"i 0123456789abcdef "
        + SHA.encode()  # torn: no end of line
    )
    log = fresh(tmp_path)
    assert log.recall(state(1)) == Known(SHA, "video/mp4")
    log.remember(state(3), SHA, "video/webm")  # begins on a line of its own
    again = fresh(tmp_path)
    assert again.recall(state(1)) == Known(SHA, "video/mp4")
    assert again.recall(state(3)) == Known(SHA, "video/webm")
    assert again.item("0123456789abcdef", SHA) is None


def test_a_forgotten_hash_is_not_recalled(tmp_path):
    log = StateLog(tmp_path)
    log.remember(state(1), SHA, "video/mp4")
    log.forget(state(1))
    assert log.recall(state(1)) is None
    assert fresh(tmp_path).recall(state(1)) is None


def test_the_log_stays_bounded_and_keeps_what_was_used_lately(tmp_path, monkeypatch):
    monkeypatch.setattr(_state, "COMPACT_AT", 2000)  # about 23 records
    monkeypatch.setattr(_state, "KEEP", 20)
    log = StateLog(tmp_path)
    for n in range(10):
        log.remember(state(n), SHA, "video/mp4")
    log = fresh(tmp_path)
    for n in range(10, 15):
        log.remember(state(n), SHA, "video/mp4")
    assert log.recall(state(0)) is not None  # in the older half: written again
    for n in range(15, 25):
        log.remember(state(n), SHA, "video/mp4")
    assert (tmp_path / "state-1.log").read_text().count("\n") <= 20  # compacted
    kept = fresh(tmp_path)
    # The 20 used last are kept: 0 (found again lately), and 6 to 24.
    assert [n for n in range(25) if kept.recall(state(n)) is None] == [1, 2, 3, 4, 5]
    assert not list(tmp_path.glob("*.tmp"))


WRITER = """
import sys
from pathlib import Path
from langchain_jockey._sources import FileState
from langchain_jockey._state import StateLog

directory, first = Path(sys.argv[1]), int(sys.argv[2])
log = StateLog(directory)
for n in range(first, first + 300):
    log.remember(FileState(1000 + n, n, n, 1), "ab" * 32, "video/mp4")
"""


@pytest.mark.slow
def test_two_processes_writing_at_once_lose_no_record(tmp_path):
    writers = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our script
            [sys.executable, "-c", textwrap.dedent(WRITER), str(tmp_path), str(first)]
        )
        for first in (0, 300)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    log = fresh(tmp_path)
    assert all(log.recall(state(n)) is not None for n in range(600))


def test_a_lock_has_one_holder_and_leaves_no_file_once_released(tmp_path):
    first, second = FileLock(tmp_path, "k"), FileLock(tmp_path, "k")
    other = FileLock(tmp_path, "other")
    assert first.acquire()
    assert not second.acquire()  # another open of it, in this very process
    assert other.acquire()  # another key never waits
    first.release()
    assert not (tmp_path / "k.lock").exists()
    assert second.acquire()
    second.release()
    other.release()
    assert not first.acquire()  # a late take (a cancelled flow's) keeps nothing
    assert not list(tmp_path.iterdir())


HOLDER = """
import sys, time
from pathlib import Path
from langchain_jockey._state import FileLock

lock = FileLock(Path(sys.argv[1]), "k")
assert lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
def test_a_lock_whose_holder_dies_is_free(tmp_path):
    holder = subprocess.Popen(  # noqa: S603 - this interpreter, our script
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        lock = FileLock(tmp_path, "k")
        assert not lock.acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        assert lock.acquire()  # its file stays; the system let the lock go
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
