"""One emulator per data directory, and the library the keyless tools share.

The keyless tools (`python -m langchain_jockey ingest`, `ask`) keep what they
add in one data directory, the *library*: `library_dir()`, which is
`$LANGCHAIN_JOCKEY_LIBRARY` when set, else `$XDG_DATA_HOME/langchain-jockey/library`
(`~/.local/share/langchain-jockey/library` by default).

One emulator serves one data directory. While it serves, it holds an OS lock
on `emulator.lock` there (`flock`; on Windows `msvcrt.locking`) and writes its
pid and URL in it. The lock goes with the process, however it ends, so a lock
file that nobody holds is stale whatever it says, and is taken over: a dead
pid, or a live one that is no emulator, cannot block the directory. A second
emulator started on a held directory fails with `EmulatorBusyError`; the
keyless tools join the one that holds it instead (`serve_library`). When the
holder does not answer at its URL, the error says so: taking over a directory
from a live process would make two writers.

`serve_library` starts the library's emulator as a background process (its
own session: Ctrl-C in the terminal does not reach it) that outlives the
command, so the store a command made can be asked by the next one, and a
`ChatJockey` on its URL works while it runs. It stops after `IDLE_EXIT`
seconds without a request, or on `stop` (`python -m langchain_jockey.emulator
--stop`), and starts again on the port it had when it can. Its output goes to
`emulator.log` in the directory.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "IDLE_EXIT",
    "LIBRARY_ENV",
    "EmulatorBusyError",
    "Holder",
    "Served",
    "holder",
    "library_dir",
    "serve_library",
    "stop",
]

LIBRARY_ENV = "LANGCHAIN_JOCKEY_LIBRARY"
"""The environment variable naming the keyless tools' library directory."""
IDLE_EXIT = 1800.0
"""Seconds without a request after which the library's emulator stops."""
LOCK_NAME = "emulator.lock"
LOG_NAME = "emulator.log"
_START_TIMEOUT = 60.0  # seconds for a background emulator to say where it serves
_ANSWER_TIMEOUT = 5.0  # seconds for a holder to answer a request
_ACQUIRE_TRIES = 40  # a probe holds the lock for an instant: try again meanwhile
# Starts the emulator in a session of its own (Windows: detached, a new process
# group), its output to the launcher's stderr (the log), prints its pid and
# exits: the emulator is then nobody's child here, so no process waits for it
# and none is left to reap.
_LAUNCH = (
    "import subprocess, sys; print(subprocess.Popen(sys.argv[1:], "
    "stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr, {}).pid)"
).format("creationflags=0x208" if sys.platform == "win32" else "start_new_session=True")
_FAILED = ("did not start", "already serves")  # what an emulator that cannot says


def library_dir() -> Path:
    """The keyless tools' library: `$LANGCHAIN_JOCKEY_LIBRARY`, else under XDG data.

    `$XDG_DATA_HOME/langchain-jockey/library`, `XDG_DATA_HOME` being
    `~/.local/share` when unset or not absolute (the XDG rule).
    """
    named = os.environ.get(LIBRARY_ENV)
    if named:
        return Path(named).expanduser()
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if Path(data).is_absolute() else Path.home() / ".local" / "share"
    return base / "langchain-jockey" / "library"


class EmulatorBusyError(RuntimeError):
    """Another emulator serves the data directory (one emulator per directory)."""

    def __init__(self, root: Path, found: Holder | None, why: str = "") -> None:
        """Say which emulator holds `root`, and what to do."""
        self.root, self.holder = root, found
        who = f"pid {found.pid}" if found and found.pid else "another process"
        where = f" at {found.url}" if found and found.url else ""
        msg = why or (
            f"An emulator ({who}){where} already serves {root}: use it, or stop "
            "it first (python -m langchain_jockey.emulator --stop --data-dir DIR)."
        )
        super().__init__(msg)


@dataclass(frozen=True)
class Holder:
    """What a lock file says of the emulator serving its directory.

    Attributes:
        pid: Its process id (`None` once it stopped).
        url: Its base URL, `http://HOST:PORT/v1.3` (`None` until it listens).
    """

    pid: int | None
    url: str | None

    @classmethod
    def read(cls, path: Path) -> Holder:
        """The lock file at `path` (an empty holder when unreadable)."""
        try:
            found = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            found = {}
        if not isinstance(found, dict):
            found = {}
        pid, url = found.get("pid"), found.get("url")
        return cls(
            pid if type(pid) is int else None, url if isinstance(url, str) else None
        )

    @property
    def port(self) -> int | None:
        """The port of `url`."""
        if not self.url:
            return None
        with contextlib.suppress(ValueError):
            return urllib.parse.urlsplit(self.url).port
        return None


def _try_lock(fd: int) -> bool:
    """Take the OS lock on `fd` without waiting; whether it was free."""
    try:
        if sys.platform == "win32":
            import msvcrt  # noqa: PLC0415 - Windows only

            os.lseek(
                fd, 1 << 30, os.SEEK_SET
            )  # a byte past the text, which stays readable
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt  # noqa: PLC0415 - Windows only

            os.lseek(fd, 1 << 30, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class DirLock:
    """The lock an emulator holds on its data directory for as long as it serves."""

    def __init__(self, root: Path) -> None:
        """A lock on `root` (not taken yet)."""
        self.root = root
        self.path = root / LOCK_NAME
        self._fd: int | None = None
        self._url: str | None = None  # where it serves, or served last

    def acquire(self) -> None:
        """Take the lock, or raise `EmulatorBusyError` naming the holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(_ACQUIRE_TRIES):
            if _try_lock(fd):
                self._fd = fd
                self._url = Holder.read(self.path).url
                self._write({"pid": os.getpid()})
                return
            time.sleep(0.05)
        os.close(fd)
        raise EmulatorBusyError(self.root, Holder.read(self.path))

    def publish(self, url: str) -> None:
        """Say where the emulator serves."""
        self._url = url
        self._write({"pid": os.getpid(), "url": url})

    def release(self) -> None:
        """Let the lock go; the file keeps the URL, for the next start's port."""
        if self._fd is None:
            return
        self._write({"url": self._url} if self._url else {})
        _unlock(self._fd)
        self._fd = None

    def _write(self, content: dict[str, Any]) -> None:
        if self._fd is None:
            return
        data = json.dumps(content).encode()
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, data)


def holder(root: Path) -> Holder | None:
    """The emulator that holds `root`'s lock now, or `None` (none, or a stale lock).

    Probing takes the lock for an instant when it is free; an emulator starting
    at that instant tries again (`DirLock.acquire`).
    """
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    if _try_lock(fd):
        _unlock(fd)
        return None
    os.close(fd)
    return Holder.read(path)


def _answers(url: str) -> bool:
    """Whether an emulator answers an HTTP request at `url` (any status)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=_ANSWER_TIMEOUT
    )
    try:
        conn.request("GET", f"{parts.path}/knowledge-stores?page_limit=1")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


def _running(root: Path) -> Holder | None:
    """The emulator serving `root` and answering; `None` when none holds it.

    Raises:
        EmulatorBusyError: a process holds it but does not answer at its URL.
    """
    deadline = time.monotonic() + _START_TIMEOUT
    found = holder(root)
    while found is not None and not found.url and time.monotonic() < deadline:
        time.sleep(0.05)  # starting: it publishes its URL once it listens
        found = holder(root)
    if found is None:
        return None
    if found.url and _answers(found.url):
        return found
    why = (
        f"The emulator (pid {found.pid}) holding {root} does not answer at "
        f"{found.url}. Stop it (kill {found.pid}) and try again."
    )
    raise EmulatorBusyError(root, found, why)


@dataclass(frozen=True)
class Served:
    """The emulator serving a data directory, as `serve_library` found it.

    Attributes:
        url: Its base URL.
        pid: Its process id.
        started: Whether `serve_library` started it (else it was running).
    """

    url: str
    pid: int | None
    started: bool


def serve_library(root: Path, *, idle_exit: float = IDLE_EXIT) -> Served:
    """The emulator serving `root`: the running one, or one started in the background.

    Started with `--data-dir root --idle-exit idle_exit`, on the port the last
    one had when it is free (so URLs printed earlier keep working), else on
    any; it outlives the caller. When two callers start one at once, one
    wins the lock and the other joins it.

    Raises:
        EmulatorBusyError: a process holds `root` but does not answer.
        RuntimeError: the emulator could not start (its log says why).
    """
    root.mkdir(parents=True, exist_ok=True)
    last = Holder.read(root / LOCK_NAME).port
    said = ""
    for port in dict.fromkeys((last or 0, 0)):
        found = _running(root)
        if found is not None:
            return Served(str(found.url), found.pid, started=False)
        pid, said = _start(root, port, idle_exit)
        found = _running(root)
        if found is not None:
            return Served(str(found.url), found.pid, started=found.pid == pid)
    msg = f"The emulator for {root} did not start: {said or 'no reason given'}"
    raise RuntimeError(msg)


def _start(root: Path, port: int, idle_exit: float) -> tuple[int, str]:
    """Launch a background emulator on `root`: its pid, and why it did not start.

    Returns once an emulator serves `root` (this one, or one started at the
    same moment that won the lock; the reason is then `""`), or this one said
    why it could not start (a port taken), or a minute has passed.
    """
    log_path = root / LOG_NAME
    with log_path.open("ab") as log:
        offset = log.tell()
        launched = subprocess.run(  # noqa: S603 - this interpreter, our module
            [
                sys.executable,
                "-c",
                _LAUNCH,
                sys.executable,
                "-m",
                "langchain_jockey.emulator",
                "--data-dir",
                str(root),
                "--port",
                str(port),
                "--idle-exit",
                f"{idle_exit:g}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            check=True,
            text=True,
        )
    pid = int(launched.stdout)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        found = holder(root)
        if found is not None and found.url:
            return pid, ""
        with log_path.open("rb") as log:
            log.seek(offset)
            said = log.read(4096).decode(errors="replace")
        if any(why in said for why in _FAILED):
            return pid, said.strip()
        time.sleep(0.02)
    return pid, f"it said nothing within {_START_TIMEOUT:g} s (see {log_path})"


def stop(root: Path, timeout: float = 10.0) -> int | None:
    """Stop the emulator serving `root`; its pid, or `None` when none served it.

    The process serving it gets SIGTERM (an emulator started by `serve_library`
    or the command line stops cleanly on it). This process is never signalled:
    stop its `Emulator` instead.

    Raises:
        TimeoutError: it still holds `root` `timeout` seconds later.
        RuntimeError: this process serves `root`.
    """
    found = holder(root)
    if found is None or found.pid is None:
        return None
    if found.pid == os.getpid():
        msg = f"this process serves {root}: stop its Emulator instead"
        raise RuntimeError(msg)
    with contextlib.suppress(ProcessLookupError):
        os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while holder(root) is not None:
        if time.monotonic() > deadline:
            msg = f"the emulator (pid {found.pid}) still serves {root}"
            raise TimeoutError(msg)
        time.sleep(0.05)
    return found.pid
