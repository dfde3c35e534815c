"""Adding sources to a knowledge store: one flow, written once, run sync or async.

The flow for a source is a generator that yields what it needs done and is
sent the result: `Api` (a JSON call), `Send` (a file upload), `Local`
(blocking local work such as hashing), `Wait` (a pause), `Fork` (flows run
at once: the parts of one file) and `Watch` (wait until an asset or item is
final, or another source's claim on the same content ended). The flows do no
I/O themselves; the file work of the journal, the log and the locks runs as
`Local` calls (but letting the locks go when a flow is closed). The steps,
after every source was checked (`_sources.py`):

1. The hash (SHA-256), by this rule. A file whose quick check (device,
   inode, size, modification time in ns, as rsync's) is remembered in
   `state_dir` (`_state.StateLog`) is not opened at all, not even by the
   checks: its hash is the one remembered (`verify=True` forgets the rule and
   reads every file). Any other file is read once to be hashed:
   - first, in a pass of its own, when the hash can spare its upload: an item
     of the store, as listed, has a file of its size (or gives no size), or
     another file of an `add` of this store object has its size (a copy);
   - else while it is sent: a file of a size the store does not hold is not
     in the store, so nothing is read twice. The parts of a multipart upload
     go several at once, and feed the hash in the file's order as their turn
     comes (`_sources.Hashed`). It is sent under a lock on its quick check,
     so that a process sending the very same file waits, then finds its hash
     remembered. A copy that another process sent at the same moment is
     found after the upload, by hash: its spare asset is deleted.
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
   import), else a multipart upload (asking for HLS and thumbnails, as a direct
   upload gets them): its parts PUT to their URLs (no API key goes there),
   `part_concurrency` at once, each worker sending one part at a time on a
   pooled connection, and reported 10 at a time as the SDK's uploader does,
   while later parts go. An interrupted upload resumes from the parts the API
   confirmed. The `upload_id` and `asset_id` of a checked plan are kept in a
   small journal file (`state_dir`, checked before any upload, found by the
   file's quick check) until the item exists: the API cannot find them again.
4. `Watch` the asset until `ready`; add it as an item with the user's metadata
   and the hash (the locks go then); with `wait`, `Watch` the item until
   `ready` or `failed`. Each source's result is final as soon as its item is.

How the drivers (`KnowledgeStore._run` and `_arun`, which differ only in the
lines that await) run the flows of one `add`:

- Uploads run `concurrency` at a time: a source holds an upload slot from its
  start (hashing, uploading) until its first `Watch`. Past it (creating the
  item, waiting again) it holds a slot of a second kind, also `concurrency`
  wide, so that processing never holds an upload slot and never waits for one.
  (A source that waited on another's claim, and takes it over because that
  `add` was cancelled, uploads in a slot of the second kind.) The sync driver
  runs each source on a thread of its own, the async one as a task.
- Waiting is done by one `Watcher` per `add`, itself a flow of calls run next
  to the sources: each round it asks `GET /assets?asset_ids=…` for every asset
  still processing (50 ids a request), and lists the store's items whose
  status is `queued`, `pending` or `processing`, newest first, a page at a time
  until it has seen every item waited for. An item no longer in that list is
  looked for among the `ready` and `failed` ones, newest first (a page or two),
  and only one found in neither is read by its id. So the requests of a round
  do not grow with the number of sources (but for one per 50 of them).
- It polls as the API's guide does, assets every 5 s and items every 10 s
  (docs/protocol.md, "Polling"), or every `poll_interval` seconds when given.
  429s and 5xx are retried by the request layer, honouring `Retry-After`.

A failure of one source (a failed upload or processing step) ends that source
only: its result says why.
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
from collections import Counter, deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

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
    "ASSET_POLL",
    "FAILURES",
    "HASH_KEY",
    "ITEM_POLL",
    "AddResult",
    "Api",
    "Claims",
    "Context",
    "Flow",
    "Fork",
    "IngestEvent",
    "Journal",
    "Local",
    "Send",
    "Wait",
    "Watch",
    "Watcher",
    "add_flow",
    "existing_flow",
    "joined",
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
ASSET_POLL = 5.0
"""Seconds between checks of assets processing (the API's guide, docs/protocol.md)."""
ITEM_POLL = 10.0
"""Seconds between checks of items indexing (the API's guide, docs/protocol.md)."""
_PAGE = 50  # the API's largest page, asked for and held to
_TICK = 0.05  # seconds at most between the watcher's looks at what it waits for
_JOIN = 0.05  # seconds before a lock another process holds is tried again, at first
T = TypeVar("T")
_LOCK_POLL_MAX = 1.0  # seconds between tries of a lock another process holds, at most
_MAX_ROWS = 100_000  # the most rows of one list read (ours: docs/protocol.md)
_MAX_PAGES = _MAX_ROWS // _PAGE
_MAX_PARTS = 10_000  # an upload's parts at most, as its storage (S3) takes
_FIELD = 256  # the longest id or status kept of a listed row
_METADATA_DIGEST = "metadata_sha256"  # what a listed row keeps of its metadata
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPORT = 10  # parts a report holds, as the SDK's uploader sends them
_FINAL = ("ready", "failed")  # an asset's or an item's last status
_INDEXING = ("queued", "pending", "processing")  # an item's, in this order
_NEWEST = {"sort_by": "created_at", "sort_option": "desc"}


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


@dataclass(frozen=True)
class Fork:
    """Run `flows` at once, each as a flow of its own; the value is their results.

    The parts of one file: each flow sends parts one at a time. When one
    raises, the first error is raised in the flow that forked, once all ended.
    """

    flows: tuple[Generator[Call, Any, Any], ...]


@dataclass(frozen=True)
class Watch:
    """Wait, without an upload slot, until something is final; handed to the `Watcher`.

    `kind` is `asset` or `item` (`key`: its id; the value is the object once
    its status is `ready` or `failed`, or as last seen when `wait_timeout`
    passed first), or `claim` (`key`: the content; the value is `None` once
    `claim` ended).
    """

    kind: str
    key: str
    source: Source
    status: str = ""
    claim: Claim | None = None


Call = Api | Send | Local | Wait | Fork | Watch
Flow = Generator[Call, Any, "AddResult"]


def joined(outcomes: list[Any]) -> list[Any]:
    """The results of a `Fork`'s flows; the first that is an exception is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


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


def _as_is(text: str) -> str:
    return text


class Progress:
    """Running totals of one `add`, handed to its subscribers as `IngestEvent`s.

    `callback` (the caller's `on_progress`) is the first subscriber; others
    (the bars) `subscribe`. Each is called from worker threads on the sync
    path, in the order they subscribed.

    An item's status never goes backwards in the events: an `indexing` event
    whose status comes before one already reported for its source (`queued`,
    `pending`, `processing`, then `ready` or `failed`) is not sent.

    Attributes:
        bytes_total: Bytes to upload, over every source.
        items_total: Sources in the `add`.
    """

    def __init__(
        self,
        sources: list[Source],
        callback: Callable[[IngestEvent], None] | None,
        clean: Callable[[str], str] | None = None,
    ) -> None:
        self._clean = clean or _as_is
        self._sent: dict[str, int] = {}
        self._rank: dict[str, int] = {}
        self.bytes_total = sum(s.size for s in sources)
        self.items_total, self._done = len(sources), 0
        self._subscribers = [callback] if callback is not None else []
        self._lock = threading.Lock()  # the sync path runs sources on threads

    def subscribe(self, fn: Callable[[IngestEvent], None]) -> Callable[[], None]:
        """Call `fn` with every event from now on; returns what unsubscribes it."""
        with self._lock:
            self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [f for f in self._subscribers if f is not fn]

        return unsubscribe

    def emit(self, kind: str, source: Source, **fields: Any) -> None:
        """Report a step of `source` (an item status going backwards is not).

        A status or error (a server's text) is made fit to show first.
        """
        fields = {k: v if v is None else self._clean(str(v)) for k, v in fields.items()}
        with self._lock:
            rank = _rank(fields.get("status")) if kind != "uploaded" else None
            if rank is not None:
                if kind == "indexing" and rank < self._rank.get(source.name, 0):
                    return
                self._rank[source.name] = max(rank, self._rank.get(source.name, 0))
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
            subscribers = self._subscribers
        for fn in subscribers:
            fn(event)

    def sent(self, source: Source) -> Callable[[int], None]:
        """A `FileStream` callback: `n` bytes of its region of `source` have gone.

        Regions (parts) sent at once each have their own; called once with
        `n`, it counts `n` bytes sent before (the parts of an earlier run).
        """
        last = 0

        def report(n: int) -> None:
            nonlocal last
            with self._lock:
                self._sent[source.name] = self._sent.get(source.name, 0) + n - last
                last = n
            self.emit("uploading", source)

        return report


def _rank(status: object) -> int | None:
    """Where an item status comes in an item's life; `None`: not one we know."""
    if status in _FINAL:
        return len(_INDEXING)
    return _INDEXING.index(status) if status in _INDEXING else None


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


class Settings(Protocol):
    """The settings of `add` a flow reads: a `KnowledgeStore`'s fields.

    Declared there once, with their defaults, bounds and docs; read here as
    they are, never copied.
    """

    @property
    def multipart_threshold(self) -> int:
        """Files larger than this go by multipart upload."""

    @property
    def part_concurrency(self) -> int:
        """Parts of one file sent at once."""

    @property
    def poll_interval(self) -> float | None:
        """Seconds between status checks; `None`: the API guide's."""

    @property
    def wait_timeout(self) -> float:
        """Seconds a source waits for its asset, and its item."""


@dataclass
class Context:
    """What every source's flow shares.

    `settings` are the caller's (`KnowledgeStore`'s fields). `clean` makes a
    server's text fit to keep in a result and show: the driver's
    (`KnowledgeStore` redacts its key and caps the text).
    """

    store_path: str
    progress: Progress
    journal: Journal
    records: StateLog
    settings: Settings
    claims: Claims = field(default_factory=Claims)
    since: int = 0  # the claims' clock when `existing` was listed
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)
    verify: bool = False  # hash every file again (no quick check)
    wait: bool = True
    clean: Callable[[str], str] = field(default=_as_is, repr=False)
    replace: bool = False  # an item with other metadata: add it anew (`_held`)
    _sizes: tuple[frozenset[int], bool] | None = field(default=None, repr=False)

    @property
    def asset_poll(self) -> float:
        """Seconds between checks of the assets processing."""
        return self.settings.poll_interval or ASSET_POLL

    @property
    def item_poll(self) -> float:
        """Seconds between checks of the items indexing."""
        return self.settings.poll_interval or ITEM_POLL

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
    path: str,
    keep: Callable[[dict[str, Any]], T | None],
    key: str = "data",
    *,
    params: dict[str, Any] | None = None,
    until: Callable[[list[T]], bool] | None = None,
    most: int | None = None,
) -> Generator[Call, Any, list[T]]:
    """What `keep` makes of every row of a paged list (`key` of each page), 50 a page.

    `params` filter the list. Stops at `page_info.total_page` (0 for an empty
    list), at an empty page, once `until(kept)` holds or `most` pages were
    read, or with a typed error: a page of more rows than asked for
    (truncating it would hide items, and `add` would upload what the store
    holds), or a list of over `_MAX_ROWS` (a server that never stops). So a
    list holds at most `_MAX_ROWS` rows, whatever the server sends; and of
    each, only what `keep` returns (`None`: nothing), as its page arrives: a
    page may be 8 MB, so whole rows could be 16 GB.
    """
    rows: list[T] = []
    page = 1
    while page <= _MAX_PAGES:
        query = {**(params or {}), "page": page, "page_limit": _PAGE}
        answer = obj((yield Api("GET", path, None, query)), f"a page of {path}")
        found = answer.get(key)
        if not isinstance(found, list):
            raise _unexpected(f"a page of {path} has no {key!r} list")
        if len(found) > _PAGE:
            raise _unexpected(
                f"a page of {path} has {len(found):,} rows, over the {_PAGE} asked for"
            )
        kept = (keep(r) for r in found if isinstance(r, dict))
        rows += [k for k in kept if k is not None]
        info = answer.get("page_info")
        last = _count(info, "total_page", f"{path} page_info", 0) if info else 1
        if page >= last or not found or page == most or (until and until(rows)):
            return rows
        page += 1
    raise _unexpected(f"{path} has over {_MAX_ROWS:,} rows")


@dataclass
class _Waiter:
    """A flow waiting in a `Watch`: its future, its deadline, what was seen last."""

    call: Watch
    future: Future[Any]
    deadline: float
    seen: dict[str, Any]


class Watcher:
    """The one poller of an `add`: it resolves every source's `Watch`.

    `watch` is called by the drivers (from any thread) and returns a future;
    `flow` is a flow of calls, run next to the sources, that polls for what
    is waited for and resolves the futures: with the asset or item once its
    status is final (or as last seen once `wait_timeout` passed), with `None`
    once a claim ended, or with the error of a request that failed. See the
    module's docstring for the requests of a round. `close` ends the flow,
    and cancels what still waits.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._waiting: dict[str, dict[str, list[_Waiter]]] = {
            "asset": {},
            "item": {},
            "claim": {},
        }
        self._due = {"asset": 0.0, "item": 0.0}
        self._closed = False
        self._lock = threading.Lock()

    def _every(self, kind: str) -> float:
        return self.ctx.asset_poll if kind == "asset" else self.ctx.item_poll

    def watch(self, call: Watch) -> Future[Any]:
        """Wait for `call`: a future of its value (cancelled once closed)."""
        future: Future[Any] = Future()
        now = time.monotonic()
        with self._lock:
            if self._closed:
                future.cancel()
                return future
            waiting = self._waiting[call.kind]
            if call.kind in self._due and not waiting:
                self._due[call.kind] = now + self._every(call.kind)
            seen = {"status": call.status}
            waiter = _Waiter(call, future, now + self.ctx.settings.wait_timeout, seen)
            waiting.setdefault(call.key, []).append(waiter)
        return future

    def close(self) -> None:
        """End the flow; what still waits is cancelled."""
        with self._lock:
            self._closed = True
            waiters = [
                w for by in self._waiting.values() for ws in by.values() for w in ws
            ]
            for by in self._waiting.values():
                by.clear()
        for waiter in waiters:
            waiter.future.cancel()

    def _take(self, kind: str, keys: list[str]) -> list[_Waiter]:
        with self._lock:
            waiting = self._waiting[kind]
            return [w for key in keys for w in waiting.pop(key, [])]

    def _resolve(
        self, kind: str, keys: list[str], value: Any = None, error: Any = None
    ) -> None:
        """Hand `value` (`None`: what each saw last) or `error` to those on `keys`."""
        for waiter in self._take(kind, keys):
            with contextlib.suppress(InvalidStateError):  # cancelled: its add is over
                if error is not None:
                    waiter.future.set_exception(error)
                else:
                    waiter.future.set_result(waiter.seen if value is None else value)

    def _seen(self, kind: str, key: str, row: dict[str, Any]) -> None:
        """`row` is the asset or item `key` now: resolved if final, else noted."""
        status = row.get("status")
        with self._lock:
            waiters = list(self._waiting[kind].get(key, ()))
        for waiter in waiters:
            if kind == "item" and status != waiter.seen.get("status"):
                self.ctx.progress.emit("indexing", waiter.call.source, status=status)
            waiter.seen = row
        if status in _FINAL:
            self._resolve(kind, [key], row)

    def _due_keys(self, kind: str, now: float) -> list[str]:
        """What to poll of `kind` now: every key waited for, when a round is due."""
        with self._lock:
            waiting = self._waiting[kind]
            if not waiting or now < self._due[kind]:
                return []
            self._due[kind] = now + self._every(kind)
            return list(waiting)

    def _settle(self, now: float) -> float:
        """Resolve ended claims and waits past their deadline; seconds to wait now."""
        with self._lock:
            ended = [k for k, ws in self._waiting["claim"].items() if _ended(ws)]
            late = {
                kind: [k for k, ws in by.items() if all(w.deadline <= now for w in ws)]
                for kind, by in self._waiting.items()
            }
            rounds = [self._due[k] - now for k in self._due if self._waiting[k]]
        self._resolve("claim", ended)
        for kind, keys in late.items():
            self._resolve(kind, keys)  # each with what it saw last
        return max(0.0, min([_TICK, *rounds]))

    def flow(self) -> Generator[Call, Any, None]:
        """Poll until closed; a bug fails every source still waiting."""
        try:
            while not self._closed:
                now = time.monotonic()
                pause = self._settle(now)
                if assets := self._due_keys("asset", now):
                    yield from self._assets(assets)
                if items := self._due_keys("item", now):
                    yield from self._items(items)
                if not (assets or items):
                    yield Wait(pause)
        except Exception as exc:
            for kind, by in self._waiting.items():
                self._resolve(kind, list(by), error=exc)
            raise

    def _assets(self, ids: list[str]) -> Generator[Call, Any, None]:
        """One round of the assets: `GET /assets?asset_ids=…`, 50 ids a request."""
        for start in range(0, len(ids), _PAGE):
            chunk = ids[start : start + _PAGE]
            rows = yield from self._listed(
                "asset", "assets", chunk, {"asset_ids": chunk}
            )
            if rows is not None:
                yield from self._rest("asset", "assets", chunk, rows)

    def _items(self, ids: list[str]) -> Generator[Call, Any, None]:
        """One round of the items: those indexing, then the finished ones missing."""
        path = f"{self.ctx.store_path}/items"
        indexing: dict[str, Any] = {"status": list(_INDEXING), **_NEWEST}
        rows = yield from self._listed("item", path, ids, indexing)
        if rows is None:
            return
        gone = [i for i in ids if i not in rows]
        for i in ids:
            if i in rows:
                self._seen("item", i, rows[i])
        if gone:
            finished: dict[str, Any] = {"status": list(_FINAL), **_NEWEST}
            most = len(gone) // _PAGE + 2
            done = yield from self._listed("item", path, gone, finished, most)
            if done is not None:
                yield from self._rest("item", path, gone, done)

    def _listed(
        self,
        kind: str,
        path: str,
        ids: list[str],
        filters: dict[str, Any],
        most: int | None = None,
    ) -> Generator[Call, Any, dict[str, dict[str, Any]] | None]:
        """Rows of `ids` in `path` filtered by `filters`, by id.

        Read until every one of `ids` is seen, or `most` pages; `None` when
        the list failed (its error is theirs).
        """
        wanted = set(ids)

        def keep(row: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
            key = row.get("_id")  # only the rows waited for: a row may be 160 kB
            return (key, row) if isinstance(key, str) and key in wanted else None

        def enough(kept: list[tuple[str, dict[str, Any]]]) -> bool:
            return wanted <= {key for key, _ in kept}

        try:
            rows = yield from pages(path, keep, params=filters, until=enough, most=most)
        except FAILURES as err:
            self._resolve(kind, ids, error=err)
            return None
        return dict(rows)

    def _rest(
        self, kind: str, path: str, ids: list[str], rows: dict[str, dict[str, Any]]
    ) -> Generator[Call, Any, None]:
        """Note what a list showed of `ids`; read each one it did not show by its id."""
        for key in ids:
            if key in rows:
                self._seen(kind, key, rows[key])
            else:
                yield from self._one(kind, f"{path}/{key}", key)

    def _one(self, kind: str, path: str, key: str) -> Generator[Call, Any, None]:
        """Read the asset or item `key` by its id (`path`)."""
        try:
            row = obj((yield Api("GET", path)), f"{kind} {key}")
        except FAILURES as err:
            self._resolve(kind, [key], error=err)
        else:
            self._seen(kind, key, row)


def _ended(waiters: list[_Waiter]) -> bool:
    claim = waiters[0].call.claim
    return claim is None or bool(claim.ended)


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
            file, journaled = yield from _hash_step(source, source.path, ctx, locks)
            key, sent = file.sha256, None
            if key is None:  # new by its size: hashed while it is sent
                sent = yield from _asset(source, None, file, ctx, journaled)
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
) -> Generator[Call, Any, tuple[Hashed, dict[str, Any] | None]]:
    """The file, hashed as the module's rule says: remembered, first, or as it is sent.

    A file left to be hashed as it is sent is locked by its state first: a
    process sending the very same file holds that lock until its item is
    made, and has remembered the hash by then. Its journal is read in the
    same `Local` call (it is the second value; `None`: not read).
    """
    state = source.state
    if state is None:  # a `Source` made by hand
        state = yield Local(FileState.of, (path,))
    if source.sha256 is not None:
        return Hashed(path, state, source.sha256), None
    if ctx.claims.shared(source.size) or ctx.listed_size(source.size):
        parts = source.size > ctx.settings.multipart_threshold
        hashed: Hashed = yield Local(
            _hash_first, (path, state, source.mime, ctx.records, parts)
        )
        return hashed, None
    key = f"file-{state.key}"
    then = partial(_recall_now, ctx.records, state, ctx.journal, key, ctx.verify)
    known, journaled = cast(
        "tuple[Known | None, dict[str, Any]]", (yield from locks.take(key, then))
    )
    if known is not None:  # another process sent it meanwhile
        return Hashed(path, state, known.sha256), None
    return Hashed(path, state), journaled


def _hash_first(
    path: Path, state: FileState, mime: str, records: StateLog, parts: bool
) -> Hashed:
    """Hash the file in a pass of its own, and remember its hash (blocking).

    `parts`: it goes by multipart upload (see `Hashed.of`).
    """
    file = Hashed.of(path, state, parts=parts)
    records.remember(state, file.finish(), mime)
    return file


def _sent(file: Hashed, mime: str, records: StateLog) -> str:
    """Remember the hash of a file just sent (blocking).

    The file is read for it when the bytes sent did not all go through it.
    """
    sha256 = file.finish()
    records.remember(file.state, sha256, mime)
    return sha256


def _recall_now(
    records: StateLog, state: FileState, journal: Journal, key: str, verify: bool
) -> tuple[Known | None, dict[str, Any]]:
    """The file's hash, if another process remembered it; its journal (blocking).

    One hop to a thread for both, on the async path: each costs one, and a
    small file's hops were most of `aadd`'s CPU above `add`'s.
    """
    known = None
    if not verify:
        records.read()
        known = records.recall(state)
    return known, journal.load(key) if known is None else {}


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

    def let_go(self) -> None:
        """Its file's bytes are not sent by this flow from here on: not held."""
        if self.file is not None:
            self.file.let_go()


def _claimed(adding: _Adding, ctx: Context) -> Flow:
    """Add content `key` unless another source of this store object is adding it."""
    source, key = adding.source, adding.key
    claim, first = ctx.claims.take(key, ctx.since)
    while not first:  # another source is adding the same content: its result
        if not claim.ended:
            adding.let_go()
            yield Watch("claim", key, source, claim=claim)
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
    journaled = None
    if item is None:
        # The log read since the lock was taken; the journal too, in the same
        # hop, when the file is still to be sent.
        unsent = _journal_key(key, file) if adding.sent is None else None
        then = partial(_log_and_journal, ctx.records, ctx.journal, unsent)
        journaled = yield from locks.take(key, then)
        item = yield from _made_here(key, ctx)
    if item is not None:
        adding.let_go()
        yield from _spare(adding, ctx)
        if locks.holding:
            yield Local(locks.release, ())
        return (yield from _held(item, adding, ctx))
    sent = adding.sent
    if sent is None:
        sent = yield from _asset(source, key, file, ctx, journaled)
    adding.let_go()
    asset, uploaded = sent
    asset_id = text(asset, "_id", "the asset")
    if asset.get("status") not in _FINAL:
        watched = yield Watch("asset", asset_id, source, str(asset.get("status")))
        asset = obj(watched, "the asset")
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
    ctx.progress.emit("indexing", source, status=status)
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


def _log_and_journal(
    records: StateLog, journal: Journal, key: str | None
) -> dict[str, Any] | None:
    """Read what other processes logged; and the journal of `key` if any (blocking)."""
    records.read()
    return None if key is None else journal.load(key)


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
    source: Source,
    key: str | None,
    file: Hashed | None,
    ctx: Context,
    journaled: dict[str, Any] | None = None,
) -> Generator[Call, Any, Sent]:
    """The asset of the source: one a run journaled (complete), or a new upload.

    `key`: the content's hash, when known before it is sent. `journaled`:
    what the journal holds for it, when a call before read it.
    """
    journal = ctx.journal
    journal_key = _journal_key(key, file)
    state: dict[str, Any] = (
        journaled
        if journaled is not None
        else (yield Local(journal.load, (journal_key,)))
    )
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
    """With `wait`, watch the item until it is `ready` or `failed`."""
    if not ctx.wait or result.item_id is None or result.status in _FINAL:
        return result
    watched = yield Watch("item", result.item_id, source, result.status)
    status = str(obj(watched, "the item").get("status", ""))
    if status == "failed":
        return replace(
            result,
            status=status,
            error="the API could not index this video (item failed)",
        )
    if status != "ready":
        waited = ctx.settings.wait_timeout
        why = f"still {status} after {waited:g} s; add() again later to check"
        return replace(result, status=status, error=why)
    return replace(result, status=status)


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
    if file is not None and source.size > ctx.settings.multipart_threshold:
        return (yield from _multipart(source, journal_key, key, file, state, ctx))
    fields = {"method": "direct", "filename": source.filename}
    if source.url is not None:
        fields = {"method": "url", "filename": source.filename, "url": source.url}
    if key is not None:
        fields["user_metadata"] = json.dumps({HASH_KEY: key})
    stream, kind = form_stream(fields, source, ctx.progress.sent(source), file)
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
    part's last bytes are read (`Hashed.check`); when the file was hashed
    before it was sent, each grain of a part is checked against the digests
    taken then, in whatever order the parts go (`Hashed.feed`). Else the
    parts feed the hash in the file's order as their turn comes, which is
    checked against `key` (when it was known before) or becomes the file's
    hash; a resumed run does not send the parts of earlier runs again, and
    reads them for the hash after (`Hashed.finish`). A file found changed
    fails, and its journal is dropped (`_asset`): no later run resumes parts
    that may hold other bytes.

    Parts go 50 at a time (the URLs one request gives), `part_concurrency`
    of them at once (`_Parts`).
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
            "enable_hls": True,  # a direct upload gets both by default; this not
            "enable_thumbnail": True,
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
    ctx.progress.sent(source)(
        sum(min(size, source.size - (i - 1) * size) for i in done)
    )
    todo = [i for i in range(1, total + 1) if i not in done]
    parts = _Parts(source, file, upload_id, size, ctx)
    for start in range(0, len(todo), _PAGE):
        window = todo[start : start + _PAGE]
        missing = [i for i in window if i not in urls]
        while missing:
            path = f"assets/multipart-uploads/{upload_id}/presigned-urls"
            more = yield Api("POST", path, {"start": missing[0], "count": _PAGE})
            urls |= _urls(more, total)
            if missing[0] not in urls:
                raise _unexpected(f"no upload URL was given for part {missing[0]}")
            missing = [i for i in missing if i not in urls]
        parts.todo.extend((i, urls[i]) for i in window)
        width = min(ctx.settings.part_concurrency, len(window))
        yield Fork(tuple(parts.sender() for _ in range(width)))
    if rest := parts.batch(None):
        yield Api("POST", parts.path, {"completed_chunks": rest})
    yield Local(ctx.journal.save, (journal_key, {**state, "complete": True}))
    # Read once: an asset ready at once (a server that is quick with it, as
    # the emulator) is not watched for a round.
    asset = obj((yield Api("GET", f"assets/{state['asset_id']}")), "the asset")
    ctx.progress.emit("uploaded", source, status=asset.get("status"))
    return asset


class _Parts:
    """The parts of one upload left to send, shared by the flows sending them.

    Each sender takes the next part, PUTs it, and adds it to the parts sent
    but not reported; the sender that makes them `_REPORT` reports them,
    while the others go on sending. After a failure no sender takes another
    part. The sync driver runs the senders on threads: what they share
    changes under a lock, never held across a yield.
    """

    def __init__(
        self, source: Source, file: Hashed, upload_id: str, size: int, ctx: Context
    ) -> None:
        self.source, self.file, self.size, self.ctx = source, file, size, ctx
        self.path = f"assets/multipart-uploads/{upload_id}"
        self.todo: deque[tuple[int, str]] = deque()
        self.unreported: list[dict[str, Any]] = []
        self.failed = False
        self._lock = threading.Lock()

    def batch(self, size: int | None) -> list[dict[str, Any]]:
        """`size` parts sent and not reported, if there are so many (`None`: all).

        They are taken: the caller reports them.
        """
        with self._lock:
            ready = len(self.unreported)
            n = ready if size is None else size if ready >= size else 0
            batch, self.unreported = self.unreported[:n], self.unreported[n:]
            return batch

    def sender(self) -> Generator[Call, Any, None]:
        """A flow sending parts one at a time until none is left."""
        source = self.source
        try:
            while not self.failed:
                try:
                    index, url = self.todo.popleft()
                except IndexError:
                    return
                length = min(self.size, source.size - (index - 1) * self.size)
                stream = FileStream(
                    self.file.path,
                    (index - 1) * self.size,
                    length,
                    self.ctx.progress.sent(source),
                    hashed=self.file,
                )
                etag = yield Send(url, stream, "application/octet-stream", api=False)
                chunk = {
                    "chunk_index": index,
                    "proof": etag,
                    "proof_type": "etag",
                    "chunk_size": length,
                }
                with self._lock:
                    self.unreported.append(chunk)
                batch = self.batch(_REPORT)
                if batch:
                    yield Api("POST", self.path, {"completed_chunks": batch})
        except BaseException:
            self.failed = True
            raise


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
