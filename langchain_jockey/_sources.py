"""What `KnowledgeStore.add` takes: sources checked before any upload, and file bytes.

A source is a local file, a directory (its media files, `MAX_DEPTH` levels
down at most, in name order) or an `http(s)` URL. Every source is checked
before anything is sent, so a typo in the tenth path does not leave nine
half-done uploads, and one error names every bad source, once: the path
exists, the file is not empty, its first bytes are a media container (its
signature, not its name), it is within the API's size limits, and, when the
container says (MP4 family), within the duration limits. Limits are the
documented ones (docs/protocol.md, "Limits"):

- direct upload ≤ 200 MB and multipart upload ≤ 10 GB (SDK 1.3.6,
  `assets/client.py`, `multipart_upload/client.py`);
- duration 4 s to 2 h: the indexing model's range (Marengo, docs
  `v1.3/docs/guides/upload-videos/single`); assets themselves have none.

`FileStream` sends a file, or a part of one, as request content, read in
blocks (from a worker thread on the async path), and reports how far it got.
A file is opened again after the checks only by `open_file`, which refuses
what is no longer a regular file (a FIFO would block the open forever).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import stat
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from langchain_jockey._media import SNIFF_BYTES, VIDEO_EXTENSIONS, duration, sniff
from langchain_jockey.errors import JockeyInputError

__all__ = [
    "MAX_DURATION",
    "MAX_FILE_SIZE",
    "MIN_DURATION",
    "FileChangedError",
    "FileState",
    "FileStream",
    "Hashed",
    "Known",
    "Recall",
    "Source",
    "checked_metadata",
    "form_stream",
    "item_metadata",
    "open_file",
    "sha256_file",
    "sources_of",
    "url_problem",
]

MAX_FILE_SIZE = 10_000_000_000  # multipart upload, video/audio (SDK 1.3.6)
MIN_DURATION = 4.0  # seconds (docs: upload-videos/single, Marengo)
MAX_DURATION = 7200.0
MAX_DEPTH = 1000  # folders within a folder source, the most levels walked
BLOCK = 1 << 20  # bytes read at a time: the memory an upload holds
_MAX_PAIRS = 50  # item metadata (SDK 1.3.6 knowledge_store_items/client.py)
_MAX_VALUE = 8192
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")  # RFC 3986 §3.1
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")  # a DNS label (RFC 1035 §2.3.4)
_MAX_PORT = 65535
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX: an open that never waits

Metadata = Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None] | None


@dataclass(frozen=True)
class Source:
    """One thing to add: a checked local file, or a URL to import.

    Attributes:
        name: What the user gave (a path or URL), as results report it.
        path: The file, for a local source.
        url: The URL, for an import.
        size: The file's size in bytes (0 for a URL).
        mime: The container's MIME type (guessed from the URL for imports).
        metadata: The item metadata to set (the user's, checked).
        error: Why a file found in a directory cannot be added: it fails alone
            (a path named explicitly raises instead).
        state: The file's state when it was checked.
        sha256: Its SHA-256 when the quick check knew it (`Known`): the file
            was not opened.
    """

    name: str
    path: Path | None
    url: str | None
    size: int
    mime: str
    metadata: dict[str, Any]
    error: str | None = None
    state: FileState | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        """The file name the API is told, as UTF-8 text.

        A name's bytes that do not decode (held as lone surrogates) cannot be
        sent as text: each becomes U+FFFD.
        """
        if self.path is not None:
            return os.fsencode(self.path.name).decode("utf-8", "replace")
        return Path(urllib.parse.urlsplit(self.url or "").path).name or "video"


def sources_of(
    items: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    metadata: Metadata = None,
    recall: Recall | None = None,
) -> list[Source]:
    """Expand and check every source, before any I/O; every bad one in one error.

    A file found in a directory that fails a check does not raise: its
    `Source` carries the `error`, and it fails alone while the others go on.
    With `recall` (the quick check), a file it knows in its present state
    passed the checks in that state and is not opened: its container and hash
    are the ones recalled.

    Raises:
        JockeyInputError: missing paths, empty or unsupported files, ones over
            a limit, directories with no media files, non-`http(s)` or malformed
            URLs (see `url_problem`), or metadata the API would refuse; the
            message names each bad source once, with why.
    """
    given = [items] if isinstance(items, (str, os.PathLike)) else list(items)
    if not given:
        raise JockeyInputError("add() needs at least one file, directory or URL.")
    found: list[Source] = []
    bad: list[str] = []
    for item in given:
        if not isinstance(item, (str, os.PathLike)):
            bad.append(
                f"{item!r:.60}: a source is a path or an http(s) URL, "
                f"not {type(item).__name__}."
            )
            continue
        text = os.fspath(item)
        try:
            found += _expand(text, metadata, recall)
        except JockeyInputError as why:
            # A URL (which may hold spaces) and an odd name are named quoted.
            odd = _SCHEME.match(text) or not text.isprintable()
            bad.append(f"{text!r}: {why}" if odd else f"{text}: {why}")
    if len(bad) == 1:
        raise JockeyInputError(bad[0])
    if bad:
        lines = "\n".join(f"- {b}" for b in bad)
        raise JockeyInputError(f"{len(bad)} sources cannot be added:\n{lines}")
    return found


def _expand(text: str, metadata: Metadata, recall: Recall | None) -> list[Source]:
    """The sources `text` names; a `JockeyInputError` saying why (not naming it)."""
    if scheme := _SCHEME.match(text):
        return [_url(text, scheme.group(1).lower(), metadata)]
    path = Path(text).expanduser()
    if path.is_dir():
        files = _media_files(path)
        if not files:
            exts = ", ".join(sorted(VIDEO_EXTENSIONS))
            msg = f"the directory holds no media files ({exts})."
            raise JockeyInputError(msg)
        return [_found(p, metadata, recall) for p in files]
    if path.exists():
        return [_file(path, text, metadata, recall)]
    raise JockeyInputError("no such file or directory.")


def _media_files(root: Path) -> list[Path]:
    """The media files under `root`, in name order, walked without recursion.

    As `Path.rglob` did: folders linked to are not entered (a link may loop),
    files linked to are taken, a folder we may not read is passed over (a
    drive's `lost+found`).

    Raises:
        JockeyInputError: a folder nested over `MAX_DEPTH` levels deep, or one
            that cannot be read for another reason.
    """
    files: list[Path] = []
    folders = [(root, 0)]
    while folders:
        folder, depth = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if depth == MAX_DEPTH:
                            msg = (
                                f"folders nested over {MAX_DEPTH:,} levels deep; "
                                "add the deep ones as sources of their own."
                            )
                            raise JockeyInputError(msg)
                        folders.append((Path(entry.path), depth + 1))
                    elif (
                        entry.is_file()
                        and Path(entry.name).suffix.lower() in VIDEO_EXTENSIONS
                    ):
                        files.append(Path(entry.path))
        except PermissionError:
            continue
        except OSError as exc:
            msg = f"the folder {folder} cannot be read ({exc.strerror})."
            raise JockeyInputError(msg) from None
    return sorted(files)


def _found(path: Path, metadata: Metadata, recall: Recall | None) -> Source:
    """A file of a directory: one that fails the checks fails alone, later.

    Its `error` says why, without its name: results name their source.
    """
    try:
        return _file(path, str(path), metadata, recall)
    except JockeyInputError as exc:
        return Source(str(path), path, None, 0, "", {}, str(exc))


def _url(text: str, scheme: str, metadata: Metadata) -> Source:
    if scheme not in ("http", "https"):
        msg = (
            "only http(s) URLs can be imported (the API fetches them); "
            "download the file and pass its path instead."
        )
        raise JockeyInputError(msg)
    if why := url_problem(text):
        raise JockeyInputError(f"not a URL the API can fetch: {why}.")
    return Source(text, None, text, 0, "video/mp4", _metadata(text, metadata))


def url_problem(text: str) -> str | None:
    """Why `text` is not an http(s) URL a request can go to; `None` when it is one.

    Read without I/O, as every parser on the way (urllib, httpx, IDNA, DNS)
    would read it: a control character, a malformed host or port, no host, a
    host name with an empty label, a label over 63 characters or a name over
    253, port 0 or past 65535.
    """
    if not text.isprintable():
        return "it holds a control or invisible character"
    try:
        url = httpx.URL(text)  # IPv6 literals; a port that is not a number
        host, raw = url.host, url.raw_host  # IDNA: a UnicodeError (a ValueError)
    except (ValueError, httpx.InvalidURL) as exc:
        return str(exc) or type(exc).__name__
    if url.scheme not in ("http", "https"):
        return "it is not http(s)"
    if not host:
        return "it names no host: it must look like http(s)://HOST[:PORT]/…"
    if url.port is not None and not 0 < url.port <= _MAX_PORT:
        return f"port {url.port}: a port is a number from 1 to {_MAX_PORT}"
    if ":" not in host:  # a name or an IPv4 address, not an IPv6 literal
        name = raw.decode("ascii", "replace").removesuffix(".")
        if len(name) > 253 or not all(map(_LABEL.fullmatch, name.split("."))):
            return "the host is not a DNS name (labels of 1-63 letters, digits, -)"
    return None


def _file(path: Path, name: str, metadata: Metadata, recall: Recall | None) -> Source:
    try:
        st = path.stat()
    except OSError as exc:
        raise JockeyInputError(f"cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(st.st_mode):
        raise JockeyInputError("not a regular file.")
    size, state = st.st_size, FileState.of_stat(st)
    known = None if recall is None else recall(state)
    if known is not None:  # checked in this state before: not opened again
        meta = _metadata(name, metadata)
        return Source(
            name, path, None, size, known.mime, meta, None, state, known.sha256
        )
    if size == 0:
        raise JockeyInputError("the file is empty.")
    if size > MAX_FILE_SIZE:
        msg = f"{size:,} bytes is over the API's {MAX_FILE_SIZE:,}-byte limit."
        raise JockeyInputError(msg)
    try:
        with open_file(path) as file:
            container = sniff(file.read(SNIFF_BYTES))
            file.seek(0)
            seconds = duration(file) if container else None
    except OSError as exc:
        raise JockeyInputError(f"cannot be read ({exc.strerror}).") from None
    if container is None:
        msg = (
            "not a supported video or audio file (its first bytes match "
            "no media container: MP4, MOV, WebM, MKV, AVI, MPEG-TS, …)."
        )
        raise JockeyInputError(msg)
    if seconds is not None and not MIN_DURATION <= seconds <= MAX_DURATION:
        msg = (
            f"{seconds:g} s long; videos are indexed from {MIN_DURATION:g} s "
            f"to {MAX_DURATION / 3600:g} h."
        )
        raise JockeyInputError(msg)
    meta = _metadata(name, metadata)
    return Source(name, path, None, size, container.mime, meta, None, state)


def _metadata(name: str, metadata: Metadata) -> dict[str, Any]:
    """The item metadata for `name`; an error saying why, not naming it."""
    value = metadata(name) if callable(metadata) else metadata
    return _checked_metadata(value, _MAX_PAIRS - 1, _MAX_VALUE)  # 1 is the hash


def item_metadata(name: str, value: object) -> dict[str, Any]:
    """`value` as the metadata of the item of `name` (see `checked_metadata`)."""
    return checked_metadata(name, value, _MAX_PAIRS - 1, _MAX_VALUE)  # 1 is the hash


def checked_metadata(
    name: str, value: object, pairs: int, longest: int
) -> dict[str, Any]:
    """`value` as metadata the API takes, or an error naming `name`.

    At most `pairs` pairs; keys of 1-128 characters; values strings (of at
    most `longest` characters), numbers, booleans or lists of strings (8,192
    characters as JSON: ours). An item takes 50 pairs and strings to 8,192
    characters, a store 10 pairs and strings to 2,048 (SDK 1.3.6).

    Raises:
        JockeyInputError: it is not a mapping, or breaks a rule.
    """
    try:
        return _checked_metadata(value, pairs, longest)
    except JockeyInputError as why:
        raise JockeyInputError(f"{name}: {why}") from None


def _checked_metadata(value: object, pairs: int, longest: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        msg = f"metadata must be a mapping, not {type(value).__name__}."
        raise JockeyInputError(msg)
    if len(value) > pairs:
        raise JockeyInputError(f"metadata takes at most {pairs} pairs.")
    for key, item in value.items():
        flat = isinstance(item, (str, int, float, bool)) or (
            isinstance(item, list) and all(isinstance(x, str) for x in item)
        )
        shown = repr(key[:40] + "…" if isinstance(key, str) and len(key) > 40 else key)
        if not isinstance(key, str) or not 0 < len(key) <= 128 or not flat:
            msg = (
                f"metadata[{shown}]: keys are 1-128 characters; values "
                "are strings, numbers, booleans or lists of strings."
            )
            raise JockeyInputError(msg)
        try:  # as it is sent: NaN, a lone surrogate, a huge int fail here
            sent = json.dumps(
                item, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
            (key + sent).encode()
        except ValueError as exc:
            msg = f"metadata[{shown}] cannot be sent ({exc})."
            raise JockeyInputError(msg) from None
        # A string's characters; anything else (a list too) as JSON text.
        size, most = (
            (len(item), longest) if isinstance(item, str) else (len(sent), _MAX_VALUE)
        )
        if size > most:
            what = "characters" if isinstance(item, str) else "characters as JSON"
            msg = f"metadata[{shown}] is over {most:,} {what}."
            raise JockeyInputError(msg)
    return dict(value)


def open_file(path: Path) -> BinaryIO:
    """`path` opened for reading, if it is still a regular file.

    Sources are checked before anything is sent, and opened again later: by
    then a FIFO may stand in the file's place, on which a plain `open` waits
    for a writer forever. So the file is opened without blocking, and the
    opened descriptor, not the name, is checked.

    Raises:
        JockeyInputError: it is no longer a regular file.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0))
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            if _NONBLOCK:
                os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    msg = "not a regular file any more (it was replaced after the checks)."
    raise JockeyInputError(msg)


def sha256_file(path: Path) -> str:
    """The file's SHA-256, hex, read in blocks."""
    digest = hashlib.sha256()
    with open_file(path) as file:
        while block := file.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class FileChangedError(JockeyInputError):
    """A file changed while it was hashed or uploaded: it fails, nothing is recorded."""


@dataclass(frozen=True)
class FileState:
    """What `stat` says of a file's version: size, modification time, inode, device.

    The quick check, as rsync's: a file in the same state is taken to hold the
    same bytes (a rewrite that restores the time is the exception, which
    `add(verify=True)` catches).
    """

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path) -> FileState:
        """The state of `path` now."""
        return cls.of_stat(path.stat())

    @classmethod
    def of_stat(cls, st: os.stat_result) -> FileState:
        """The state `st` says."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    @property
    def key(self) -> str:
        """The state as a name (for files named after it)."""
        return f"{self.device}-{self.inode}-{self.size}-{self.mtime_ns}"


@dataclass(frozen=True)
class Known:
    """What the quick check knows of a file in one state (see `FileState`).

    Attributes:
        sha256: Its SHA-256 (hex).
        mime: Its container's MIME type, as the checks found it.
    """

    sha256: str
    mime: str


Recall = Callable[[FileState], Known | None]
"""The quick check: what is known of a file in a state, if anything."""


class Hashed:
    """A file in the state it was checked in, its SHA-256, and what the bytes sent meet.

    The hash is known before any byte is sent (`expected`: remembered by the
    quick check, or read in a pass of its own, `of`), or read from the bytes
    as they are sent. The pass of its own of a file sent in parts also keeps
    the SHA-256 of each `grain` of the file (a power of two from 64 KiB to
    `BLOCK`, so that the file has at most `_GRAINS` of them: 320 KB of
    digests for 10 GB): a stream sending a region checks each grain it reads
    whole against its digest before it goes, in whatever order the regions
    go. Only a grain cut by a region's edge (a part size that is no multiple
    of the grain: the API's are) is held to the state alone.

    Otherwise the bytes read to be sent feed one hash in the file's order
    (`feed`). Regions sent at once (the parts of a multipart upload) each
    feed it when their turn comes: a block read past the bytes hashed so far
    first has the gap hashed, read again from the file (the page cache: its
    part went, or goes, from another stream). So the file is hashed once,
    while its parts go in parallel, and `finish` reads only what no stream
    read (the parts a resumed upload sent in earlier runs). At the end of
    each region, before its last bytes go (`check`): the file's state is the
    one it was checked in, and once every byte went through the hash it is
    the hash expected, or becomes the file's hash. Otherwise the region fails
    unsent with `FileChangedError`. Streams on several threads share it (a
    lock).

    Attributes:
        path: The file.
        state: Its state when it was checked.
        expected: Its SHA-256 (hex), when known before any byte was sent.
        grain: The bytes each digest of `grains` covers.
        grains: The SHA-256 of each grain, one after the other (`of` with parts).
    """

    def __init__(
        self,
        path: Path,
        state: FileState,
        expected: str | None = None,
        grain: int = 0,
        grains: bytes = b"",
    ) -> None:
        self.path, self.state, self.expected = path, state, expected
        self.grain, self.grains = grain, grains
        self._lock = threading.Lock()
        self._digest, self._end = hashlib.sha256(), 0  # of bytes [0, _end)
        self._read: str | None = None  # the hash of every byte, in order
        self.held: bytes | None = None  # the whole file, as hashed (`of`)

    @classmethod
    def of(cls, path: Path, state: FileState, *, parts: bool = True) -> Hashed:
        """Hash `path`, in `state` when it was checked, in a pass of its own (blocking).

        `parts`: it is sent in regions that may go in any order (a multipart
        upload), so the digest of each grain is kept too. Else (one region,
        in order) the bytes sent are hashed again in order and held to the
        hash: keeping grains would cost a third SHA-256 of every byte (one
        for the grains, one to check them), 0.3 s of CPU for 200 files of
        1 MB here, a third of `add`'s, for nothing an in-order check misses.

        A file of one block sent whole is kept (`held`, until `let_go`) and
        sent from those bytes: they are the bytes hashed, so they are neither
        read nor hashed again, and they take no more memory than its stream's
        one block would. Measured: 200 files of 1 MB, the same size (so each
        is hashed first), cost `add` 0.3 s less CPU here, a quarter of it.

        Raises:
            FileChangedError: it is not in `state`, or it changed meanwhile.
        """
        grain = _GRAIN if parts else 0
        while grain and -(-state.size // grain) > _GRAINS and grain < BLOCK:
            grain *= 2
        digest, grains, first = hashlib.sha256(), bytearray(), b""
        with open_file(path) as file:
            while block := file.read(BLOCK):
                first = first or block
                digest.update(block)
                view = memoryview(block)
                for at in range(0, len(block) if grain else 0, grain or 1):
                    grains += hashlib.sha256(view[at : at + grain]).digest()
        if FileState.of(path) != state:
            raise FileChangedError("the file changed while it was hashed.")
        hashed = cls(path, state, digest.hexdigest(), grain, bytes(grains))
        if not parts and len(first) == state.size:
            hashed.held = first
        return hashed

    def let_go(self) -> None:
        """Drop the bytes `held`: the file is sent, or will not be by this flow."""
        self.held = None

    @property
    def sha256(self) -> str | None:
        """The hash: expected, or of every byte sent; `None` until one is known."""
        return self.expected or self._read

    def finish(self) -> str:
        """The hash; the bytes no stream read are read for it (blocking).

        Those are the parts a resumed upload sent in earlier runs.

        Raises:
            FileChangedError: the file is not in its state, or changed meanwhile.
        """
        if self.sha256 is not None:
            return self.sha256
        with self._lock:
            self._catch_up(self.state.size)
            sha256 = self._digest.hexdigest()
        if FileState.of(self.path) != self.state:  # since it was checked
            raise FileChangedError("the file changed while it was hashed.")
        self._read = sha256
        return sha256

    def _catch_up(self, offset: int) -> None:
        """Hash the bytes from `_end` to `offset`, read from the file (lock held)."""
        if self._end >= offset:
            return
        with open_file(self.path) as file:
            file.seek(self._end)
            while self._end < offset:
                block = file.read(min(BLOCK, offset - self._end))
                if not block:
                    raise FileChangedError("the file shrank while it was hashed.")
                self._digest.update(block)
                self._end += len(block)

    def feed(self, offset: int, block: bytes) -> None:
        """Before `block` (read at `offset`) goes: checked, or hashed in order.

        Raises:
            FileChangedError: a whole grain of it is not as hashed; it is not sent.
        """
        if self.grains:
            self._check_grains(offset, block)
            return
        end = offset + len(block)
        with self._lock:
            if end <= self._end:  # hashed already (a retry)
                return
            self._catch_up(offset)
            self._digest.update(memoryview(block)[self._end - offset :])
            self._end = end

    def _check_grains(self, offset: int, block: bytes) -> None:
        view, grain = memoryview(block), self.grain
        start = -(-offset // grain) * grain  # the first grain that begins in it
        for at in range(start, offset + len(block), grain):
            end = min(at + grain, self.state.size)
            if end > offset + len(block):
                return  # cut by the block's end: the next block holds it whole
            index = at // grain
            want = self.grains[32 * index : 32 * index + 32]
            if hashlib.sha256(view[at - offset : end - offset]).digest() != want:
                raise FileChangedError(_CHANGED)

    def check(self) -> None:
        """At the end of a region, before its last bytes go: is the file as checked?

        Raises:
            FileChangedError: it is not; the region is not sent.
        """
        if FileState.of(self.path) != self.state:
            raise FileChangedError(_CHANGED)
        if self.grains:
            return
        with self._lock:
            if self._end != self.state.size:
                return
            sha256 = self._digest.hexdigest()
        if self.expected not in (None, sha256):
            raise FileChangedError(_CHANGED)
        if self.expected is None:
            self._read = sha256


_GRAIN = 64 << 10  # the smallest grain `Hashed` keeps a digest of
_GRAINS = 10_000  # grains of a file at most (BLOCK-sized ones past that)
_CHANGED = (
    "the file changed while it was uploaded (it is not the file that was "
    "hashed); nothing was recorded for it. Add it again once it is complete."
)


def _block(
    file: BinaryIO, at: int, size: int, hashed: Hashed | None, last: bool
) -> bytes:
    """The `size` bytes of `file` at `at`, fed to `hashed` (blocking).

    `last`: the region's last block, after which the file is checked.
    """
    block = file.read(size)
    if len(block) < size:
        raise FileChangedError("the file shrank while it was uploaded.")
    if hashed is not None:
        hashed.feed(at, block)
        if last:
            hashed.check()
    return block


def _read(
    file: BinaryIO,
    at: int,
    size: int,
    hashed: Hashed | None,
    last: bool,
    *,
    close: bool,
) -> bytes:
    """`_block`; with `close`, the file is closed after the last one, or a failure."""
    try:
        block = _block(file, at, size, hashed, last)
    except BaseException:
        if close:
            file.close()
        raise
    if close and last:
        file.close()
    return block


def _first(
    path: Path,
    at: int,
    size: int,
    hashed: Hashed | None,
    last: bool,
    *,
    close: bool,
) -> tuple[BinaryIO, bytes]:
    """`path` opened at `at`, and its first block read (see `_read`)."""
    file = open_file(path)
    try:
        file.seek(at)
    except BaseException:
        file.close()
        raise
    return file, _read(file, at, size, hashed, last, close=close)


class FileStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Request content: `prefix`, `length` bytes of a file from `offset`, `suffix`.

    Reads `BLOCK` bytes at a time, so memory does not grow with the file. Each
    iteration starts over (a retry re-sends it whole), and `sent(n)` is told
    how many of the file's bytes have gone so far. With `hashed`, the bytes
    read are checked against the file's hash (`Hashed`). The async iteration
    reads in a worker thread, opening the file with its first block and
    closing it with its last: a file of one block (most small videos) costs
    one hop to a thread, and none when `hashed` holds its bytes.
    """

    def __init__(  # noqa: PLR0917 - the region and its framing
        self,
        path: Path | None,
        offset: int,
        length: int,
        sent: Callable[[int], None],
        prefix: bytes = b"",
        suffix: bytes = b"",
        hashed: Hashed | None = None,
    ) -> None:
        self.path, self.offset, self.length = path, offset, length
        self.sent, self.prefix, self.suffix = sent, prefix, suffix
        self.hashed = hashed

    @property
    def size(self) -> int:
        """The content length in bytes."""
        return len(self.prefix) + self.length + len(self.suffix)

    def _next(self, done: int) -> tuple[int, int, bool]:
        """Where the block after `done` bytes is, its size, whether it is the last."""
        size = min(BLOCK, self.length - done)
        return self.offset + done, size, done + size == self.length

    def _held(self) -> bytes | None:
        """The region's bytes, when `hashed` holds them (see `Hashed.of`)."""
        held = self.hashed.held if self.hashed is not None else None
        whole = held is not None and self.offset == 0 and len(held) == self.length
        return held if whole else None

    def __iter__(self) -> Iterator[bytes]:
        """The content, read from disk."""
        if self.path is None:
            yield self.prefix + self.suffix
            return
        if (held := self._held()) is not None:
            yield self.prefix
            self.sent(len(held))
            yield held
            yield self.suffix
            return
        at, size, last = self._next(0)
        file, block = _first(self.path, at, size, self.hashed, last, close=False)
        with closing(file):
            yield self.prefix
            done = 0
            while True:
                done += len(block)
                self.sent(done)
                yield block
                if last:
                    break
                at, size, last = self._next(done)
                block = _read(file, at, size, self.hashed, last, close=False)
            yield self.suffix

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The content, read from disk in a worker thread."""
        if self.path is None or self._held() is not None:
            for chunk in self:  # nothing to read: no hop to a thread
                yield chunk
            return
        at, size, last = self._next(0)
        file, block = await asyncio.to_thread(
            _first, self.path, at, size, self.hashed, last, close=True
        )
        try:
            yield self.prefix
            done = 0
            while True:
                done += len(block)
                self.sent(done)
                yield block
                if last:
                    break
                at, size, last = self._next(done)
                block = await asyncio.to_thread(
                    _read, file, at, size, self.hashed, last, close=True
                )
            yield self.suffix
        finally:
            if not file.closed:  # stopped early: a read closes it at the end
                await asyncio.to_thread(file.close)


def form_stream(
    fields: Mapping[str, str],
    source: Source | None,
    sent: Callable[[int], None],
    hashed: Hashed | None = None,
) -> tuple[FileStream, str]:
    """A multipart/form-data body: `fields`, then the file of `source` if any.

    With `hashed`, the file's bytes are checked as they are sent (`Hashed`).

    Returns:
        The stream and its content type (with the boundary).
    """
    boundary = secrets.token_hex(16)
    disposition = '--{}\r\nContent-Disposition: form-data; name="{}"\r\n\r\n'
    head = b"".join(
        disposition.format(boundary, name).encode() + value.encode() + b"\r\n"
        for name, value in fields.items()
    )
    kind = f"multipart/form-data; boundary={boundary}"
    if source is None or source.path is None:
        return FileStream(None, 0, 0, sent, head, f"--{boundary}--\r\n".encode()), kind
    quoted = source.filename.replace("\\", "\\\\").replace('"', "%22")
    quoted = quoted.replace("\r", "%0D").replace("\n", "%0A")
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{quoted}"\r\nContent-Type: {source.mime}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return FileStream(source.path, 0, source.size, sent, head, tail, hashed), kind
