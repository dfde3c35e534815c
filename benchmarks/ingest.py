"""Ingestion cost of `KnowledgeStore.add` against baselines measured in the same run.

    .venv/bin/python benchmarks/ingest.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/ingest.py --quick    # under a minute, a smoke test
    .venv/bin/python benchmarks/ingest.py --only small,async  # some rows

Every row of issue #32's item 10, against emulators spawned on loopback (a
separate process each, so the client's CPU is its own):

1. one 300 MB file: `add` against the raw-httpx floor, the same protocol
   (multipart create, the parts PUT and reported, the asset polled, the item
   created) with no hashing, as many parts in flight as `add` had (row 5);
2. a folder of 200 small files: `add` against the official SDK's loop
   (`assets.create`, `knowledge_store_items.create`, polling until ready) on
   as many threads as `add`'s `concurrency`;
2b. the same folder: `aadd` against `add` (CPU and wall), and the requests
   `add` makes for it (each file's asset form, then its item) in raw httpx,
   async against sync: the transport's own async/sync CPU ratio, the floor of
   `aadd`'s. Target: `aadd`'s CPU ratio at most 1.1 × that one;
3. 24 small videos whose assets take 0.5 s and items 3 s to process, polled
   every 0.25 s: `add`'s wall time against those 3.5 s;
4. adding an unchanged library of over 1 GB again: against the time to hash
   it (SHA-256 of every byte, one thread, 1 MiB reads);
5. the TCP connections `add` opens for one multipart upload, counted at the
   socket level, against the part PUTs it had in flight at once, plus one.

Rows 1, 2 and 2b process instantly (`--asset-time 0 --index-time 0`), so they
measure the clients, not the waiting. Each round gives each contender a new
store and `add` a new `state_dir`, so every round adds new files (row 4 keeps
its store and `state_dir`: that is the point). The contenders alternate, A B
then B A, over several rounds, after a warm-up; a figure is the median (with
min-max), a ratio the median of the rounds' A/B (each pair ran back to back,
so load from other processes that comes and goes mostly cancels; on a busy
machine, still read rows 1 and 2 with their min-max, and the CPU rows). Targets
are ratios within this run, never wall-clock limits, and no test asserts them. The files are sample MP4s (`sample_video`) padded to size,
sparse where the file system allows, in a temporary directory deleted at the
end. Prints a Markdown table and writes benchmarks/ingest.json
(benchmarks/ingest-quick.json with `--quick`) as `{"before": …, "after": …}`:
"after" is this run, "before" what the file held as "before" (a file of one
run, as the first one was, is all "before"), so the figures before #32 stay.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twelvelabs import TwelveLabs
from typing_extensions import Self

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import DEMO_API_KEY, EmulatorConfig, sample_video, spawn

HERE = Path(__file__).resolve().parent
KEY = {"x-api-key": DEMO_API_KEY}
SHORT_POLL = 0.25  # seconds: row 3's poll interval, and the SDK loop's
BLOCK = 1 << 20  # the baseline hash's read size
ASSET_TIME, INDEX_TIME = 0.5, 3.0  # row 3's processing times
MET = {True: "yes", False: "**no**", None: "—"}


@dataclass(frozen=True)
class Scale:
    """Sizes of one run."""

    rounds: int  # of A and B each, rows 1, 2 and 4
    waits: int  # rounds of row 3 (no baseline to alternate with)
    big: int  # bytes of the one large file (row 1; also in the library)
    small_files: int  # row 2
    small_size: int
    videos: int  # row 3
    video_size: int
    library_files: int  # row 4: files besides the large one
    library_size: int


FULL = Scale(7, 3, 300_000_000, 200, 1_000_000, 24, 1_000_000, 8, 96 << 20)
QUICK = Scale(1, 1, 120_000_000, 20, 1_000_000, 6, 1_000_000, 2, 40 << 20)


# -- plumbing ------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Clock:
    """Wall and process CPU seconds of every timed run, by contender."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Wall seconds and the value of `fn()`, both clocks recorded under `name`."""
        cpu, wall = time.process_time(), time.perf_counter()
        value = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)
        return wall, value


def alternate(rounds: int, a: Callable[[], object], b: Callable[[], object]) -> None:
    """`rounds` runs of each, A B then B A, so drift hits both alike."""
    for n in range(rounds):
        first, second = (a, b) if n % 2 == 0 else (b, a)
        first()
        second()


def read_chars() -> int | None:
    """Bytes this process has read with read(2) and kin (Linux), else None."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Spawned:
    """A spawned emulator and a raw client on it (for setup and the floor)."""

    def __init__(self, *flags: str) -> None:
        self.proc, self.url = spawn(*flags)
        self.port = httpx.URL(self.url).port
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call with the key; its JSON answer (None when empty)."""
        response = self.http.request(method, path, json=body, headers=KEY)
        response.raise_for_status()
        return response.json() if response.content else None

    def new_store(self, name: str) -> str:
        """A new empty store's id."""
        return str(self.api("POST", "knowledge-stores", {"name": name})["_id"])

    def store(self, store_id: str, state_dir: Path, **fields: Any) -> KnowledgeStore:
        """A `KnowledgeStore` object on `store_id`, recording in `state_dir`."""
        return KnowledgeStore(
            base_url=self.url,
            api_key=DEMO_API_KEY,
            knowledge_store_id=store_id,
            state_dir=state_dir,
            **fields,
        )

    def close(self) -> None:
        """Stop the emulator."""
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


class Dirs:
    """New directories under one root, one per call."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, 0

    def new(self, prefix: str) -> Path:
        """A new, empty directory."""
        self.count += 1
        path = self.root / f"{prefix}-{self.count}"
        path.mkdir()
        return path


def short_poll() -> dict[str, float]:
    """Every float `KnowledgeStore` field about polling, set to `SHORT_POLL`.

    By name (`poll` in it), so that the row holds whatever the polling
    settings are called; optional ones too (`float | None`, whose `None` is
    the API guide's pace of 5 and 10 s, which this row is not about).
    """
    return {
        name: SHORT_POLL
        for name, info in KnowledgeStore.model_fields.items()
        if "poll" in name
        and (info.annotation is float or float in typing.get_args(info.annotation))
    }


def checked(results: list[Any], count: int, *, uploaded: bool) -> None:
    """Fail the run unless `add` added `count` sources, each ready, (not) uploaded."""
    bad = [
        r for r in results if r.status != "ready" or bool(r.uploaded) is not uploaded
    ]
    if len(results) != count or bad:
        msg = f"add did not do what is measured: {len(results)} results, {bad[:3]}"
        raise RuntimeError(msg)


# -- counting connections at the socket level ----------------------------------


class SocketWatch:
    """Connections to one port opened, and part PUTs in flight at once.

    Patches `socket.socket` while in `with` (sync and asyncio clients alike):
    `connect` counts the connections to `port`; a PUT starts when a
    connection's write begins with `PUT `, and ends at the first bytes of
    its answer.
    """

    _NAMES = ("connect", "connect_ex", "send", "sendall", "recv", "recv_into")

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.puts = 0
        self._ours: weakref.WeakKeyDictionary[socket.socket, bool] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def _connected(self, sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and address[1] == self.port:
            with self._lock:
                self.opened += 1
                self._ours[sock] = False

    def _sent(self, sock: socket.socket, data: Any) -> None:
        ours = sock in self._ours and not self._ours[sock]
        if ours and bytes(memoryview(data)[:4]) == b"PUT ":
            with self._lock:
                self._ours[sock] = True
                self.puts += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _received(self, sock: socket.socket, n: int) -> None:
        if n and self._ours.get(sock):
            with self._lock:
                self._ours[sock] = False
                self.in_flight -= 1

    def __enter__(self) -> Self:
        cls = socket.socket
        self._saved = {name: getattr(cls, name) for name in self._NAMES}
        saved, watch = self._saved, self

        def connect(sock: socket.socket, address: Any) -> None:
            watch._connected(sock, address)
            return saved["connect"](sock, address)  # type: ignore[no-any-return]

        def connect_ex(sock: socket.socket, address: Any) -> int:
            watch._connected(sock, address)
            return saved["connect_ex"](sock, address)  # type: ignore[no-any-return]

        def send(sock: socket.socket, data: Any, *args: Any) -> int:
            watch._sent(sock, data)
            return saved["send"](sock, data, *args)  # type: ignore[no-any-return]

        def sendall(sock: socket.socket, data: Any, *args: Any) -> None:
            watch._sent(sock, data)
            return saved["sendall"](sock, data, *args)  # type: ignore[no-any-return]

        def recv(sock: socket.socket, *args: Any) -> bytes:
            data: bytes = saved["recv"](sock, *args)
            watch._received(sock, len(data))
            return data

        def recv_into(sock: socket.socket, buffer: Any, *args: Any) -> int:
            n: int = saved["recv_into"](sock, buffer, *args)
            watch._received(sock, n)
            return n

        for name, fn in zip(
            self._NAMES,
            (connect, connect_ex, send, sendall, recv, recv_into),
            strict=True,
        ):
            setattr(cls, name, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._saved.items():
            setattr(socket.socket, name, fn)


# -- the files -----------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """The generated media: each file's content is its own (names differ)."""

    big: Path  # row 1, inside `library`
    library: Path  # row 4
    small: Path  # row 2
    videos: Path  # row 3


def make_files(root: Path, scale: Scale) -> Files:
    """Write the sample videos (sparse: the padding costs no disk where it can)."""
    library, small, videos = root / "library", root / "small", root / "videos"
    for folder in (library, small, videos):
        folder.mkdir()
    big = sample_video(library / "big.mp4", seconds=1800, size=scale.big)
    for i in range(scale.library_files):
        sample_video(library / f"lib-{i:02}.mp4", seconds=600, size=scale.library_size)
    for i in range(scale.small_files):
        sample_video(small / f"small-{i:03}.mp4", seconds=10, size=scale.small_size)
    for i in range(scale.videos):
        sample_video(videos / f"video-{i:02}.mp4", seconds=30, size=scale.video_size)
    return Files(big, library, small, videos)


# -- row 1: one large file against the raw-httpx floor -------------------------


def floor_upload(emu: Spawned, path: Path, store_id: str, in_flight: int) -> None:
    """The protocol `add` follows for a large file, in raw httpx, without hashing.

    Multipart create; each part read whole and PUT to its URL (no key), its
    ETag reported at once, `in_flight` parts at a time on pooled connections;
    the asset polled until ready; the item created.
    """
    size = path.stat().st_size
    body = {"filename": path.name, "type": "video", "total_size": size}
    made = emu.api("POST", "assets/multipart-uploads", body)
    upload_id, asset_id = made["upload_id"], made["asset_id"]
    chunk, total = made["chunk_size"], made["total_chunks"]
    urls = {u["chunk_index"]: u["url"] for u in made["upload_urls"]}
    while len(urls) < total:
        more = emu.api(
            "POST",
            f"assets/multipart-uploads/{upload_id}/presigned-urls",
            {"start": len(urls) + 1, "count": 50},
        )
        urls |= {u["chunk_index"]: u["url"] for u in more["upload_urls"]}

    def part(index: int) -> None:
        with path.open("rb") as file:
            file.seek((index - 1) * chunk)
            data = file.read(min(chunk, size - (index - 1) * chunk))
        headers = {"content-type": "application/octet-stream"}
        response = emu.http.put(urls[index], content=data, headers=headers)
        response.raise_for_status()
        proof = {
            "chunk_index": index,
            "proof": response.headers["etag"].strip('"'),
            "proof_type": "etag",
            "chunk_size": len(data),
        }
        emu.api(
            "POST",
            f"assets/multipart-uploads/{upload_id}",
            {"completed_chunks": [proof]},
        )

    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(part, range(1, total + 1)))
    while emu.api("GET", f"assets/{asset_id}")["status"] != "ready":
        time.sleep(0.01)
    item = {"asset_id": asset_id, "asset_type": "video"}
    emu.api("POST", f"knowledge-stores/{store_id}/items", item)


@dataclass
class Bench:
    """One run: its emulators, files, rounds, clock and the facts besides times."""

    instant: Spawned  # processing takes no time
    paced: Spawned  # assets ASSET_TIME, items INDEX_TIME
    files: Files
    dirs: Dirs
    scale: Scale
    clock: Clock
    facts: dict[str, Any]

    def add(
        self,
        emu: Spawned,
        name: str,
        sources: Any,
        watch: SocketWatch | None = None,
        **fields: Any,
    ) -> float:
        """Wall seconds of `add(sources)` to a new store with a new `state_dir`.

        With `watch`, the sockets of the `add` call alone are watched.
        """
        store = emu.store(emu.new_store(name), self.dirs.new("state"), **fields)
        run = (
            (lambda: asyncio.run(store.aadd(sources)))
            if name.endswith("aadd")
            else (lambda: store.add(sources))
        )
        with watch or contextlib.nullcontext():
            wall, results = self.clock.run(name, run)
        if isinstance(sources, list):
            count = len(sources)
        else:
            count = len(list(sources.iterdir())) if sources.is_dir() else 1
        checked(results, count, uploaded=True)
        return wall


def one_large_file(bench: Bench) -> None:
    """Rows 1 and 5: `add` of the large file vs the floor; connections of a warm-up."""
    emu, big = bench.instant, bench.files.big
    watch = SocketWatch(emu.port)
    bench.add(emu, "warm-up large_add", big, watch)  # the warm-up, watched: row 5
    in_flight = max(1, watch.peak_in_flight)
    bench.facts["connections"] = {
        "opened": watch.opened,
        "parts": -(-big.stat().st_size // EmulatorConfig.chunk_size),
        "part_puts": watch.puts,
        "peak_parts_in_flight": watch.peak_in_flight,
    }
    bench.facts["floor_in_flight"] = in_flight

    def floor(name: str = "large_floor") -> float:
        store_id = emu.new_store("floor")
        return bench.clock.run(
            name, lambda: floor_upload(emu, big, store_id, in_flight)
        )[0]

    floor("warm-up large_floor")
    alternate(bench.scale.rounds, lambda: bench.add(emu, "large_add", big), floor)


# -- row 2: small files against the SDK's loop ---------------------------------


def sdk_loop(sdk: TwelveLabs, paths: list[Path], store_id: str, threads: int) -> None:
    """The official SDK's way: create the asset, wait, create the item, wait."""

    def one(path: Path) -> None:
        with path.open("rb") as file:
            asset = sdk.assets.create(method="direct", file=file, filename=path.name)
        while asset.status not in ("ready", "failed"):
            time.sleep(SHORT_POLL)
            asset = sdk.assets.retrieve(asset.id)
        if asset.status != "ready":
            raise RuntimeError(f"{path.name}: asset {asset.status}")
        item = sdk.knowledge_store_items.create(
            store_id, asset_id=asset.id, asset_type="video"
        )
        while item.status not in ("ready", "failed"):
            time.sleep(SHORT_POLL)
            item = sdk.knowledge_store_items.retrieve(store_id, item.id)
        if item.status != "ready":
            raise RuntimeError(f"{path.name}: item {item.status}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, paths))


def small_files(bench: Bench) -> None:
    """Row 2: `add` of a folder of small files vs the SDK loop, same threads."""
    emu, folder = bench.instant, bench.files.small
    paths = sorted(folder.iterdir())
    threads = KnowledgeStore.model_fields["concurrency"].default
    bench.facts["threads"] = threads
    sdk = TwelveLabs(api_key=DEMO_API_KEY, base_url=emu.url)

    def loop(name: str = "small_sdk", some: list[Path] = paths) -> float:
        store_id = emu.new_store("sdk")
        return bench.clock.run(name, lambda: sdk_loop(sdk, some, store_id, threads))[0]

    bench.add(emu, "warm-up small_add", paths[:threads])  # a few of the files
    loop("warm-up small_sdk", paths[:threads])
    alternate(bench.scale.rounds, lambda: bench.add(emu, "small_add", folder), loop)


# -- row 2b: aadd against add, and the transport's own async/sync ratio -----------


def raw_form(path: Path) -> tuple[bytes, str]:
    """The `POST /assets` form of `path`: its body and content type."""
    boundary = os.urandom(16).hex()
    fields = {"method": "direct", "filename": path.name}
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
        f"{v}\r\n".encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def raw_sync(url: str, paths: list[Path], store_id: str, threads: int) -> None:
    """Each file's asset form, then its item, in sync httpx on `threads` threads."""
    with httpx.Client(base_url=url, headers=KEY, timeout=120) as http:

        def one(path: Path) -> None:
            body, kind = raw_form(path)
            made = http.post("assets", content=body, headers={"content-type": kind})
            item = {"asset_id": made.raise_for_status().json()["_id"]}
            path_ = f"knowledge-stores/{store_id}/items"
            http.post(path_, json={**item, "asset_type": "video"}).raise_for_status()

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, paths))


async def raw_async(url: str, paths: list[Path], store_id: str, threads: int) -> None:
    """`raw_sync`'s requests in async httpx, `threads` at once (files read alike)."""
    lane = asyncio.Semaphore(threads)
    async with httpx.AsyncClient(base_url=url, headers=KEY, timeout=120) as http:

        async def one(path: Path) -> None:
            async with lane:
                body, kind = await asyncio.to_thread(raw_form, path)
                made = await http.post(
                    "assets", content=body, headers={"content-type": kind}
                )
                item = {"asset_id": made.raise_for_status().json()["_id"]}
                path_ = f"knowledge-stores/{store_id}/items"
                answer = await http.post(path_, json={**item, "asset_type": "video"})
                answer.raise_for_status()

        await asyncio.gather(*(one(p) for p in paths))


def async_small_files(bench: Bench) -> None:
    """Row 2b: `aadd` vs `add` of the small files; raw httpx async vs sync.

    The raw pair makes the requests `add` makes for a new small file (its
    asset's form, its item), 2 per file, on as many threads (tasks) as
    `concurrency`, each file read in one hop to a thread on the async side:
    its async/sync CPU ratio is the transport's own, the floor of `aadd`'s.
    """
    emu, folder = bench.instant, bench.files.small
    paths = sorted(folder.iterdir())
    threads = KnowledgeStore.model_fields["concurrency"].default

    def raw(name: str) -> Callable[[], float]:
        def go(store_id: str) -> None:
            if name.endswith("async"):
                asyncio.run(raw_async(emu.url, paths, store_id, threads))
            else:
                raw_sync(emu.url, paths, store_id, threads)

        def run() -> float:
            store_id = emu.new_store(name)
            return bench.clock.run(name, lambda: go(store_id))[0]

        return run

    bench.add(emu, "warm-up small_aadd", paths[:threads])
    raw("warm-up raw_async")()
    alternate(
        bench.scale.rounds,
        lambda: bench.add(emu, "small_add2", folder),
        lambda: bench.add(emu, "small_aadd", folder),
    )
    alternate(bench.scale.rounds, raw("raw_sync"), raw("raw_async"))


# -- row 3: waiting for processing ---------------------------------------------


def processing(bench: Bench) -> None:
    """Row 3: `add(folder, wait=True)` wall time, assets 0.5 s, items 3 s."""
    for _ in range(bench.scale.waits):
        bench.add(bench.paced, "videos_add", bench.files.videos, **short_poll())


# -- row 4: an unchanged library again -----------------------------------------


def hash_all(paths: list[Path]) -> None:
    """SHA-256 of every byte, one file after another, 1 MiB reads."""
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as file:
            while n := file.readinto(buffer):
                digest.update(view[:n])


def library_again(bench: Bench) -> None:
    """Row 4: `add` of a library the store holds vs hashing it, same run.

    The library is added once (not timed); each round then adds it again
    with a new `KnowledgeStore` object on the same store and `state_dir`, as
    a new run of a script would.
    """
    emu, library = bench.instant, bench.files.library
    paths = sorted(library.iterdir())
    bench.facts["library_bytes"] = sum(p.stat().st_size for p in paths)
    store_id, state = emu.new_store("library"), bench.dirs.new("state")
    first = emu.store(store_id, state).add(library)
    checked(first, len(paths), uploaded=True)
    reads: list[int] = bench.facts.setdefault("again_read_bytes", [])

    def again() -> float:
        before = read_chars()
        store = emu.store(store_id, state)
        wall, results = bench.clock.run("again_add", lambda: store.add(library))
        after = read_chars()
        checked(results, len(paths), uploaded=False)
        if before is not None and after is not None:
            reads.append(after - before)
        return wall

    def hashing() -> float:
        return bench.clock.run("again_hash", lambda: hash_all(paths))[0]

    alternate(bench.scale.rounds, again, hashing)


# -- report --------------------------------------------------------------------


def row(
    measure: str,
    unit: str,
    value: list[float],
    baseline: list[float],
    limit: float | None,
    target: str,
) -> dict[str, Any]:
    """One row; `limit` None: a reference, no target.

    The ratio, when A and B ran in pairs (the same number of rounds): the
    median of each round's A/B, as each pair ran back to back, so a load that
    comes and goes between rounds cancels; else the ratio of the medians.
    """
    if len(value) == len(baseline) > 1:
        ratio = statistics.median(a / b for a, b in zip(value, baseline, strict=True))
    else:
        ratio = statistics.median(value) / statistics.median(baseline)
    return {
        "measure": measure,
        "unit": unit,
        "value": summary(value),
        "baseline": summary(baseline),
        "ratio": ratio,
        "target": target,
        "met": None if limit is None else ratio <= limit,
    }


def fmt(stats: dict[str, float], unit: str) -> str:
    """`median (min–max) unit`; a single figure alone."""
    if stats["min"] == stats["max"]:
        return f"{stats['median']:.4g} {unit}"
    return f"{stats['median']:.3g} ({stats['min']:.3g}–{stats['max']:.3g}) {unit}"


def report(results: dict[str, Any]) -> str:
    """The rows as a Markdown table."""
    lines = [
        (
            f"Machine: {results['machine']} · {results['date']} · "
            f"`{results['command']}` · {results['commit']}"
        ),
        "",
        "| measure | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['measure']} | {fmt(r['value'], r['unit'])} "
        f"| {fmt(r['baseline'], r['unit'])} | {r['ratio']:.2f}× "
        f"| {r['target']} | {MET[r['met']]} |"
        for r in results["rows"]
    ]
    return "\n".join(lines)


def rows(bench: Bench, scale: Scale) -> list[dict[str, Any]]:
    """The issue's targets, each a ratio within this run; CPU for reference."""
    wall = collections.defaultdict(list, bench.clock.wall)
    cpu, facts = collections.defaultdict(list, bench.clock.cpu), bench.facts
    mb = scale.big / 1e6
    c = facts.get("connections", {"parts": 0, "opened": 0, "peak_parts_in_flight": 0})
    reads = facts.get("again_read_bytes")
    read = f" (add read {statistics.median(reads) / 1e9:.2f} GB)" if reads else ""
    gb = facts.get("library_bytes", 0) / 1e9
    # The measure and its unit, add's samples and the baseline's, the limit
    # (None: a reference) and the target's words.
    floor = f"raw httpx, no hashing, {facts.get('floor_in_flight')} part(s) in flight"
    sdk = f"the SDK loop on {facts.get('threads')} threads"
    specs: list[tuple[str, str, list[float], list[float], float | None, str]] = [
        (
            f"one {mb:.0f} MB file: add",
            "s",
            wall["large_add"],
            wall["large_floor"],
            1.3,
            f"≤ 1.3 × {floor} as add had",
        ),
        (
            f"{scale.small_files} small files: add",
            "s",
            wall["small_add"],
            wall["small_sdk"],
            1.0,
            f"≤ 1.0 × {sdk}",
        ),
        (
            (
                f"{scale.videos} videos, assets {ASSET_TIME:g} s, "
                f"items {INDEX_TIME:g} s, poll {SHORT_POLL:g} s: add(wait=True)"
            ),
            "s",
            wall["videos_add"],
            [ASSET_TIME + INDEX_TIME],
            2.5,
            "≤ 2.5 × one processing time",
        ),
        (
            f"an unchanged {gb:.2f} GB library again{read}",
            "s",
            wall["again_add"],
            wall["again_hash"],
            0.3,
            "≤ 0.3 × hashing it (SHA-256, one thread)",
        ),
        (
            f"one {mb:.0f} MB multipart upload ({c['parts']} parts): connections",
            "",
            [c["opened"]] if "connections" in facts else [],
            [c["peak_parts_in_flight"] + 1],
            1.0,
            "≤ parts in flight at once + 1 (for the API calls)",
        ),
        (
            f"one {mb:.0f} MB file: add's CPU",
            "s",
            cpu["large_add"],
            cpu["large_floor"],
            None,
            f"reference: {floor}",
        ),
        (
            f"{scale.small_files} small files: add's CPU",
            "s",
            cpu["small_add"],
            cpu["small_sdk"],
            None,
            f"reference: {sdk}",
        ),
    ]
    n = scale.small_files
    raw = (
        row(
            f"{2 * n} requests, raw httpx: async's CPU",
            "s",
            cpu["raw_async"],
            cpu["raw_sync"],
            None,
            "reference: the same in sync httpx",
        )
        if "raw_async" in cpu
        else None
    )
    if raw is not None:
        limit = 1.1 * raw["ratio"]
        specs += [
            (
                f"{n} small files: aadd's CPU",
                "s",
                cpu["small_aadd"],
                cpu["small_add2"],
                limit,
                f"≤ 1.1 × raw httpx's async/sync CPU ({raw['ratio']:.2f}×), vs add's",
            ),
            (
                f"{n} small files: aadd",
                "s",
                wall["small_aadd"],
                wall["small_add2"],
                None,
                "reference: add, same rounds",
            ),
            (
                f"{2 * n} requests, raw httpx: async",
                "s",
                wall["raw_async"],
                wall["raw_sync"],
                None,
                "reference: the same in sync httpx",
            ),
        ]
    # A row whose contenders did not run (`--only`) is left out.
    ran = [spec for spec in specs if spec[2] and spec[3]]
    return [row(*spec) for spec in ran] + ([raw] if raw is not None else [])


ROWS: dict[str, Callable[[Bench], None]] = {
    "large": one_large_file,  # rows 1 and 5
    "small": small_files,  # row 2
    "async": async_small_files,  # row 2b
    "waits": processing,  # row 3
    "again": library_again,  # row 4
}


def commit() -> str:
    """The checkout's commit, and whether it has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return head


def before(path: Path) -> dict[str, Any] | None:
    """The run `path` keeps as "before" (a file of one run: that run), if any."""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(held, dict):
        return None
    return held.get("before") if "after" in held or "before" in held else held


def main() -> None:
    """Run every row and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one round (a smoke test)"
    )
    parser.add_argument(
        "--only",
        help="the rows to run, of: " + ", ".join(ROWS) + " (comma-separated); "
        "results go to benchmarks/ingest-only.json",
    )
    args = parser.parse_args()
    only = (args.only or ",".join(ROWS)).split(",")
    if unknown := set(only) - set(ROWS):
        parser.error(f"no such rows: {', '.join(sorted(unknown))}")
    scale = QUICK if args.quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jockey-ingest-bench-") as tmp:
        root = Path(tmp)
        # Nothing under the home directory: every default location is in here.
        for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME"):
            os.environ[name] = str(root / name.lower())
        os.environ.pop("TWELVELABS_BASE_URL", None)  # the SDK prefers it to ours
        files = make_files(root, scale)
        instant = Spawned("--asset-time", "0", "--index-time", "0")
        try:
            paced = Spawned(
                "--asset-time", str(ASSET_TIME), "--index-time", str(INDEX_TIME)
            )
        except BaseException:
            instant.close()
            raise
        bench = Bench(instant, paced, files, Dirs(root), scale, Clock(), {})
        try:
            for name in only:
                ROWS[name](bench)
        finally:
            instant.close()
            paced.close()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python benchmarks/ingest.py", *sys.argv[1:]]),
        "commit": commit(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows(bench, scale),
        "facts": bench.facts,
        "wall_s": bench.clock.wall,
        "cpu_s": bench.clock.cpu,
    }
    out = HERE / (
        "ingest-quick.json"
        if args.quick
        else "ingest-only.json"
        if args.only
        else "ingest.json"
    )
    both = {"before": before(out), "after": results}
    out.write_text(json.dumps(both, indent=2) + "\n", encoding="utf-8")
    print(report(results))
    print(f"\n{results['seconds']:.0f} s; written to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
