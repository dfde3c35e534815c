"""Adding sources to a knowledge store: one flow, written once, run sync or async.

The flow for a source is a generator that yields what it needs done (`Api`: a
JSON call; `Send`: a file upload; `Local`: blocking local work such as hashing;
`Wait`: a pause) and is sent the result. `KnowledgeStore._drive` and
`_adrive` do those things, and differ only in the lines that await. The flows
do no I/O themselves; the journal's file work runs as `Local` calls. The
steps, after every source was checked (`_sources.py`):

1. Hash the file (SHA-256). If the store already has an item with that hash in
   its metadata (`source_sha256`), nothing is uploaded: that item is the result.
   The upload checks the bytes it sends against that hash (`_sources.Hashed`).
2. Upload: `POST /assets` for a file up to `multipart_threshold` bytes (or a URL
   import), else a multipart upload, each part PUT to its URL (no API key goes
   there) and reported at once, so an interrupted upload resumes from the parts
   the API confirmed. The `upload_id` and `asset_id` of a checked plan are kept
   in a small journal file (`state_dir`, checked before any upload) until the
   item exists: the API cannot find them again.
3. Poll the asset until `ready`; add it as an item with the user's metadata and
   the hash; with `wait`, poll the item until `ready` or `failed`.

Polls back off from `poll_interval` to `poll_max`; 429s and 5xx are retried by
the request layer, honouring `Retry-After`. A failure of one source (a failed
upload or processing step) ends that source only: its result says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from langchain_jockey._sources import (
    FileChangedError,
    FileStream,
    Hashed,
    Source,
    form_stream,
    url_problem,
)
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
_MAX_ROWS = 100_000  # the most rows of one list read (ours: docs/protocol.md)
_MAX_PAGES = _MAX_ROWS // _PAGE
_MAX_PARTS = 10_000  # an upload's parts at most, as its storage (S3) takes
_FIELD = 256  # the longest id or status kept of a listed row
_SHA256 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


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
    """

    source: str
    asset_id: str | None
    item_id: str | None
    status: str
    error: str | None = None
    uploaded: bool = False

    @property
    def ok(self) -> bool:
        """Whether the source made it: not `failed`."""
        return self.status != "failed"


@dataclass(frozen=True)
class IngestEvent:
    """Progress of `add`: one event per step of one source, with running totals.

    Attributes:
        kind: `hashing`, `uploading` (bytes went out), `uploaded`, `skipped`
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

    def __reduce__(self) -> tuple[type[Claims], tuple[()]]:
        """A copy or a pickle starts with no claims: they belong to running adds."""
        return (Claims, ())

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
    claims: Claims = field(default_factory=Claims)
    since: int = 0  # the claims' clock when `existing` was listed
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)
    multipart_threshold: int = 100_000_000
    wait: bool = True
    poll_interval: float = 1.0
    poll_max: float = 15.0
    wait_timeout: float = 3600.0
    clean: Callable[[str], str] = field(default=_as_is, repr=False)


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
    return digest, {k: listed(item, k) for k in ("_id", "asset_id", "status")}


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
    progress = ctx.progress
    progress.emit("hashing", source)
    file: Hashed | None = None
    if source.path is not None:
        file = yield Local(Hashed.of, (source.path, source.size))
        key = file.sha256
    else:
        key = hashlib.sha256(f"url:{source.url}".encode()).hexdigest()
    claim, first = ctx.claims.take(key, ctx.since)
    while not first:  # another source is adding the same content: its result
        while not claim.ended:
            yield Wait(_JOIN)
        if claim.result is not None:
            progress.emit("skipped", source, status=claim.result.status)
            return replace(claim.result, source=source.name, uploaded=False)
        claim, first = ctx.claims.take(key, ctx.since)  # released: take it again
    result = None
    try:
        result = yield from _add_new(source, key, file, ctx)
    except FAILURES:  # handed up to add_flow; a source waiting on it fails too
        why = f"{source.name} with the same content failed"
        result = AddResult(source.name, None, None, "failed", why)
        raise
    finally:
        # No result: the flow was closed (its add cancelled, interrupted) or
        # a bug raised; the claim is released, never left under way.
        ctx.claims.end(key, claim, result)
    return result


def _add_new(source: Source, key: str, file: Hashed | None, ctx: Context) -> Flow:
    """Add content no other source of this store object is adding (`file`: hashed)."""
    progress, journal = ctx.progress, ctx.journal
    item = ctx.existing.get(key)
    if item is not None:
        progress.emit("skipped", source, status=item.get("status"))
        item_id = text(item, "_id", "an item of the store")
        result = AddResult(
            source.name, item.get("asset_id"), item_id, str(item.get("status"))
        )
        return (yield from _finish(result, source, ctx))
    state: dict[str, Any] = yield Local(journal.load, (key,))
    asset = None
    if safe_id(state.get("asset_id")) and state.get("complete"):
        try:
            asset = yield Api("GET", f"assets/{state['asset_id']}")
        except JockeyNotFoundError:
            state = {}
    uploaded = asset is None
    if asset is None:
        try:
            asset = yield from _upload(source, key, file, state, ctx)
        except FileChangedError:
            # Parts it sent may hold other bytes than those hashed: never resumed.
            yield Local(journal.drop, (key,))
            raise
    asset_id = text(asset, "_id", "the asset")
    asset = yield from _poll(
        f"assets/{asset_id}", asset, source, ctx, ("ready", "failed")
    )
    if asset.get("status") != "ready":
        error = asset.get("error")
        why = error.get("message") if isinstance(error, dict) else error
        why = str(why or f"asset {asset.get('status')}")
        yield Local(journal.drop, (key,))
        return AddResult(source.name, asset_id, None, "failed", why, uploaded)
    body = {
        "asset_id": asset_id,
        "asset_type": "video",
        "metadata": {**source.metadata, HASH_KEY: key},
    }
    made = yield Api("POST", f"{ctx.store_path}/items", body, creates=True)
    item = obj(made, "the new item")
    yield Local(journal.drop, (key,))
    item_id = text(item, "_id", "the new item")
    status = str(item.get("status", "queued"))
    result = AddResult(source.name, asset_id, item_id, status, None, uploaded)
    return (yield from _finish(result, source, ctx))


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


def _upload(
    source: Source,
    key: str,
    file: Hashed | None,
    state: dict[str, Any],
    ctx: Context,
) -> Generator[Call, Any, dict[str, Any]]:
    """Send the source; the asset as the API answered."""
    if file is not None and source.size > ctx.multipart_threshold:
        return (yield from _multipart(source, file, state, ctx))
    fields = {"method": "direct", "filename": source.filename}
    if source.url is not None:
        fields = {"method": "url", "filename": source.filename, "url": source.url}
    fields["user_metadata"] = json.dumps({HASH_KEY: key})
    stream, kind = form_stream(fields, source, ctx.progress.sent(source, 0), file)
    asset = obj((yield Send("assets", stream, kind, api=True)), "the new asset")
    saved = {"asset_id": text(asset, "_id", "the new asset"), "complete": True}
    yield Local(ctx.journal.save, (key, saved))
    ctx.progress.emit("uploaded", source, status=asset.get("status"))
    return asset


def _multipart(
    source: Source, file: Hashed, state: dict[str, Any], ctx: Context
) -> Generator[Call, Any, dict[str, Any]]:
    """A multipart upload, resumed from the journal when it holds one.

    The hash recorded is that of the parts sent, over every run: the journal
    is found by the file's hash (`key`), read before this run sent anything,
    so each run sends parts of the same content. Each part goes only while
    the file is in the state it was hashed in, checked as the part's last
    bytes are read (`Hashed.check`), so a part the API confirmed was sent
    from that content. When one run sends every part, their bytes' hash is
    checked against `key` too (before the last bytes go); a resumed run does
    not read the parts of earlier runs again, and relies on the state. A
    file found changed fails, and its journal is dropped (`_add_new`): no
    later run resumes parts that may hold other bytes.
    """
    key = file.sha256
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
        body = {
            "filename": source.filename,
            "type": "video",
            "total_size": source.size,
            "user_metadata": {HASH_KEY: key},
        }
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
        yield Local(ctx.journal.save, (key, state))
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
    yield Local(ctx.journal.save, (key, {**state, "complete": True}))
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
