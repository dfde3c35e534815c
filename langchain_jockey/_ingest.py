"""Adding sources to a knowledge store: one flow, written once, run sync or async.

The flow for a source is a generator that yields what it needs done (`Api`: a
JSON call; `Send`: a file upload; `Local`: blocking local work such as hashing;
`Wait`: a pause) and is sent the result. `KnowledgeStore._drive` and
`_adrive` do those things, and differ only in the lines that await. The flows
do no I/O themselves; the file work of the journal, the log and the locks runs
as `Local` calls (but letting the locks go when a flow is closed). The
steps, after every source was checked (`_sources.py`):

1. The hash (SHA-256), by this rule. A file whose quick check (device,
   inode, size, modification time in ns, as rsync's) is remembered in
   `state_dir` (`_state.StateLog`) is not opened at all, not even by the
   checks: its hash is the one remembered (`verify=True` forgets the rule and
   reads every file). Any other file is read once to be hashed:
   - first, in a pass of its own, when the hash can spare its upload: an item
     of the store, as listed, has a file of its size (or gives no size), or
     another file of an `add` of this store object has its size (a copy);
   - else while it is sent: a file of a size the store does not hold is not
     in the store, so nothing is read twice. It is sent under a lock on its
     quick check, so that a process sending the very same file waits, then
     finds its hash remembered. A copy that another process sent at the same
     moment is found after the upload, by hash: its spare asset is deleted.
   Why by size: always hashing first reads every new file twice; only ever
   hashing while sending would send again every file of a library whose
   hashes were forgotten (another machine, a copied or touched folder), though
   the store holds them. Sizes tell those apart without reading a byte.
   Measured (this machine, the emulator, sparse files): re-adding an unchanged
   library of 1.08 GB (12 files) takes 0.015 s against 2.1 s to hash it
   (0.007x); a new 300 MB file saves the pass of its own, 0.5-1.6 s.
2. The content is claimed (`Claims`: in this process), then locked
   (`_state.FileLock`, one per store and hash: processes of this machine sharing
   `state_dir`; others are not seen). If the store has an item with that hash
   in its metadata (`source_sha256`), as listed when the `add` began or made
   since by another process of this machine (the log says which), nothing
   more is uploaded: that item is the result. The upload checks the bytes it
   sends against the hash, or gives it (`_sources.Hashed`).
3. Upload: `POST /assets` for a file up to `multipart_threshold` bytes (or a URL
   import), else a multipart upload, each part PUT to its URL (no API key goes
   there) and reported at once, so an interrupted upload resumes from the parts
   the API confirmed. The `upload_id` and `asset_id` of a checked plan are kept
   in a small journal file (`state_dir`, checked before any upload, found by
   the file's quick check) until the item exists: the API cannot find them
   again.
4. Poll the asset until `ready`; add it as an item with the user's metadata and
   the hash (the locks go then); with `wait`, poll the item until `ready` or
   `failed`.

Polls back off from `poll_interval` to `poll_max`; 429s and 5xx are retried by
the request layer, honouring `Retry-After`. A failure of one source (a failed
upload or processing step) ends that source only: its result says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from langchain_jockey._sources import (
    FileChangedError,
    FileState,
    FileStream,
    Hashed,
    Known,
    Source,
    form_stream,
    url_problem,
)
from langchain_jockey._state import FileLock, StateLog
from langchain_jockey.errors import (
    JockeyError,
    JockeyInputError,
    JockeyNotFoundError,
    JockeyServerError,
)

__all__ = [
    "FAILURES",
    "HASH_KEY",
    "AddResult",
    "Api",
    "Claims",
    "Context",
    "Flow",
    "IngestEvent",
    "Journal",
    "Local",
    "Send",
    "Wait",
    "add_flow",
    "existing_flow",
    "listed",
    "obj",
    "pages",
    "safe_id",
    "text",
]

FAILURES = (JockeyError, OSError)
"""What fails one source (an API error; a file gone or unreadable, a full disk)
and is handed back to its flow by the drivers; anything else is a bug."""
HASH_KEY = "source_sha256"
"""The item metadata key holding the source's SHA-256 (a URL's, for imports)."""
_PAGE = 50  # the API's largest page, asked for and held to
_JOIN = 0.05  # seconds between looks at another source's claim
T = TypeVar("T")
_LOCK_POLL_MAX = 1.0  # seconds between tries of a lock another process holds, at most
_MAX_ROWS = 100_000  # the most rows of one list read (ours: docs/protocol.md)
_MAX_PAGES = _MAX_ROWS // _PAGE
_MAX_PARTS = 10_000  # an upload's parts at most, as its storage (S3) takes
_FIELD = 256  # the longest id or status kept of a listed row
_METADATA_DIGEST = "metadata_sha256"  # what a listed row keeps of its metadata
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Api:
    """A JSON call to the API: `method {base_url}/{path}`; its JSON (None if empty).

    `creates`: the call makes something (a store, an item, an upload), so it is
    not sent again once the server may have acted on it.
    """

    method: str
    path: str
    body: Any = None
    params: dict[str, Any] | None = None
    creates: bool = False


@dataclass(frozen=True)
class Send:
    """Upload `stream`: a form to `{base_url}/{url}` (`api`), or a part PUT to `url`.

    The result is the JSON answer (a form) or the part's ETag (a PUT). A form
    creates an asset: like `Api.creates`, it is not sent again once the server
    may have acted on it. A part PUT is (the same part, the same ETag).
    """

    url: str
    stream: FileStream
    content_type: str
    api: bool


@dataclass(frozen=True)
class Local:
    """Blocking local work (hashing, the journal): `fn(*args)`."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Wait:
    """A pause of `seconds`."""

    seconds: float


Call = Api | Send | Local | Wait
Flow = Generator[Call, Any, "AddResult"]


@dataclass(frozen=True)
class AddResult:
    """What became of one source.

    Attributes:
        source: The path or URL, as given (a directory's files by their path).
        asset_id: The uploaded asset, when there is one.
        item_id: The store item, when there is one.
        status: The item's status (`ready`, `failed`, or where it was when
            `wait=False`), or `failed` when the upload failed.
        error: Why it failed (`None` when it did not).
        uploaded: Whether bytes were uploaded (`False`: the store already had it).
        previous_metadata: When the store already held this content in an
            item with other metadata than was given: that item's metadata
            (without the hash). The store kept it, unless `replace=True`
            replaced the item (`replaced_item_id`).
        replaced_item_id: The item `replace=True` removed, once the new one
            (`item_id`) was ready.
    """

    source: str
    asset_id: str | None
    item_id: str | None
    status: str
    error: str | None = None
    uploaded: bool = False
    previous_metadata: dict[str, Any] | None = None
    replaced_item_id: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the source made it: not `failed`."""
        return self.status != "failed"


@dataclass(frozen=True)
class IngestEvent:
    """Progress of `add`: one event per step of one source, with running totals.

    Attributes:
        kind: `hashing` (its hash is looked for: remembered, read first, or
            read as it is sent), `uploading` (bytes went out), `uploaded`, `skipped`
            (already in the store), `indexing` (a status seen while polling),
            `done` (ready, or queued when not waiting) or `failed`.
        source: The source it is about.
        status: The asset's or item's status, when the event is about one.
        bytes_sent: Bytes uploaded so far, over every source.
        bytes_total: Bytes to upload, over every source.
        items_done: Sources finished (done, skipped or failed).
        items_total: Sources in this `add`.
        error: Why, for `failed`.
    """

    kind: str
    source: str
    status: str | None = None
    bytes_sent: int = 0
    bytes_total: int = 0
    items_done: int = 0
    items_total: int = 0
    error: str | None = None


class Progress:
    """Running totals of one `add`, handed to `callback` as `IngestEvent`s.

    Attributes:
        bytes_total: Bytes to upload, over every source.
        items_total: Sources in the `add`.
        callback: Called with every event (from worker threads on the sync path).
    """

    def __init__(
        self, sources: list[Source], callback: Callable[[IngestEvent], None] | None
    ) -> None:
        self._sent: dict[str, int] = {}
        self.bytes_total = sum(s.size for s in sources)
        self.items_total, self._done = len(sources), 0
        self.callback = callback
        self._lock = threading.Lock()  # the sync path runs sources on threads

    def emit(self, kind: str, source: Source, **fields: Any) -> None:
        """Report a step of `source`."""
        with self._lock:
            if kind == "skipped":
                self._sent[source.name] = source.size  # nothing left to send
            if kind in ("done", "failed"):
                self._done += 1
            event = IngestEvent(
                kind,
                source.name,
                bytes_sent=sum(self._sent.values()),
                bytes_total=self.bytes_total,
                items_done=self._done,
                items_total=self.items_total,
                **fields,
            )
        if self.callback is not None:
            self.callback(event)

    def sent(self, source: Source, base: int) -> Callable[[int], None]:
        """A `FileStream` callback: `base + n` bytes of `source` have gone."""

        def report(n: int) -> None:
            with self._lock:
                self._sent[source.name] = base + n
            self.emit("uploading", source)

        return report


class Journal:
    """Uploads under way, one small JSON file each, so a new run can continue them."""

    def __init__(self, directory: Path, scope: str) -> None:
        self.directory = directory
        self.scope = hashlib.sha256(scope.encode()).hexdigest()[:16]

    def _file(self, key: str) -> Path:
        return self.directory / f"{self.scope}-{key}.json"

    def check(self) -> None:
        """Make the directory and write in it, before any upload (blocking).

        Raises:
            JockeyInputError: it cannot be: uploads would be left that no run
                could find again (an asset, an upload session).
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as exc:
            msg = (
                f"state_dir {self.directory}: uploads under way cannot be recorded "
                f"there ({exc.strerror or type(exc).__name__}); pass a directory "
                "this process can write in as state_dir."
            )
            raise JockeyInputError(msg) from None

    def load(self, key: str) -> dict[str, Any]:
        """What was recorded for `key` (empty when nothing, or unreadable)."""
        try:
            value = json.loads(self._file(key).read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Record `state` for `key` (atomically: a kill never leaves half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # One temporary file per process and thread: two writers never share one.
        tmp = self._file(key).with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._file(key))

    def drop(self, key: str) -> None:
        """Forget `key`: its item exists now."""
        self._file(key).unlink(missing_ok=True)


@dataclass
class Claim:
    """A content key being added; once it is, `ended` (the `Claims` clock) and `result`.

    A claim that ended without a result was released: its `add` was cancelled.
    """

    result: AddResult | None = None
    ended: int = 0


class Claims:
    """The content keys being added by one `KnowledgeStore` (any of its `add`s).

    A source whose content another source is adding waits for that result
    instead of uploading the same bytes again (a copy of a file, the same file
    given twice, two threads adding the same folder). Each `add` lists the
    store's items once, after reading `clock`: a claim that ended after that
    is newer than the listing, so its result stands (the listing may predate
    the item); one that ended before is in the listing, or was removed since,
    so the listing decides.
    """

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}
        self._lock = threading.Lock()
        self._clock = 0
        self._sizes: Counter[int] = Counter()  # of the files of every add

    def __reduce__(self) -> tuple[type[Claims], tuple[()]]:
        """A copy or a pickle starts with no claims: they belong to running adds."""
        return (Claims, ())

    def enter(self, sources: list[Source]) -> None:
        """Count the sizes of an `add`'s files, before any of them is hashed."""
        with self._lock:
            self._sizes.update(s.size for s in sources if s.path is not None)

    def shared(self, size: int) -> bool:
        """Whether another file of an `add` of this store object has `size` bytes.

        Such files may be copies: they are hashed before they are sent, so the
        claims see them (sizes are never forgotten: a hash too many at worst).
        """
        with self._lock:
            return self._sizes[size] > 1

    def clock(self) -> int:
        """The time on the claims' clock: read it before listing the store."""
        with self._lock:
            return self._clock

    def take(self, key: str, since: int) -> tuple[Claim, bool]:
        """The claim on `key`, and whether the caller is to add it.

        A claim under way is waited for; one that ended after `since`
        (when the caller's `add` listed the store) is its result.
        """
        with self._lock:
            claim = self._claims.get(key)
            if claim is not None and (
                not claim.ended
                or (
                    claim.ended > since and claim.result is not None and claim.result.ok
                )
            ):
                return claim, False
            self._claims[key] = claim = Claim()
            return claim, True

    def end(self, key: str, claim: Claim, result: AddResult | None) -> None:
        """End `claim` with `result`; with `None`, release it for another to take."""
        with self._lock:
            self._clock += 1
            claim.result, claim.ended = result, self._clock
            if result is None and self._claims.get(key) is claim:
                del self._claims[key]


def _as_is(text: str) -> str:
    return text


@dataclass
class Context:
    """What every source's flow shares.

    `clean` makes a server's text fit to keep in a result and show: the
    driver's (`KnowledgeStore` redacts its key and caps the text).
    """

    store_path: str
    progress: Progress
    journal: Journal
    records: StateLog
    claims: Claims = field(default_factory=Claims)
    since: int = 0  # the claims' clock when `existing` was listed
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)
    verify: bool = False  # hash every file again (no quick check)
    multipart_threshold: int = 100_000_000
    wait: bool = True
    poll_interval: float = 1.0
    poll_max: float = 15.0
    wait_timeout: float = 3600.0
    clean: Callable[[str], str] = field(default=_as_is, repr=False)
    replace: bool = False  # an item with other metadata: add it anew (`_held`)
    _sizes: tuple[frozenset[int], bool] | None = field(default=None, repr=False)

    def listed_size(self, size: int) -> bool:
        """Whether an item of the store (as listed) may hold a file of `size` bytes.

        By the size its `system_metadata` gives; an item that gives none may be
        of any size.
        """
        if self._sizes is None:  # `existing` is set once, before any flow runs
            sizes: set[int] = set()
            unknown = False
            for item in self.existing.values():
                system = item.get("system_metadata")
                found = system.get("size") if isinstance(system, dict) else None
                if type(found) is int:
                    sizes.add(found)
                else:
                    unknown = True
            self._sizes = (frozenset(sizes), unknown)
        sizes_, unknown_ = self._sizes
        return unknown_ or size in sizes_


# -- reading the API's answers ---------------------------------------------------
# What the server sends is checked where it is read, as the chat path checks its
# events: a missing id, a count of the wrong type or an id that would change the
# request path is a typed error for that source, never a KeyError or a request
# to another endpoint.


def _unexpected(what: str) -> JockeyServerError:
    msg = f"The API's answer is not what it documents: {what}."
    return JockeyServerError(msg, retryable=False)


def safe_id(value: object) -> bool:
    """Whether `value` is an id that can go in a request path as it is."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 200
        and value.isprintable()
        and value.strip(".") != ""  # `.` and `..` are path segments httpx resolves
        and not any(c in value for c in "/?#%\\ ")
    )


def obj(value: object, what: str) -> dict[str, Any]:
    """`value` if it is a JSON object; else a typed error naming `what`."""
    if not isinstance(value, dict):
        raise _unexpected(f"{what} is not an object")
    return value


def text(value: object, key: str, what: str) -> str:
    """The id `key` of the object `value` (see `safe_id`)."""
    found = obj(value, what).get(key)
    if not safe_id(found):
        raise _unexpected(f"{what} has no usable {key!r}")
    return str(found)


def _count(value: object, key: str, what: str, low: int = 1, high: int = 10**12) -> int:
    """The whole number `key` of `value`, from `low` to `high`."""
    found = obj(value, what).get(key)
    if type(found) is not int or not low <= found <= high:
        raise _unexpected(f"{what} has no usable {key!r}")
    return found


def pages(
    path: str, keep: Callable[[dict[str, Any]], T | None], key: str = "data"
) -> Generator[Call, Any, list[T]]:
    """What `keep` makes of every row of a paged list (`key` of each page), 50 a page.

    Stops at `page_info.total_page` (0 for an empty list), at an empty page, or
    with a typed error: a page of more rows than asked for (truncating it would
    hide items, and `add` would upload what the store holds), or a list of over
    `_MAX_ROWS` (a server that never stops). So a list holds at most
    `_MAX_ROWS` rows, whatever the server sends; and of each, only what `keep`
    returns (`None`: nothing), as its page arrives: a page may be 8 MB, so
    whole rows could be 16 GB.
    """
    rows: list[T] = []
    page = 1
    while page <= _MAX_PAGES:
        params = {"page": page, "page_limit": _PAGE}
        listed = obj((yield Api("GET", path, None, params)), f"a page of {path}")
        found = listed.get(key)
        if not isinstance(found, list):
            raise _unexpected(f"a page of {path} has no {key!r} list")
        if len(found) > _PAGE:
            raise _unexpected(
                f"a page of {path} has {len(found):,} rows, over the {_PAGE} asked for"
            )
        kept = (keep(r) for r in found if isinstance(r, dict))
        rows += [k for k in kept if k is not None]
        info = listed.get("page_info")
        last = _count(info, "total_page", f"{path} page_info", 0) if info else 1
        if page >= last or not found:
            return rows
        page += 1
    raise _unexpected(f"{path} has over {_MAX_ROWS:,} rows")


def existing_flow(store_path: str) -> Generator[Call, Any, dict[str, dict[str, Any]]]:
    """Every item of the store that carries a hash: hash → its id, asset and status."""
    found: dict[str, dict[str, Any]] = {}
    for digest, item in (yield from pages(f"{store_path}/items", _hashed)):
        found.setdefault(digest, item)
    return found


def _hashed(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A listed item's hash, id, asset and status, nothing else of its row.

    `None` when it has no hash, or failed (it is added again).
    """
    metadata = item.get("metadata")
    digest = metadata.get(HASH_KEY) if isinstance(metadata, dict) else None
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return None
    if item.get("status") == "failed":
        return None
    kept: dict[str, Any] = {k: listed(item, k) for k in ("_id", "asset_id", "status")}
    # Its metadata by digest (`_held` compares it), its size (`listed_size`).
    kept[_METADATA_DIGEST] = _metadata_digest(
        metadata if isinstance(metadata, dict) else {}
    )
    system = item.get("system_metadata")
    size = system.get("size") if isinstance(system, dict) else None
    if type(size) is int:
        kept["system_metadata"] = {"size": size}
    return digest, kept


def _metadata_digest(metadata: dict[str, Any]) -> str:
    """The SHA-256 of an item's metadata but its hash, as sorted JSON."""
    user = {k: v for k, v in metadata.items() if k != HASH_KEY}
    text = json.dumps(user, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def listed(row: dict[str, Any], key: str) -> str | None:
    """`row[key]` if it is a string of at most `_FIELD` characters, else `None`.

    An id or a status: short enough to keep of 100,000 rows.
    """
    value = row.get(key)
    return value if isinstance(value, str) and len(value) <= _FIELD else None


def add_flow(source: Source, ctx: Context) -> Flow:
    """The whole path of one source; a failure is its result, not an exception."""
    result = AddResult(source.name, None, None, "failed", source.error)
    try:
        if source.error is None:
            result = yield from _add(source, ctx)
    except FAILURES as err:
        result = replace(result, error=f"{type(err).__name__}: {err}")
    # The status and the error may be a server's text: made fit to keep and show.
    error = None if result.error is None else ctx.clean(result.error)
    result = replace(result, status=ctx.clean(result.status), error=error)
    if result.status == "failed":
        ctx.progress.emit("failed", source, status="failed", error=result.error)
    else:
        ctx.progress.emit("done", source, status=result.status)
    return result


def _add(source: Source, ctx: Context) -> Flow:
    ctx.progress.emit("hashing", source)
    locks = _Locks(ctx.journal.directory / "locks", ctx.journal.scope)
    try:
        if source.path is None:
            url = hashlib.sha256(f"url:{source.url}".encode()).hexdigest()
            adding = _Adding(source, url, None, None, locks)
        else:
            file = yield from _hash_step(source, source.path, ctx, locks)
            key, sent = file.sha256, None
            if key is None:  # new by its size: hashed while it is sent
                sent = yield from _asset(source, None, file, ctx)
                key = yield Local(_sent, (file, source.mime, ctx.records))
            adding = _Adding(source, str(key), file, sent, locks)
        result = yield from _claimed(adding, ctx)
        if locks.holding:  # a failure before its item was made
            yield Local(locks.release, ())
        return result
    finally:
        locks.release()  # a flow closed or failed: no call can be yielded


def _hash_step(
    source: Source, path: Path, ctx: Context, locks: _Locks
) -> Generator[Call, Any, Hashed]:
    """The file, hashed as the module's rule says: remembered, first, or as it is sent.

    A file left to be hashed as it is sent is locked by its state first: a
    process sending the very same file holds that lock until its item is
    made, and has remembered the hash by then.
    """
    state = source.state
    if state is None:  # a `Source` made by hand
        state = yield Local(FileState.of, (path,))
    if source.sha256 is not None:
        return Hashed(path, state, source.sha256)
    if ctx.claims.shared(source.size) or ctx.listed_size(source.size):
        hashed: Hashed = yield Local(
            _hash_first, (path, state, source.mime, ctx.records)
        )
        return hashed
    recall = None if ctx.verify else partial(_recall_now, ctx.records, state)
    known = yield from locks.take(f"file-{state.key}", recall)
    if known is not None:  # another process sent it meanwhile
        return Hashed(path, state, known.sha256)
    return Hashed(path, state)


def _hash_first(path: Path, state: FileState, mime: str, records: StateLog) -> Hashed:
    """Hash the file in a pass of its own, and remember its hash (blocking)."""
    file = Hashed.of(path, state)
    records.remember(state, file.finish(), mime)
    return file


def _sent(file: Hashed, mime: str, records: StateLog) -> str:
    """Remember the hash of a file just sent (blocking).

    The file is read for it when the bytes sent did not all go through it.
    """
    sha256 = file.finish()
    records.remember(file.state, sha256, mime)
    return sha256


def _recall_now(records: StateLog, state: FileState) -> Known | None:
    records.read()
    return records.recall(state)


Sent = tuple[dict[str, Any], bool]
"""An asset made for a source, and whether this run uploaded its bytes."""


@dataclass
class _Adding:
    """A source on its way, once its content's key is known.

    Attributes:
        source: The source.
        key: Its content's key (a file's hash, a URL's).
        file: The file, hashed.
        sent: Its asset, when it was sent before its hash was known.
        locks: The locks it holds.
    """

    source: Source
    key: str
    file: Hashed | None
    sent: Sent | None
    locks: _Locks

    @property
    def uploaded(self) -> bool:
        """Whether this run uploaded its bytes (so far)."""
        return self.sent is not None and self.sent[1]


def _claimed(adding: _Adding, ctx: Context) -> Flow:
    """Add content `key` unless another source of this store object is adding it."""
    source, key = adding.source, adding.key
    claim, first = ctx.claims.take(key, ctx.since)
    while not first:  # another source is adding the same content: its result
        while not claim.ended:
            yield Wait(_JOIN)
        if claim.result is not None:
            yield from _spare(adding, ctx)
            ctx.progress.emit("skipped", source, status=claim.result.status)
            return replace(claim.result, source=source.name, uploaded=adding.uploaded)
        claim, first = ctx.claims.take(key, ctx.since)  # released: take it again
    result = None
    try:
        result = yield from _add_new(adding, ctx)
    except FAILURES:  # handed up to add_flow; a source waiting on it fails too
        why = f"{source.name} with the same content failed"
        result = AddResult(source.name, None, None, "failed", why)
        raise
    finally:
        # No result: the flow was closed (its add cancelled, interrupted) or
        # a bug raised; the claim is released, never left under way.
        ctx.claims.end(key, claim, result)
    return result


def _add_new(adding: _Adding, ctx: Context) -> Flow:
    """Add content no other source of this store object is adding.

    Under the content's lock, the store is looked at again (`_made_here`):
    another process may have made its item since the store was listed.
    """
    source, key, file, locks = adding.source, adding.key, adding.file, adding.locks
    item = ctx.existing.get(key)
    if item is None:
        yield from locks.take(key, ctx.records.read)
        item = yield from _made_here(key, ctx)
    if item is not None:
        yield from _spare(adding, ctx)
        if locks.holding:
            yield Local(locks.release, ())
        return (yield from _held(item, adding, ctx))
    sent = adding.sent
    if sent is None:
        sent = yield from _asset(source, key, file, ctx)
    asset, uploaded = sent
    asset_id = text(asset, "_id", "the asset")
    asset = yield from _poll(
        f"assets/{asset_id}", asset, source, ctx, ("ready", "failed")
    )
    journal_key = _journal_key(key, file)
    if asset.get("status") != "ready":
        error = asset.get("error")
        why = error.get("message") if isinstance(error, dict) else error
        why = str(why or f"asset {asset.get('status')}")
        yield Local(ctx.journal.drop, (journal_key,))
        return AddResult(source.name, asset_id, None, "failed", why, uploaded)
    made = yield _new_item(asset_id, source, key, ctx)
    item = obj(made, "the new item")
    item_id = text(item, "_id", "the new item")
    yield Local(_made, (ctx, journal_key, key, item_id, locks))
    status = str(item.get("status", "queued"))
    result = AddResult(source.name, asset_id, item_id, status, None, uploaded)
    return (yield from _finish(result, source, ctx))


def _new_item(asset_id: str, source: Source, key: str, ctx: Context) -> Api:
    """The call that adds `asset_id` as an item with the source's metadata and hash."""
    body = {
        "asset_id": asset_id,
        "asset_type": "video",
        "metadata": {**source.metadata, HASH_KEY: key},
    }
    return Api("POST", f"{ctx.store_path}/items", body, creates=True)


def _held(item: dict[str, Any], adding: _Adding, ctx: Context) -> Flow:
    """Content the store holds in `item`: that item, unless its metadata differs.

    Then its metadata is reported (`previous_metadata`), or, with
    `ctx.replace`, its asset is added again as a new item with the source's
    metadata (the API updates no item), and the old item is removed once the
    new one is `ready`: never both gone, and no bytes sent again.
    """
    source, key = adding.source, adding.key
    ctx.progress.emit("skipped", source, status=item.get("status"))
    item_id = text(item, "_id", "an item of the store")
    status = str(item.get("status"))
    result = AddResult(
        source.name, item.get("asset_id"), item_id, status, None, adding.uploaded
    )
    listed_digest = item.get(_METADATA_DIGEST)
    if listed_digest == _metadata_digest(dict(source.metadata)):
        return (yield from _finish(result, source, ctx))
    if listed_digest is not None:  # a listed item keeps only its metadata's digest
        path = f"{ctx.store_path}/items/{item_id}"
        item = obj((yield Api("GET", path)), "the item")
    held = item.get("metadata")
    held = (
        {k: v for k, v in held.items() if k != HASH_KEY}
        if isinstance(held, dict)
        else {}
    )
    if held == source.metadata:
        return (yield from _finish(result, source, ctx))
    result = replace(result, previous_metadata=held)
    if not ctx.replace:
        return (yield from _finish(result, source, ctx))
    asset_id = text(item, "asset_id", "an item of the store")
    made = obj((yield _new_item(asset_id, source, key, ctx)), "the new item")
    new = replace(
        result,
        item_id=text(made, "_id", "the new item"),
        status=str(made.get("status", "queued")),
    )
    new = yield from _finish(new, source, ctx)  # `replace` needs `wait`
    if new.status != "ready":
        return replace(new, error=f"{new.error}; the old item {item_id} is kept")
    with contextlib.suppress(JockeyNotFoundError):  # removed already
        yield Api("DELETE", f"{ctx.store_path}/items/{item_id}")
    return replace(new, replaced_item_id=item_id)


def _made(
    ctx: Context, journal_key: str, key: str, item_id: str, locks: _Locks
) -> None:
    """The item exists (blocking).

    Its upload is no longer under way; other processes are told; its locks go.
    """
    ctx.journal.drop(journal_key)
    ctx.records.made(ctx.journal.scope, key, item_id)
    locks.release()


def _made_here(key: str, ctx: Context) -> Generator[Call, Any, dict[str, Any] | None]:
    """An item of `key` a process of this machine made since the store was listed.

    The log was read since the content's lock was taken.
    """
    item_id = ctx.records.item(ctx.journal.scope, key)
    if item_id is None or not safe_id(item_id):
        return None
    try:
        item = obj((yield Api("GET", f"{ctx.store_path}/items/{item_id}")), "the item")
    except JockeyNotFoundError:  # removed since
        return None
    metadata = item.get("metadata")
    digest = metadata.get(HASH_KEY) if isinstance(metadata, dict) else None
    if digest != key or item.get("status") == "failed" or not safe_id(item.get("_id")):
        return None
    return item


def _journal_key(key: str | None, file: Hashed | None) -> str:
    """Where an upload under way is journaled.

    By the file's state (its hash may not be known before it is sent), or by
    the URL's key.
    """
    if file is not None:
        return f"file-{file.state.key}"
    if key is None:  # pragma: no cover - a URL always has its key
        raise _unexpected("no key")
    return key


def _asset(
    source: Source, key: str | None, file: Hashed | None, ctx: Context
) -> Generator[Call, Any, Sent]:
    """The asset of the source: one a run journaled (complete), or a new upload.

    `key`: the content's hash, when known before it is sent.
    """
    journal = ctx.journal
    journal_key = _journal_key(key, file)
    state: dict[str, Any] = yield Local(journal.load, (journal_key,))
    if safe_id(state.get("asset_id")) and state.get("complete"):
        try:
            return obj(
                (yield Api("GET", f"assets/{state['asset_id']}")), "the asset"
            ), False
        except JockeyNotFoundError:
            state = {}
    try:
        asset = yield from _upload(source, journal_key, key, file, state, ctx)
    except FileChangedError:
        # Parts it sent may hold other bytes than those hashed: never resumed;
        # a hash remembered for the file's state was wrong, or is stale.
        yield Local(_changed, (journal, journal_key, file, ctx.records))
        raise
    return asset, True


def _changed(
    journal: Journal, key: str, file: Hashed | None, records: StateLog
) -> None:
    journal.drop(key)
    if file is not None:
        records.forget(file.state)


def _spare(adding: _Adding, ctx: Context) -> Generator[Call, Any, None]:
    """An asset made before its content was found in the store: deleted (if it can be).

    It happens when a file sent before its hash was known turns out to be in
    the store: copies sent by two processes at once, or an item whose listed
    size is not its file's.
    """
    sent, file = adding.sent, adding.file
    if sent is None or file is None:
        return
    asset_id = sent[0].get("_id")
    if safe_id(asset_id):
        with suppress(*FAILURES):  # left: it costs storage, not a result
            yield Api("DELETE", f"assets/{asset_id}")
    yield Local(ctx.journal.drop, (_journal_key(file.sha256, file),))


def _acquired(lock: FileLock, then: Callable[[], T] | None) -> tuple[bool, T | None]:
    """Take `lock` if it is free, then run `then` (blocking)."""
    if not lock.acquire():
        return False, None
    return True, None if then is None else then()


class _Locks:
    """The `FileLock`s a source holds: its file's (while it is sent), its content's.

    Taken in that order, never the other: no two sources wait on each other.
    Locks are per store (`scope`): adds to other stores never wait.
    """

    def __init__(self, directory: Path, scope: str) -> None:
        self.directory, self.scope = directory, scope
        self.held: list[FileLock] = []

    def take(
        self, key: str, then: Callable[[], T] | None = None
    ) -> Generator[Call, Any, T | None]:
        """Wait until the lock on `key` is this source's (polling, backing off).

        Returns:
            What `then` returns, run in the same `Local` call once it is taken.
        """
        lock = FileLock(self.directory, f"{self.scope}-{key}")
        self.held.append(lock)
        delay = _JOIN
        while True:
            taken, value = yield Local(_acquired, (lock, then))
            if taken:
                return cast("T | None", value)
            yield Wait(delay)
            delay = min(_LOCK_POLL_MAX, delay * 1.5)

    @property
    def holding(self) -> bool:
        """Whether any of them is held."""
        return any(lock.held for lock in self.held)

    def release(self) -> None:
        """Let every lock go (an unlink and a close each)."""
        for lock in self.held:
            lock.release()


def _finish(result: AddResult, source: Source, ctx: Context) -> Flow:
    """With `wait`, poll the item until it is `ready` or `failed`."""
    if not ctx.wait or result.item_id is None or result.status in ("ready", "failed"):
        return result
    item = yield from _poll(
        f"{ctx.store_path}/items/{result.item_id}",
        {"status": result.status},
        source,
        ctx,
        ("ready", "failed"),
    )
    status = item.get("status", "")
    if status == "failed":
        return replace(
            result,
            status=status,
            error="the API could not index this video (item failed)",
        )
    if status != "ready":
        why = f"still {status} after {ctx.wait_timeout:g} s; add() again later to check"
        return replace(result, status=status, error=why)
    return replace(result, status=status)


def _poll(
    path: str,
    current: dict[str, Any],
    source: Source,
    ctx: Context,
    final: tuple[str, ...],
) -> Generator[Call, Any, dict[str, Any]]:
    """GET `path` until its status is in `final` or `wait_timeout` has passed."""
    delay, deadline = ctx.poll_interval, time.monotonic() + ctx.wait_timeout
    while current.get("status") not in final and time.monotonic() < deadline:
        yield Wait(min(delay, max(0.0, deadline - time.monotonic())))
        current = obj((yield Api("GET", path)), path)
        ctx.progress.emit("indexing", source, status=current.get("status"))
        delay = min(ctx.poll_max, delay * 1.5)
    return current


def _upload(  # noqa: PLR0917 - the source, where it is journaled, its content
    source: Source,
    journal_key: str,
    key: str | None,
    file: Hashed | None,
    state: dict[str, Any],
    ctx: Context,
) -> Generator[Call, Any, dict[str, Any]]:
    """Send the source; the asset as the API answered.

    The asset's `user_metadata` carries the hash when it is known before the
    bytes go (the item's metadata always does).
    """
    if file is not None and source.size > ctx.multipart_threshold:
        return (yield from _multipart(source, journal_key, key, file, state, ctx))
    fields = {"method": "direct", "filename": source.filename}
    if source.url is not None:
        fields = {"method": "url", "filename": source.filename, "url": source.url}
    if key is not None:
        fields["user_metadata"] = json.dumps({HASH_KEY: key})
    stream, kind = form_stream(fields, source, ctx.progress.sent(source, 0), file)
    asset = obj((yield Send("assets", stream, kind, api=True)), "the new asset")
    saved = {"asset_id": text(asset, "_id", "the new asset"), "complete": True}
    yield Local(ctx.journal.save, (journal_key, saved))
    ctx.progress.emit("uploaded", source, status=asset.get("status"))
    return asset


def _multipart(  # noqa: PLR0917 - the source, where it is journaled, its content
    source: Source,
    journal_key: str,
    key: str | None,
    file: Hashed,
    state: dict[str, Any],
    ctx: Context,
) -> Generator[Call, Any, dict[str, Any]]:
    """A multipart upload, resumed from the journal when it holds one.

    The hash recorded is that of the parts sent, over every run: the journal
    is found by the file's state (`journal_key`: device, inode, size and
    modification time), so each run sends parts of the file in one state.
    Each part goes only while the file is in that state, checked as the
    part's last bytes are read (`Hashed.check`). When one run sends every
    part, their bytes' hash is checked against `key` (when it was known
    before) or becomes the file's hash; a resumed run does not read the parts
    of earlier runs again while sending, and relies on the state (the file is
    then hashed after, `Hashed.finish`). A file found changed fails, and its
    journal is dropped (`_asset`): no later run resumes parts that may hold
    other bytes.
    """
    done: set[int] = set()
    urls: dict[int, str] = {}
    if safe_id(state.get("upload_id")):
        try:
            done = yield from _completed(state["upload_id"])
        except (JockeyNotFoundError, _Expired):
            state = {}
    else:
        state = {}
    if not state:
        body: dict[str, Any] = {
            "filename": source.filename,
            "type": "video",
            "total_size": source.size,
        }
        if key is not None:
            body["user_metadata"] = {HASH_KEY: key}
        made = obj(
            (yield Api("POST", "assets/multipart-uploads", body, creates=True)),
            "the new upload",
        )
        state = {
            k: made.get(k)
            for k in ("upload_id", "asset_id", "chunk_size", "total_chunks")
        }
        # Checked before it is journaled: a bad plan would fail every run for 24 h.
        urls = _urls(made, _plan(state, source.size)[2])
        yield Local(ctx.journal.save, (journal_key, state))
    upload_id, size, total = _plan(state, source.size)
    base = sum(min(size, source.size - (i - 1) * size) for i in done)
    ctx.progress.sent(source, base)(0)
    for index in range(1, total + 1):
        if index in done:
            continue
        if index not in urls:
            path = f"assets/multipart-uploads/{upload_id}/presigned-urls"
            more = yield Api("POST", path, {"start": index, "count": _PAGE})
            urls |= _urls(more, total)
        if index not in urls:
            raise _unexpected(f"no upload URL was given for part {index}")
        length = min(size, source.size - (index - 1) * size)
        stream = FileStream(
            file.path,
            (index - 1) * size,
            length,
            ctx.progress.sent(source, base),
            hashed=file,
        )
        etag = yield Send(urls[index], stream, "application/octet-stream", api=False)
        chunk = {
            "chunk_index": index,
            "proof": etag,
            "proof_type": "etag",
            "chunk_size": length,
        }
        path = f"assets/multipart-uploads/{upload_id}"
        yield Api("POST", path, {"completed_chunks": [chunk]})
        done.add(index)
        base += length
    yield Local(ctx.journal.save, (journal_key, {**state, "complete": True}))
    asset = obj((yield Api("GET", f"assets/{state['asset_id']}")), "the asset")
    ctx.progress.emit("uploaded", source, status=asset.get("status"))
    return asset


def _plan(state: dict[str, Any], size: int) -> tuple[str, int, int]:
    """Upload id, part size and part count of an upload; checked against the file."""
    what = "the multipart upload"
    upload_id = text(state, "upload_id", what)
    text(state, "asset_id", what)
    chunk = _count(state, "chunk_size", what)
    total = _count(state, "total_chunks", what)
    if total != -(-size // chunk):
        raise _unexpected(f"{what} cuts {size:,} bytes into {total} parts of {chunk:,}")
    if total > _MAX_PARTS:
        raise _unexpected(
            f"{what} has {total:,} parts; storage takes at most {_MAX_PARTS:,}"
        )
    return upload_id, chunk, total


def _urls(answer: object, total: int) -> dict[int, str]:
    """Part number → URL, from an answer's `upload_urls`, for parts 1 to `total`.

    Each entry must be one of those parts with a URL a request can go to
    (`url_problem`, as for sources and `base_url`): a URL httpx cannot parse,
    a resolver cannot encode or a socket cannot take (port 99999) is a typed
    error for the source, not an exception of the request layer.
    """
    found = obj(answer, "the upload URLs").get("upload_urls") or []
    if not isinstance(found, list) or len(found) > total:
        raise _unexpected(f"'upload_urls' is not a list of at most {total} parts")
    urls: dict[int, str] = {}
    for entry in found:
        index = entry.get("chunk_index") if isinstance(entry, dict) else None
        url = entry.get("url") if isinstance(entry, dict) else None
        if type(index) is not int or not 1 <= index <= total:
            raise _unexpected(f"an upload URL is for no part of 1 to {total}")
        if not isinstance(url, str) or url_problem(url) is not None:
            raise _unexpected(f"the upload URL of part {index} is not a usable URL")
        urls[index] = str(url)
    return urls


class _Expired(Exception):  # noqa: N818 - a signal inside this module, not an error
    """The journaled upload can no longer be continued: start a new one."""


def _completed(upload_id: str) -> Generator[Call, Any, set[int]]:
    """The parts the API has confirmed (`completed`) for an upload.

    Raises:
        _Expired: the session is `expired` or `failed` (it lasts 24 h).
    """
    path = f"assets/multipart-uploads/{upload_id}"
    head = obj((yield Api("GET", path, None, {"page": 1, "page_limit": 1})), path)
    if head.get("status") in ("expired", "failed"):
        raise _Expired
    done = yield from pages(path, _completed_index, "uploaded_chunks")
    return set(done)


def _completed_index(chunk: dict[str, Any]) -> int | None:
    """A listed part's number, if the API confirmed it."""
    index = chunk.get("index")
    completed = chunk.get("status") == "completed" and type(index) is int
    return index if completed else None
