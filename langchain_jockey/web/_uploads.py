"""Videos added from the page: the upload to disk, then `KnowledgeStore.aadd`.

An upload request is `multipart/form-data`; each file part is streamed to its
own directory under the server's upload directory, counted as it goes: a file
past `max_file_bytes`, or more than `max_files` files, ends the request with
`UploadRefused(413)` before the rest is read. Then each file is added to the
store (`aadd`, a few at once), and its state (phase, fraction, status, error)
is what the page's progress bar shows. A file's copy is deleted once added.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from langchain_jockey.errors import JockeyError, JockeyIngestError
from langchain_jockey.knowledge_stores import IngestEvent, KnowledgeStore
from langchain_jockey.web._chat import failure_message

__all__ = ["Batch", "Batches", "UploadRefused", "receive_files"]

_FIELD_BYTES = 64 << 10  # a form field that is not a file
_NAME_BYTES = 255
_AT_ONCE = 4  # files of one batch added at once


class UploadRefused(Exception):  # noqa: N818 - an HTTP answer, not a failure of ours
    """An upload the server will not take: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        """The status (400 or 413) and a message for the page."""
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Received:
    """A file as it arrived: its name, where it is, its size."""

    name: str
    path: Path
    size: int


def _file_name(disposition: str) -> str | None:
    """The part's file name (`None`: not a file), checked for use on disk."""
    _, options = parse_options_header(disposition)
    raw = options.get(b"filename")
    if raw is None:
        return None
    name = raw.decode("utf-8", "replace")
    name = PurePosixPath(name.replace("\\", "/")).name
    if (
        name in ("", ".", "..")
        or "\x00" in name
        or len(name.encode()) > _NAME_BYTES
        or not name.isprintable()
    ):
        raise UploadRefused(400, f"Not a file name the server can keep: {name!r}.")
    return name


async def receive_files(
    chunks: AsyncIterator[bytes],
    content_type: str,
    directory: Path,
    max_files: int,
    max_file_bytes: int,
) -> list[Received]:
    """Stream a `multipart/form-data` body's files to disk, within the limits.

    Raises:
        UploadRefused: 400 for a malformed body or name, 413 past a limit.
            Files already written are deleted.
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, "Send the videos as multipart/form-data.")
    reader = _Reader(directory, max_files, max_file_bytes)
    try:
        await reader.read(MultipartParser(boundary, reader.callbacks()), chunks)  # type: ignore[arg-type]
    except BaseException:
        reader.discard()
        raise
    return reader.received


class _Reader:
    """One upload's multipart parse, each file streamed to its own directory."""

    def __init__(self, directory: Path, max_files: int, max_file_bytes: int) -> None:
        self.directory, self.max_files, self.max_bytes = (
            directory,
            max_files,
            max_file_bytes,
        )
        self.received: list[Received] = []
        self.steps: list[tuple[str, bytes]] = []
        self.current: IO[bytes] | None = None
        self._field = self._value = b""
        self._headers: dict[str, str] = {}
        self._field_bytes = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        """The parser's callbacks: each queues a step, taken after each write."""

        def data(kind: str) -> Callable[[bytes, int, int], None]:
            def call(buffer: bytes, start: int, end: int) -> None:
                self.steps.append((kind, bytes(buffer[start:end])))

            return call

        def mark(kind: str) -> Callable[[], None]:
            return lambda: self.steps.append((kind, b""))

        return {
            "on_header_field": data("field"),
            "on_header_value": data("value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers"),
            "on_part_data": data("data"),
            "on_part_end": mark("end"),
        }

    async def read(self, parser: MultipartParser, chunks: AsyncIterator[bytes]) -> None:
        """Parse the body, chunk by chunk, writing each file as it comes."""
        async for chunk in chunks:
            try:
                parser.write(chunk)
            except MultipartParseError as err:
                raise UploadRefused(400, f"A malformed upload: {err}") from None
            steps, self.steps = self.steps, []
            for step, data in steps:
                await self._step(step, data)
        parser.finalize()
        if self.current is not None:
            raise UploadRefused(400, "The upload ended in the middle of a file.")
        if not self.received:
            raise UploadRefused(400, "The upload holds no file.")

    async def _step(self, step: str, data: bytes) -> None:
        if step == "field":
            self._field += data
        elif step == "value":
            self._value += data
        elif step == "header_end":
            self._headers[self._field.decode("latin-1").lower()] = self._value.decode(
                "latin-1"
            )
            self._field = self._value = b""
        elif step == "headers":
            name = _file_name(self._headers.pop("content-disposition", ""))
            self._headers.clear()
            self._field_bytes = 0
            if name is not None:
                await self._open(name)
        elif step == "data" and self.current is not None:
            file = self.received[-1]
            file.size += len(data)
            if file.size > self.max_bytes:
                msg = f"{file.name} is over the {self.max_bytes:,} bytes a file may be."
                raise UploadRefused(413, msg)
            await asyncio.to_thread(self.current.write, data)
        elif step == "data":
            self._field_bytes += len(data)
            if self._field_bytes > _FIELD_BYTES:
                raise UploadRefused(413, "A form field is too large.")
        elif step == "end" and self.current is not None:
            await asyncio.to_thread(self.current.close)
            self.current = None

    async def _open(self, name: str) -> None:
        if len(self.received) >= self.max_files:
            raise UploadRefused(413, f"At most {self.max_files} files per upload.")
        folder = self.directory / secrets.token_hex(8)
        folder.mkdir(parents=True)
        path = folder / name
        self.current = await asyncio.to_thread(path.open, "xb")
        self.received.append(Received(name, path, 0))

    def discard(self) -> None:
        """Delete what was written (the upload was refused or broke off)."""
        if self.current is not None:
            self.current.close()
        for file in self.received:
            shutil.rmtree(file.path.parent, ignore_errors=True)


@dataclass
class FileState:
    """What the page shows of one file: its phase and progress."""

    file_id: str
    name: str
    size: int
    phase: str = "uploading"
    """`uploading` (to Jockey), `indexing`, `ready` or `failed`."""
    fraction: float | None = 0.0
    """Of the upload to Jockey; `None` while indexing (no percentage exists)."""
    status: str | None = None
    error: str | None = None
    version: int = 0

    def public(self) -> dict[str, Any]:
        """The `file` event's data."""
        return {
            "file_id": self.file_id,
            "name": self.name,
            "size": self.size,
            "phase": self.phase,
            "fraction": self.fraction,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class Batch:
    """The files of one upload request, while they are added to the store."""

    batch_id: str
    files: dict[str, FileState]
    finished: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def change(self, state: FileState, **values: Any) -> None:
        """Update a file's state and wake whoever follows the batch."""
        for key, value in values.items():
            setattr(state, key, value)
        state.version += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Each file's state whenever it changes, until the batch is finished."""
        seen: dict[str, int] = {}
        while True:
            changed = self._changed  # taken before reading: no change is missed
            for state in list(self.files.values()):
                if seen.get(state.file_id) != state.version:
                    seen[state.file_id] = state.version
                    yield state.public()
            if self.finished:
                return
            await changed.wait()

    async def run(self, store: KnowledgeStore, received: list[Received]) -> None:
        """Add every file to `store`, a few at once; delete each copy after."""
        gate = asyncio.Semaphore(_AT_ONCE)
        states = list(self.files.values())

        async def one(state: FileState, file: Received) -> None:
            loop = asyncio.get_running_loop()

            def on_progress(event: IngestEvent) -> None:
                # From a worker thread too, where a step runs on one.
                loop.call_soon_threadsafe(self._step, state, event)

            try:
                async with gate:
                    await store.aadd(str(file.path), on_progress=on_progress)
                self.change(state, phase="ready", fraction=1.0, status="ready")
            except JockeyIngestError as err:
                why = next((r.error for r in err.results if r.error), str(err))
                self.change(state, phase="failed", error=why)
            except JockeyError as err:
                self.change(state, phase="failed", error=failure_message(err))
            finally:
                await asyncio.to_thread(
                    shutil.rmtree, file.path.parent, ignore_errors=True
                )

        try:
            await asyncio.gather(
                *(one(s, f) for s, f in zip(states, received, strict=True))
            )
        finally:
            self.finished = True
            self._notify()

    def _step(self, state: FileState, event: IngestEvent) -> None:
        if state.phase in ("ready", "failed"):
            return
        if event.kind in ("hashing", "uploading"):
            total = max(event.bytes_total, 1)
            self.change(state, fraction=min(1.0, event.bytes_sent / total))
        elif event.kind in ("uploaded", "skipped", "indexing"):
            self.change(state, phase="indexing", fraction=None, status=event.status)
        elif event.kind == "failed":
            self.change(state, phase="failed", error=event.error)


class Batches:
    """The upload batches of one server, the oldest forgotten past a limit."""

    def __init__(self, limit: int = 200) -> None:
        """Keep the latest `limit` batches."""
        self._limit = limit
        self._kept: OrderedDict[str, Batch] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, store: KnowledgeStore, received: list[Received]) -> Batch:
        """A batch for `received`, being added to `store` in the background."""
        files = {}
        for file in received:
            state = FileState(secrets.token_urlsafe(9), file.name, file.size)
            files[state.file_id] = state
        batch = Batch(secrets.token_urlsafe(12), files)
        self._kept[batch.batch_id] = batch
        while len(self._kept) > self._limit:
            self._kept.popitem(last=False)
        task = asyncio.get_running_loop().create_task(batch.run(store, received))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    def get(self, batch_id: str) -> Batch | None:
        """A batch by its id."""
        return self._kept.get(batch_id)

    async def aclose(self) -> None:
        """Stop adding (the server is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
