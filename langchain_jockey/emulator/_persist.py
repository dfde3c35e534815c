"""An emulator's data directory: what survives a restart (`EmulatorConfig.data_dir`).

```
DATA_DIR/
  library.sqlite3    stores, items, assets and multipart upload sessions
  files/<asset_id>   each uploaded file, kept until its asset is deleted
  tmp/               direct uploads while they arrive (emptied at every start)
  emulator.lock      the pid and URL of the emulator serving it (`_home.py`)
```

Why SQLite (the standard library's `sqlite3`) rather than JSON files: every
change is one small transaction (a new item, a part received, an asset
deleted), so nothing is rewritten whole as a library grows, a crash or a kill
at any moment leaves the last committed state (write-ahead log), and it is one
file instead of thousands. Each store, item, asset and upload session is one
row holding its record as a JSON object, in creation order; a record keeps
every field of its dataclass, so a field added to `StoreRecord` (say) persists
with no change here. The parts of multipart uploads have their own rows, so a
part costs one small write whatever the file's size.

Processing is simulated on the monotonic clock, which restarts with the
process: records keep wall-clock times (`wall`, `monotonic`), so an item that
was `processing` when the emulator stopped goes on from where it was.

Uploaded files count against `max_disk` (`EmulatorConfig.max_disk`): a
multipart upload reserves its whole size when it is created, a direct upload
takes its bytes as they arrive; an upload that would pass the cap gets the
API's 413, and deleting an asset frees its bytes. The database itself is not
counted.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

from langchain_jockey.emulator._requests import ApiError

__all__ = ["DEFAULT_MAX_DISK", "DataDir", "Spool", "monotonic", "wall"]

DEFAULT_MAX_DISK = 20_000_000_000
"""Bytes of uploaded files a data directory holds by default (20 GB)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS records_owner ON records (kind, owner);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    received_at TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upload_id, idx)
);
"""


def wall(mono: float) -> float:
    """A `time.monotonic()` reading as wall-clock seconds (`time.time()`)."""
    return mono + time.time() - time.monotonic()


def monotonic(seconds: float) -> float:
    """Wall-clock seconds as a `time.monotonic()` reading of this process."""
    return seconds + time.monotonic() - time.time()


class DataDir:
    """The database and files of one data directory, open for one emulator.

    Call it only from the emulator's event loop (SQLite connections stay on
    the thread that made them). `used` is the bytes counted against `max_disk`,
    kept by `reserve` and `release`.
    """

    def __init__(self, root: Path, max_disk: int = DEFAULT_MAX_DISK) -> None:
        """Open (or create) the data directory at `root`."""
        self.root = root
        self.max_disk = max_disk
        self.used = 0
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self._tmp = root / "tmp"
        shutil.rmtree(self._tmp, ignore_errors=True)  # uploads a stop cut short
        self._tmp.mkdir()
        self._db = sqlite3.connect(root / "library.sqlite3", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- records ------------------------------------------------------------------

    def put(self, kind: str, key: str, body: dict[str, Any], owner: str = "") -> None:
        """Write a record (replacing one with the same kind and id, in its place)."""
        self._db.execute(
            "INSERT INTO records (kind, id, owner, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET owner = excluded.owner, "
            "body = excluded.body",
            (kind, key, owner, json.dumps(body, separators=(",", ":"))),
        )

    def drop(self, kind: str, key: str) -> None:
        """Delete a record; an upload's parts go with it."""
        with self._transaction():
            self._db.execute(
                "DELETE FROM records WHERE kind = ? AND id = ?", (kind, key)
            )
            if kind == "upload":
                self._db.execute("DELETE FROM parts WHERE upload_id = ?", (key,))

    def drop_owned(self, kind: str, owner: str) -> None:
        """Delete every record of `kind` that `owner` holds (a store's items)."""
        self._db.execute(
            "DELETE FROM records WHERE kind = ? AND owner = ?", (kind, owner)
        )

    def rows(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        """`(id, owner, record)` of every record of `kind`, oldest first."""
        found = self._db.execute(
            "SELECT id, owner, body FROM records WHERE kind = ? ORDER BY rowid",
            (kind,),
        )
        return [(key, owner, json.loads(body)) for key, owner, body in found]

    def put_part(self, upload_id: str, index: int, part: tuple[int, str, str]) -> None:
        """Record part `index` of an upload as received: `(size, ETag, when)`."""
        self._db.execute(
            "INSERT INTO parts (upload_id, idx, size, etag, received_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (upload_id, idx) DO UPDATE SET "
            "size = excluded.size, etag = excluded.etag, "
            "received_at = excluded.received_at",
            (upload_id, index, *part),
        )

    def report_parts(self, upload_id: str, indexes: list[int]) -> None:
        """Mark parts of an upload as reported."""
        self._db.executemany(
            "UPDATE parts SET reported = 1 WHERE upload_id = ? AND idx = ?",
            [(upload_id, i) for i in indexes],
        )

    def parts(self, upload_id: str) -> list[tuple[int, tuple[int, str, str], bool]]:
        """`(index, (size, ETag, when), reported)` of each part received."""
        found = self._db.execute(
            "SELECT idx, size, etag, received_at, reported FROM parts "
            "WHERE upload_id = ? ORDER BY idx",
            (upload_id,),
        )
        return [(i, (size, etag, at), bool(done)) for i, size, etag, at, done in found]

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- files and the disk cap -------------------------------------------------------

    def file(self, asset_id: str) -> Path:
        """Where an asset's file is kept (whether or not it exists yet)."""
        return self.files / asset_id

    def remove(self, asset_id: str, size: int) -> None:
        """Delete an asset's file and free its `size` bytes."""
        with contextlib.suppress(FileNotFoundError):
            self.file(asset_id).unlink()
        self.release(size)

    def spool(self) -> Spool:
        """A new temporary file for a direct upload as it arrives."""
        return Spool(self, self._tmp / secrets.token_hex(8))

    def check(self, size: int) -> None:
        """Raise the API's 413 when `size` more bytes would pass `max_disk`."""
        if self.used + size > self.max_disk:
            msg = (
                f"The emulator's data directory {self.root} holds at most "
                f"{self.max_disk:,} bytes of uploads (--max-disk) and has "
                f"{self.used:,}; this upload needs {size:,} more. Delete assets "
                "(DELETE /assets/{id}), or start the emulator with a larger "
                "--max-disk."
            )
            raise ApiError(413, "content_too_large", msg)

    def reserve(self, size: int) -> None:
        """Count `size` more bytes, or raise the API's 413 past `max_disk`."""
        self.check(size)
        self.used += size

    def release(self, size: int) -> None:
        """Count `size` bytes fewer."""
        self.used = max(0, self.used - size)


class Spool:
    """A direct upload's file as it arrives: in `tmp/`, counted against the cap.

    `keep` moves it to its asset's path; `close` deletes it unless it was kept.
    """

    def __init__(self, disk: DataDir, path: Path) -> None:
        """Create the temporary file."""
        self._disk = disk
        self.path = path
        self.size = 0
        self._file: IO[bytes] | None = path.open("wb")

    def write(self, data: bytes | bytearray) -> None:
        """Append `data`; the API's 413 if it would pass the cap."""
        self._disk.reserve(len(data))
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)

    def restart(self) -> None:
        """Empty the file: the form sent a second file part of the same name."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
        self._disk.release(self.size)
        self.size = 0

    def keep(self, target: Path) -> None:
        """Move the file to `target`; its bytes stay counted (now its asset's)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self.path.replace(target)

    def close(self) -> None:
        """Delete the file and free its bytes, unless it was kept."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._disk.release(self.size)
