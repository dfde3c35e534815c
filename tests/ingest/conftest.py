"""Fixtures for ingestion: a fresh, fast emulator per test, and a store on it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.__main__ import main
from langchain_jockey.emulator import Emulator, sample_video

FAST = {"asset_time": 0.05, "index_time": 0.15, "chunk_size": 64 << 10}
STORE_SETTINGS = {"poll_interval": 0.02}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator: items are ready in 0.15 s, parts are 64 KiB."""
    with Emulator(fail_processing=("corrupt*",), **FAST) as emu:
        yield emu


def connect(emu: Emulator, tmp: Path, **kwargs: Any) -> dict[str, Any]:
    """KnowledgeStore settings for `emu`, with the journal under `tmp`."""
    return {
        "base_url": emu.base_url,
        "api_key": emu.api_key,
        "state_dir": tmp / "state",
        **STORE_SETTINGS,
        **kwargs,
    }


@pytest.fixture
def store(emulator: Emulator, tmp_path: Path) -> KnowledgeStore:
    """A new, empty store on the emulator."""
    return KnowledgeStore.create("test", **connect(emulator, tmp_path))


def videos(folder: Path, *names: str, seconds: float = 30.0) -> Path:
    """`folder` with a small valid MP4 for each name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        sample_video(folder / name, seconds=seconds)
    return folder


def add(mode: str, store: KnowledgeStore, sources: Any, **kwargs: Any) -> Any:
    """`store.add` or `store.aadd`."""
    if mode == "sync":
        return store.add(sources, **kwargs)
    return asyncio.run(store.aadd(sources, **kwargs))


def uploads(emu: Emulator) -> list[str]:
    """The upload requests the emulator received: form posts and part PUTs."""
    return [
        f"{r.method} {r.path}"
        for r in emu.requests
        if (r.method, r.path) == ("POST", "/v1.3/assets") or r.method == "PUT"
    ]


class Connections:
    """A TCP proxy in front of an emulator that counts the connections made to it.

    Clients given `url` reach the emulator through it; part URLs, which the
    emulator builds from the `Host` it was asked at, go through it too.
    """

    def __init__(self, emu: Emulator) -> None:
        self.made = 0
        self._lock = threading.Lock()
        self._target = (emu.host, emu.port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/v1.3"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.made += 1
            upstream = socket.create_connection(self._target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        """Stop accepting (open connections end with their peers)."""
        self._server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def cli_on_emulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: Emulator
) -> None:
    """No key: the `ingest` command uses `emulator`; its journal under tmp."""
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TWELVE_LABS_BASE_URL", emulator.base_url)


def run_ingest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(["ingest", *args])` without bars: its exit status, stdout and stderr."""
    code = main(["ingest", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err
