"""What `add` keeps in `state_dir` for later runs and for other processes.

Two kinds of record, both for the processes of one machine that share one
`state_dir` (the locks are `flock`s, or `msvcrt` byte locks on Windows: a
network file system may not honour them):

- `StateLog`, one append-only text file: the hash of each file hashed, by
  its quick check (device, inode, size and modification time in
  nanoseconds, as rsync's), so an unchanged file is not read again; and the
  items made, by store and content hash, so a process that listed its store
  earlier still finds an item another process just made. Each line is one
  record, checked as it is read: a line that does not parse (a torn write, a
  corrupt file) is passed over, and a later line of the same key wins.
  Writers take a short exclusive lock and append; at `COMPACT_AT` bytes the
  writer rewrites the file with the `KEEP` records used most recently (a
  record found again when in the older half of the file is written again,
  so it stays), atomically (a temporary file, then a rename).
- `FileLock`, a lock per key (a content hash; a file's quick check): held by
  one holder at a time, released when its holder ends or dies (the system
  releases a dead process's locks), so two processes adding the same content
  take turns, and two adding different files never wait for each other.

The log is an optimisation: failing to read or write it costs a hash, never
a result, so its `OSError`s are swallowed. A lock that cannot be taken for
another reason than a holder (a permission) raises.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from langchain_jockey._sources import FileState, Known

__all__ = ["COMPACT_AT", "KEEP", "FileLock", "StateLog"]

COMPACT_AT = 16 << 20  # bytes of log that make the next writer compact it
KEEP = 50_000  # records a compaction keeps: about 7 MB
_MAX_READ = 4 * COMPACT_AT  # bytes read of a log that grew past it anyway
_LOG = "state-1.log"  # the format's version is in the name
_WRITER = "state-1.lock"
_SHA = re.compile(r"[0-9a-f]{64}")
_MIME = re.compile(r"[A-Za-z0-9.+-]{1,64}/[A-Za-z0-9.+-]{1,64}")
_SCOPE = re.compile(r"[0-9a-f]{16}")
_GONE = "-"  # the hash of a forgotten state

Key = tuple[str, ...]


def _state_key(state: FileState) -> Key:
    return (
        "h",
        str(state.device),
        str(state.inode),
        str(state.size),
        str(state.mtime_ns),
    )


def _parse(line: bytes) -> tuple[Key, str] | None:
    """The key and value of one log line, or `None` when it is not a record."""
    try:
        fields = line.decode("ascii").split(" ")
    except UnicodeDecodeError:
        return None
    if fields[0] == "h" and len(fields) == 7:  # h, 4 numbers, sha, mime
        if not all(re.fullmatch(r"-?[0-9]{1,24}", f) for f in fields[1:5]):
            return None
        sha, mime = fields[5], fields[6]
        if (_SHA.fullmatch(sha) and _MIME.fullmatch(mime)) or sha == mime == _GONE:
            return tuple(fields[:5]), f"{sha} {mime}"
        return None
    if fields[0] == "i" and len(fields) == 4:  # i, scope, sha, item
        scope, sha, item = fields[1:]
        if _SCOPE.fullmatch(scope) and _SHA.fullmatch(sha) and _usable_id(item):
            return ("i", scope, sha), item
    return None


def _usable_id(value: str) -> bool:
    return 0 < len(value) <= 200 and value.isprintable() and "/" not in value


class StateLog:
    """The records of one `state_dir`: file hashes by quick check, items made.

    Read once when an `add` starts (`read`), and again where another process
    may have written since (after a lock was taken). Safe between threads.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / _LOG
        self._lock = threading.Lock()
        self._records: dict[Key, tuple[str, int]] = {}  # key → value, where written
        self._file: tuple[int, int] | None = None  # (device, inode) of what was read
        self._read_to = 0

    # -- reading -------------------------------------------------------------------

    def read(self) -> None:
        """Take in what was written since the last read (all of it, after a rewrite)."""
        try:
            with self.path.open("rb") as file:
                st = os.fstat(file.fileno())
                with self._lock:
                    if (
                        st.st_dev,
                        st.st_ino,
                    ) != self._file or st.st_size < self._read_to:
                        self._records, self._read_to = {}, 0
                        self._file = (st.st_dev, st.st_ino)
                    start = max(self._read_to, st.st_size - _MAX_READ)
                    file.seek(start)
                    data = file.read(_MAX_READ)
                    end = (
                        data.rfind(b"\n") + 1
                    )  # a line being written is read next time
                    at = start
                    for line in data[:end].split(b"\n")[:-1]:
                        record = _parse(line)
                        if record is not None:
                            self._records[record[0]] = (record[1], at)
                        at += len(line) + 1
                    self._read_to = start + end
        except OSError:
            return

    def recall(self, state: FileState) -> Known | None:
        """The hash of the file in `state`, if it was hashed in that state.

        A record found in the older half of the log is written again, so that
        the next compaction keeps the files still in use.
        """
        key = _state_key(state)
        with self._lock:
            value, at = self._records.get(key, (_GONE, 0))
            old = at < self._read_to // 2
        sha, _, mime = value.partition(" ")
        if sha == _GONE:
            return None
        if old:
            self._write([(key, value)])
        return Known(sha, mime)

    def item(self, scope: str, sha256: str) -> str | None:
        """The item a process of this machine made of `sha256` in the store `scope`."""
        with self._lock:
            found = self._records.get(("i", scope, sha256))
        return None if found is None else found[0]

    # -- writing -------------------------------------------------------------------

    def remember(self, state: FileState, sha256: str, mime: str) -> None:
        """Record that the file in `state` has the hash `sha256`, container `mime`."""
        self._write([(_state_key(state), f"{sha256} {mime}")])

    def forget(self, state: FileState) -> None:
        """Record that the hash of the file in `state` is not known (it was wrong)."""
        self._write([(_state_key(state), f"{_GONE} {_GONE}")])

    def made(self, scope: str, sha256: str, item_id: str) -> None:
        """Record that the store `scope` has the item `item_id` of `sha256`."""
        if _usable_id(item_id) and " " not in item_id:
            self._write([(("i", scope, sha256), item_id)])

    def _write(self, records: list[tuple[Key, str]]) -> None:
        lines = "".join(" ".join((*key, value)) + "\n" for key, value in records)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _held(self.directory / _WRITER):
                with self.path.open("a+b") as file:
                    size = file.seek(0, os.SEEK_END)
                    if size:  # a line torn by a crash ends before this one
                        file.seek(size - 1)
                        torn = file.read(1) != b"\n"
                        lines = "\n" + lines if torn else lines
                    file.write(lines.encode("ascii"))
                    size = file.tell()
                if size > COMPACT_AT:
                    self._compact()
        except (OSError, UnicodeEncodeError):
            return  # an optimisation: a hash is read again next time
        with self._lock:
            for key, value in records:
                self._records[key] = (value, self._read_to)

    def _compact(self) -> None:
        """Rewrite the log with its `KEEP` latest records (the writer's lock held)."""
        with self.path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - _MAX_READ))
            data = file.read(_MAX_READ)
        latest: dict[Key, bytes] = {}
        for line in data.split(b"\n"):
            record = _parse(line)
            if record is not None:
                latest.pop(record[0], None)  # ordered by where each was written last
                latest[record[0]] = line
        kept = [
            line
            for key, line in latest.items()
            if key[0] == "i" or not line.endswith(b" - -")
        ]
        tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(b"".join(line + b"\n" for line in kept[-KEEP:]))
            tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)


class FileLock:
    """An exclusive lock on a key, as a file in `directory`; never waits.

    `acquire` takes it or says that another holder has it. `release` removes
    the file while it still holds it, so files do not pile up; a holder that
    took the lock on a file removed meanwhile sees that it is not the file at
    the path any more, and tries again.
    """

    def __init__(self, directory: Path, key: str) -> None:
        self.path = directory / f"{key}.lock"
        self._fd: int | None = None
        self._released = False
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it (blocking only on the file system).

        Returns:
            Whether it is held now. `False` once released: a late take (a
            cancelled flow's thread) never keeps a lock.

        Raises:
            OSError: the lock file cannot be made or opened.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if not _try_lock(fd):
                    os.close(fd)
                    return False
                try:
                    same = os.path.samestat(os.fstat(fd), self.path.stat())
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if not same:  # removed by its last holder after we opened it
                os.close(fd)
                continue
            with self._guard:
                if not self._released:
                    self._fd = fd
                    return True
            _release(self.path, fd)
            return False

    def release(self) -> None:
        """Let the lock go (at once: no file system wait but an unlink)."""
        with self._guard:
            fd, self._fd, self._released = self._fd, None, True
        if fd is not None:
            _release(self.path, fd)


def _release(path: Path, fd: int) -> None:
    # While held: a waiter still on this file finds it gone and tries the new
    # one. Windows removes no open file: there the file is used again.
    with suppress(OSError):
        path.unlink()
    os.close(fd)


if sys.platform == "win32":  # pragma: no cover - the CI runs on Linux
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s, then OSError

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """The log writers' lock, waited for: held for one append (or a compaction)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd)
        yield
    finally:
        os.close(fd)  # closing lets the lock go
