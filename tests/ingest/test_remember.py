"""An unchanged library is not read again; a new file is read once, as it is sent.

The hashes of files are remembered in `state_dir` by their quick check
(device, inode, size, modification time in ns). These tests watch every open
of the library's files (`os.open`, which `open_file` uses, and `open`).
"""

from __future__ import annotations

import builtins
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.__main__ import main
from langchain_jockey._sources import sha256_file
from langchain_jockey.emulator import sample_video
from tests.ingest.conftest import add, uploads

WAIT = 30.0  # seconds: only reached when something hangs


class Opens:
    """Every open of a file under `folder`, by name, once installed."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder.resolve())
        self.names: list[str] = []

    def _seen(self, path: Any) -> None:
        if isinstance(path, (str, os.PathLike)):
            full = Path(path).absolute()
            if str(full).startswith(self.folder + os.sep):
                self.names.append(full.name)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """Watch from now on (until the test ends); the names opened, as they come."""
        real_os_open, real_open = os.open, builtins.open

        def os_open(path: Any, *args: Any, **kwargs: Any) -> int:
            self._seen(path)
            return real_os_open(path, *args, **kwargs)

        def py_open(path: Any, *args: Any, **kwargs: Any) -> Any:
            self._seen(path)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(builtins, "open", py_open)
        return self.names


def rerun(store: KnowledgeStore) -> KnowledgeStore:
    """Another run on `store`'s store: a new object, the same `state_dir`."""
    return KnowledgeStore(
        knowledge_store_id=store.knowledge_store_id,
        base_url=store.base_url,
        api_key=store.api_key,
        state_dir=store.state_dir,
        poll_interval=store.poll_interval,
    )


class Library:
    """Three videos of different sizes (none a copy of another), and a store.

    Attributes:
        folder: The videos.
        store: A store on the emulator.
    """

    def __init__(self, tmp: Path, store: KnowledgeStore, mp: pytest.MonkeyPatch):
        self.folder, self.store, self.mp = tmp / "library", store, mp
        self.folder.mkdir()
        for i, name in enumerate(("a.mp4", "b.mp4", "c.mp4")):
            sample_video(self.folder / name, size=150_000 + 1000 * i)

    def watch(self) -> list[str]:
        """The names of the videos opened from now on, as they come."""
        return Opens(self.folder).install(self.mp)


@pytest.fixture
def lib(store: KnowledgeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return Library(tmp_path, store, monkeypatch)


def test_re_adding_an_unchanged_library_opens_none_of_its_files(mode, emulator, lib):
    first = add(mode, lib.store, lib.folder)
    opened = lib.watch()
    again = add(mode, rerun(lib.store), lib.folder)
    assert opened == []
    assert [r.item_id for r in again] == [r.item_id for r in first]
    assert not any(r.uploaded for r in again)
    assert len(uploads(emulator)) == 3


def test_a_touched_file_is_read_again_and_the_others_are_not(mode, emulator, lib):
    add(mode, lib.store, lib.folder)
    touched = lib.folder / "b.mp4"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    opened = lib.watch()
    again = add(mode, rerun(lib.store), lib.folder)
    assert set(opened) == {"b.mp4"}
    assert not any(r.uploaded for r in again)  # the same bytes: found by hash
    assert len(uploads(emulator)) == 3


def test_verify_reads_every_file_again_and_finds_one_rewritten_with_its_time_kept(
    mode, lib
):
    add(mode, lib.store, lib.folder)
    rewritten = lib.folder / "c.mp4"
    st = rewritten.stat()
    with rewritten.open("r+b") as file:  # other bytes, the same size and time
        file.seek(st.st_size - 100)
        file.write(b"x" * 100)
    os.utime(rewritten, ns=(st.st_atime_ns, st.st_mtime_ns))
    # The quick check cannot see it: nothing is read, nothing is sent.
    unverified = add(mode, rerun(lib.store), lib.folder)
    assert not any(r.uploaded for r in unverified)
    opened = lib.watch()
    verified = add(mode, rerun(lib.store), lib.folder, verify=True)
    assert {"a.mp4", "b.mp4", "c.mp4"} <= set(opened)
    assert [Path(r.source).name for r in verified if r.uploaded] == ["c.mp4"]
    assert len(lib.store.items()) == 4
    # What verify found is remembered: the next run reads nothing.
    opened.clear()
    again = add(mode, rerun(lib.store), lib.folder)
    assert opened == []
    assert [r.item_id for r in again] == [r.item_id for r in verified]


def test_with_its_hashes_forgotten_a_library_the_store_holds_is_not_sent_again(
    mode, emulator, lib
):
    first = add(mode, lib.store, lib.folder)
    shutil.rmtree(lib.store.state_dir)
    again = add(mode, rerun(lib.store), lib.folder)
    assert [r.item_id for r in again] == [r.item_id for r in first]
    assert not any(r.uploaded for r in again)
    assert len(uploads(emulator)) == 3


def test_a_new_file_is_read_once_hashed_as_it_is_sent(
    mode, store, tmp_path, monkeypatch
):
    folder = tmp_path / "new"
    folder.mkdir()
    video = sample_video(folder / "a.mp4", size=2_500_000)
    opened = Opens(folder).install(monkeypatch)
    (result,) = add(mode, store, video)
    assert result.uploaded
    # One open for the checks (its first bytes), one to send it; no pass of its own.
    assert opened == ["a.mp4", "a.mp4"]
    (item,) = store.items()
    assert item.metadata["source_sha256"] == sha256_file(video)


def test_copies_sent_at_once_by_two_runs_make_one_item_and_the_spare_asset_goes(
    mode, emulator, store, tmp_path
):
    """Two runs (store objects) each send a copy before its hash is known."""
    a = sample_video(tmp_path / "a.mp4", size=150_000)
    copy = tmp_path / "copy" / "a.mp4"
    copy.parent.mkdir()
    shutil.copyfile(a, copy)
    both_sent = threading.Barrier(2, timeout=WAIT)

    def after_upload(event: Any) -> None:
        if event.kind == "uploaded":
            both_sent.wait()  # neither makes its item before both uploaded

    outcomes: dict[str, Any] = {}

    def run(path: Path) -> None:
        outcomes[str(path)] = add(mode, rerun(store), path, on_progress=after_upload)

    threads = [threading.Thread(target=run, args=(p,)) for p in (a, copy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    (one,), (other,) = outcomes.values()
    assert one.item_id == other.item_id
    assert one.uploaded
    assert other.uploaded
    assert len(store.items()) == 1
    assert len(uploads(emulator)) == 2
    deleted = [
        r for r in emulator.requests if r.method == "DELETE" and "/assets/" in r.path
    ]
    assert len(deleted) == 1
    assert not deleted[0].path.endswith(one.asset_id)  # the item's asset stays


@pytest.mark.slow  # the command polls every 2 s
def test_the_command_line_verify_flag_reads_every_file_again(
    emulator, lib, monkeypatch, capsys
):
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", emulator.base_url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(lib.folder.parent / "cache"))
    video = lib.folder / "a.mp4"
    argv = ["ingest", str(video), "--store", lib.store.knowledge_store_id]
    argv += ["--no-progress", "--no-wait"]
    assert main(argv) == 0
    st = video.stat()
    with video.open("r+b") as file:  # other bytes, the same size and time
        file.seek(st.st_size - 100)
        file.write(b"x" * 100)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    assert main(argv) == 0
    assert "(already in the store)" in capsys.readouterr().out
    assert main([*argv, "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"ok   {video} ->" in out
    assert "(already in the store)" not in out
