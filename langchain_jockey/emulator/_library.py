"""Knowledge stores, their items, assets and uploads: the emulator's mutable state.

Every `EmulatorServer` has its own `Library`, which starts with the demo stores
of `catalogue.json` and takes new stores, assets and items through the
endpoints of docs/protocol.md ("Knowledge stores, assets and uploads"). Shapes
follow the official SDK's models (`twelvelabs` 1.3.6).

Status moves with simulated time, derived from when a thing was created, never
stored: an asset is `processing` for `asset_time`, an item `queued`, `pending`,
then `processing` until `index_time` has passed, then `ready`, or `failed` when
its file name matches a `fail_processing` pattern (fault injection).

The emulator does not look at pixels. What a new video is *about*, for answers
and search, comes from its upload: the title from the file name (or a `title`
in the metadata), and the `description` and `transcript` metadata fields. Each
sentence becomes a described moment; a transcript line may start with its time
(`01:05 Now the boats leave.`), else sentences share the video's length evenly.

What it keeps is bounded, since users leave it running: at most 10,000 stores,
assets and upload sessions each (past that the oldest goes; the demo stores
never do), 10,000 items a store and 100,000 in all (past that a new item gets
400). Metadata follows the SDK's documented limits: a store's ≤10 pairs with
strings ≤2,048 characters, an item's ≤50 pairs with strings ≤8,192; the emulator
also holds a list of strings to 8,192 characters in all, an asset's
`user_metadata` (undocumented) to the item rules, and a store's description to
2,048 characters. A store's `ingestion_config` (its enrichment: a description or a
JSON schema) is checked as documented (a bad shape 400, a schema the platform cannot
use 422), kept as created and returned with the store; nothing is extracted from it.
The demo stores cannot be deleted: `DELETE` gets 403
`forbidden` (the API's answer for a store the key may not delete is not
documented).
"""

from __future__ import annotations

import fnmatch
import hmac
import re
import urllib.parse
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_jockey._media import duration, duration_from_head
from langchain_jockey.emulator._assets import (
    DIRECT_LIMIT,
    MULTIPART_LIMIT,
    TAIL_BYTES,
    Asset,
    Upload,
    in_seconds,
    not_found,
    page_of,
    paging,
)
from langchain_jockey.emulator._clips import Source
from langchain_jockey.emulator._persist import DataDir, monotonic, wall
from langchain_jockey.emulator._requests import ApiError, _bad, loads
from langchain_jockey.emulator._responses import new_id, rfc3339
from langchain_jockey.emulator._search import item_object, search, store_object
from langchain_jockey.emulator._store import STORES, KnowledgeStore, Video, build_video
from langchain_jockey.emulator._uploads import FormBody, PartBody

if TYPE_CHECKING:
    from collections.abc import Container

    from langchain_jockey.emulator._config import EmulatorConfig

__all__ = ["Item", "Library", "StoreRecord"]

_DEFAULT_DURATION = 60.0  # seconds, for a video whose container does not say
_STATUSES = ("queued", "pending", "processing", "ready", "failed")
_LOWER_FIRST = frozenset(
    "a an the this that these those there here it its students some two three "  # noqa: SIM905 - a word list reads best as words
    "we you they he she his her our their now then".split()
)
_TIMED = re.compile(r"^\s*\[?(\d{1,3}):([0-5]\d)\]?\s+(.+)$")
_NOT_RECORDED = frozenset({"base", "items"})  # a store's fields kept apart, or not


@dataclass
class Item:
    """A store item: an asset being indexed, then a video Jockey can answer about."""

    item_id: str
    asset: Asset
    metadata: dict[str, Any]
    created: float
    fails: bool
    created_at: str = field(default_factory=rfc3339)
    _video: Video | None = None

    def status(self, now: float, index_time: float) -> str:
        """`queued`, `pending`, `processing`, then `ready` or `failed`."""
        elapsed = now - self.created
        if elapsed >= index_time:
            return "failed" if self.fails else "ready"
        return _STATUSES[min(2, int(3 * elapsed / index_time))]  # index_time > 0

    @property
    def video(self) -> Video:
        """The video as answers and search see it (built once)."""
        if self._video is None:
            self._video = _ingested(self)
        return self._video

    def record(self) -> dict[str, Any]:
        """The item, as JSON values (its asset's record inside), to persist."""
        return {
            "item_id": self.item_id,
            "asset": self.asset.record(),
            "metadata": self.metadata,
            "created": wall(self.created),
            "fails": self.fails,
            "created_at": self.created_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], assets: dict[str, Asset]) -> Item:
        """The item a `record` describes, on its asset if `assets` still holds it."""
        asset = Asset.from_record(record["asset"])
        return cls(
            record["item_id"],
            assets.get(asset.asset_id, asset),
            record["metadata"],
            monotonic(record["created"]),
            record["fails"],
            record["created_at"],
        )

    def object(self, now: float, index_time: float) -> dict[str, Any]:
        """The `KnowledgeStoreItem`."""
        duration = self.asset.duration or _DEFAULT_DURATION
        return {
            "_id": self.item_id,
            "asset_type": "video",
            "asset_id": self.asset.asset_id,
            "status": self.status(now, index_time),
            "system_metadata": {
                "asset_type": "video",
                "filename": self.asset.filename,
                "duration": duration,
                "fps": 25.0,
                "width": 1280,
                "height": 720,
                "codec_name": "h264",
                "size": self.asset.size,
            },
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class StoreRecord:
    """A knowledge store: its settings, built-in videos (demo stores) and items.

    With a data directory, every field but `base` and `items` persists as it is
    (`record`), so a field added here is kept across restarts if its value is
    JSON; items persist apart, one row each.
    """

    store_id: str
    name: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    ingestion_config: dict[str, Any] | None = None  # as created: it never changes
    base: KnowledgeStore | None = None
    items: dict[str, Item] = field(default_factory=dict)
    created_at: str = field(default_factory=rfc3339)

    def object(self) -> dict[str, Any]:
        """The `KnowledgeStore` object."""
        if self.base is not None:
            return {**store_object(self.base), "item_count": self.count}
        found = {
            "_id": self.store_id,
            "name": self.name,
            "description": self.description,
            "item_count": self.count,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "metadata": self.metadata,
        }
        if self.ingestion_config is not None:
            found["ingestion_config"] = self.ingestion_config
        return found

    def record(self) -> dict[str, Any]:
        """The store's fields but `base` and `items`, to persist."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _NOT_RECORDED
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StoreRecord:
        """The store a `record` describes (its items are added apart)."""
        known = {f.name for f in fields(cls)} - _NOT_RECORDED
        return cls(**{k: v for k, v in record.items() if k in known})

    def rows(self, now: float, index_time: float) -> dict[str, dict[str, Any]]:
        """Every item's object by id: built-in videos first, then added items."""
        videos = self.base.videos if self.base else ()
        rows = {v.item_id: item_object(v) for v in videos}
        rows |= {i.item_id: i.object(now, index_time) for i in self.items.values()}
        return rows

    @property
    def count(self) -> int:
        """Items of every status, built-in videos included."""
        return len(self.items) + (len(self.base.videos) if self.base else 0)


@dataclass(frozen=True)
class _Req:
    """One request to a JSON endpoint, as the routes read it."""

    verb: str
    params: dict[str, list[str]]
    raw: bytes
    now: float
    origin: str


@dataclass
class Library:
    """The stores, assets and uploads one emulator serves.

    In memory, and with a data directory (`attach`) also on disk: every change
    is written there as it is made, and `attach` reads back what an earlier run
    left.
    """

    config: EmulatorConfig
    stores: dict[str, StoreRecord] = field(init=False)
    assets: dict[str, Asset] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    disk: DataDir | None = None

    def __post_init__(self) -> None:
        self.stores = {
            sid: StoreRecord(sid, store.name, base=store)
            for sid, store in STORES.items()
        }

    # -- the data directory -------------------------------------------------------

    def attach(self, disk: DataDir) -> None:
        """Keep everything in `disk` from now on, after reading what it holds."""
        for key, _, record in disk.rows("store"):
            self.stores[key] = StoreRecord.from_record(record)
        for key, _, record in disk.rows("asset"):
            asset = self.assets[key] = Asset.from_record(record)
            if self._stored(asset):
                disk.used += asset.size
        for key, _, record in disk.rows("upload"):
            owner = self.assets.get(record["asset_id"])
            if owner is None:  # never: an upload goes with its asset
                continue
            upload = self.uploads[key] = Upload.from_record(record, owner)
            for index, part, reported in disk.parts(key):
                upload.received[index] = part
                if reported:
                    upload.reported.add(index)
        for key, store_id, record in disk.rows("item"):
            store = self.stores.get(store_id)
            if store is not None:
                store.items[key] = Item.from_record(record, self.assets)
        self.disk = disk

    def asset_file(self, asset_id: str) -> Path | None:
        """The file of an uploaded asset, kept in the data directory.

        `None` without a data directory, for a URL import, or for an asset the
        emulator does not hold. The path is stable (`files/<asset_id>`) and the
        file is deleted with its asset; it is whole once the asset is `ready`.
        """
        asset = self.assets.get(asset_id)
        if self.disk is None or asset is None or not self._stored(asset):
            return None
        return self.disk.file(asset_id)

    def media_source(self, item_id: str) -> Source | None:
        """What the media of a cited item are made from (`_clips.py`).

        A demo video's stand-in; an added item's file, while the data directory
        keeps it; `None` for anything else (no file, an unknown item).
        """
        for record in self.stores.values():
            video = record.base.video(item_id) if record.base else None
            if video is not None:
                return Source(item_id, video.duration)
            item = record.items.get(item_id)
            if item is not None:
                asset_id = item.asset.asset_id
                path = self.asset_file(asset_id)
                if self.disk is None or path is None or not path.is_file():
                    return None
                folder = self.disk.media(asset_id)
                return Source(item_id, item.video.duration, path, folder)
        return None

    def _stored(self, asset: Asset) -> bool:
        """Whether the data directory keeps (or will keep) the asset's file."""
        return asset.method in ("direct", "multipart")

    def _put_store(self, record: StoreRecord) -> None:
        if self.disk is not None and record.base is None:
            self.disk.put("store", record.store_id, record.record())

    def _put_item(self, store: StoreRecord, item: Item) -> None:
        if self.disk is not None:
            self.disk.put("item", item.item_id, item.record(), store.store_id)

    def _put_asset(self, asset: Asset) -> None:
        if self.disk is not None:
            self.disk.put("asset", asset.asset_id, asset.record())

    def _put_upload(self, upload: Upload) -> None:
        if self.disk is not None:
            self.disk.put("upload", upload.upload_id, upload.record())

    def _drop_store(self, store_id: str) -> None:
        """Forget a store and its items."""
        self.stores.pop(store_id, None)
        if self.disk is not None:
            self.disk.drop("store", store_id)
            self.disk.drop_owned("item", store_id)

    def _drop_asset(self, asset_id: str) -> None:
        """Forget an asset, its upload sessions and its file."""
        asset = self.assets.pop(asset_id, None)
        gone = [k for k, u in self.uploads.items() if u.asset.asset_id == asset_id]
        for key in gone:
            self._drop_upload(key)
        if self.disk is not None and asset is not None:
            self.disk.drop("asset", asset_id)
            if self._stored(asset):
                self.disk.remove(asset_id, asset.size)

    def _drop_upload(self, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)
        if self.disk is not None:
            self.disk.drop("upload", upload_id)

    # -- what answers and search read ------------------------------------------

    def knowledge_store(self, store_id: str, now: float) -> KnowledgeStore | None:
        """The store as Jockey reasons over it: built-in videos and `ready` items."""
        record = self.stores.get(store_id)
        if record is None:
            return None
        ready = tuple(
            item.video
            for item in record.items.values()
            if item.status(now, self.config.index_time) == "ready"
        )
        if record.base is not None:
            return replace(record.base, videos=record.base.videos + ready)
        return KnowledgeStore(store_id, record.name, ready, {})

    # -- routes -------------------------------------------------------------------

    def route(
        self, verb: str, path: str, *, query: str, raw: bytes, now: float, origin: str
    ) -> tuple[int, Any]:
        """Answer a JSON endpoint under `/knowledge-stores` or `/assets`.

        Returns:
            The status and the JSON body (`None`: no body).
        """
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        req = _Req(verb, urllib.parse.parse_qs(query), raw, now, origin)
        if parts[0] == "assets":
            return self._assets(req, parts[1:])
        return self._stores(req, parts[1:])

    def _stores(self, req: _Req, rest: list[str]) -> tuple[int, Any]:
        verb, params, raw, now = req.verb, req.params, req.raw, req.now
        if not rest:
            if verb == "POST":
                return 200, self._create_store(loads(raw)).object()
            if verb == "GET":
                rows = [r.object() for r in reversed(self.stores.values())]
                return 200, page_of(rows, *paging(params))
            raise _no_route(verb, "/knowledge-stores")
        record = self.stores.get(rest[0])
        if record is None:
            raise not_found("Knowledge store", rest[0])
        tail, index_time = rest[1:], self.config.index_time
        if not tail and verb == "GET":
            return 200, record.object()
        if not tail and verb == "DELETE":
            if record.base is not None:
                msg = (
                    f"Knowledge store {record.store_id} is a demo store built into "
                    "the emulator: it cannot be deleted."
                )
                raise ApiError(403, "forbidden", msg)
            self._drop_store(record.store_id)
            return 204, None
        if tail == ["search"] and verb == "POST":
            store = self.knowledge_store(record.store_id, now)
            return 200, search(store or KnowledgeStore("", "", (), {}), loads(raw))
        if tail == ["items"] and verb == "POST":
            return 202, self._add_item(record, loads(raw), now).object(now, index_time)
        if tail == ["items"] and verb == "GET":
            rows = list(record.rows(now, index_time).values())
            wanted = params.get("status")
            if wanted:
                rows = [r for r in rows if r["status"] in wanted]
            made = {item_id: n for n, item_id in enumerate(record.items, 1)}
            return 200, page_of(_sorted(rows, params, made), *paging(params))
        if len(tail) == 2 and tail[0] == "items":
            row = record.rows(now, index_time).get(tail[1])
            if row is None:
                raise not_found("Item", tail[1])
            if verb == "GET":
                return 200, row
            if verb == "DELETE":
                if record.items.pop(tail[1], None) is None:
                    raise _bad(f"Item {tail[1]} is built into the demo store.")
                if self.disk is not None:
                    self.disk.drop("item", tail[1])
                return 204, None
        raise _no_route(verb, f"/knowledge-stores/{'/'.join(rest)}")

    def _create_store(self, body: Any) -> StoreRecord:
        if not isinstance(body, dict):
            raise _bad("The body must be a JSON object.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise _bad(
                "name is required: 1 to 255 characters.", "parameter_not_provided"
            )
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > _MAX_TEXT:
            raise _bad(f"description is a string of at most {_MAX_TEXT:,} characters.")
        metadata = _metadata(body.get("metadata"), "metadata", 10, _MAX_TEXT)
        ingestion = _ingestion(body.get("ingestion_config"))
        record = StoreRecord(new_id("ks"), name, description, metadata, ingestion)
        self.stores[record.store_id] = record
        for gone in _over(self.stores, keep=STORES):
            self._drop_store(gone)
        self._put_store(record)
        return record

    def _add_item(self, record: StoreRecord, body: Any, now: float) -> Item:
        if not isinstance(body, dict) or not isinstance(body.get("asset_id"), str):
            raise _bad("asset_id is required.", "parameter_not_provided")
        if body.get("asset_type", "video") != "video":
            raise _bad("The emulator indexes videos: asset_type must be 'video'.")
        asset = self.assets.get(body["asset_id"])
        if asset is None:
            raise not_found("Asset", body["asset_id"])
        status = asset.status(now)
        if status != "ready":
            why = f": {asset.error}" if asset.error else "; poll it until it is."
            msg = f"Asset {asset.asset_id} is {status}, not ready{why}"
            raise _bad(msg, "asset_not_ready")
        metadata = _metadata(body.get("metadata"), "metadata")
        if len(record.items) >= _MAX_ITEMS:
            raise _bad(f"The emulator holds at most {_MAX_ITEMS:,} items a store.")
        if sum(len(r.items) for r in self.stores.values()) >= _MAX_ALL_ITEMS:
            msg = f"The emulator holds at most {_MAX_ALL_ITEMS:,} items in all stores."
            raise _bad(msg)
        fails = any(
            fnmatch.fnmatch(asset.filename, p) for p in self.config.fail_processing
        )
        item = Item(new_id("ksi"), asset, metadata, now, fails)
        record.items[item.item_id] = item
        self._put_item(record, item)
        return item

    # -- assets and uploads -----------------------------------------------------------

    def _assets(self, req: _Req, rest: list[str]) -> tuple[int, Any]:
        verb, params, now = req.verb, req.params, req.now
        if rest and rest[0] == "multipart-uploads":
            return self._uploads(req, rest[1:])
        if not rest and verb == "GET":
            return 200, page_of(self._asset_rows(params, now), *paging(params))
        if len(rest) == 1:
            asset = self.assets.get(rest[0])
            if asset is None:
                raise not_found("Asset", rest[0])
            if verb == "GET":
                return 200, asset.detail(now)
            if verb == "DELETE":
                self._drop_asset(rest[0])
                return 204, None
        raise _no_route(verb, "/assets/" + "/".join(rest))

    def _asset_rows(
        self, params: dict[str, list[str]], now: float
    ) -> list[dict[str, Any]]:
        """`GET /assets`, newest first, filtered as the SDK's `assets.list` says.

        `asset_ids` and `asset_types` (each repeatable: any of them),
        `filename` (a part of it, in any case).
        """
        ids, types = set(params.get("asset_ids", ())), params.get("asset_types")
        if types and not set(types) <= _ASSET_TYPES:
            raise _bad(f"asset_types takes {', '.join(sorted(_ASSET_TYPES))}.")
        name = (params.get("filename") or [""])[-1].lower()
        return [
            row
            for asset in reversed(self.assets.values())
            if (not ids or asset.asset_id in ids)
            and name in (row := asset.detail(now))["filename"].lower()
            and (not types or row["file_type"].split("/")[0] in types)
        ]

    def form_body(self, content_type: str, declared: int) -> FormBody:
        """Where a direct upload's form goes: a spool in the data directory, if any.

        Raises:
            ApiError: 413 when the data directory has no room for `declared` bytes.
        """
        if self.disk is None:
            return FormBody(
                _FORM_LIMIT, content_type=content_type, tail_bytes=TAIL_BYTES
            )
        self.disk.check(declared)
        return FormBody(_FORM_LIMIT, content_type=content_type, spool=self.disk.spool())

    def create_asset(self, body: FormBody, now: float) -> dict[str, Any]:
        """`POST /assets` (multipart/form-data): a direct upload or a URL import."""
        form = body.parser.close()
        method = form.fields.get("method")
        metadata = _user_metadata(form.fields.get("user_metadata"))
        ready_at = now + self.config.asset_time
        if method == "direct":
            part = form.files.get("file")
            if part is None:
                raise _bad("method=direct needs a file part named 'file'.")
            if part.size > DIRECT_LIMIT:
                msg = f"A direct upload is at most {DIRECT_LIMIT:,} bytes."
                raise ApiError(413, "file_too_large", msg)
            name = form.fields.get("filename") or part.filename or "video"
            asset = Asset.received(
                "direct", name, part.size, part.head, metadata, ready_at
            )
            if body.spool is not None and self.disk is not None:
                body.spool.keep(self.disk.file(asset.asset_id))
            asset.seconds = self._seconds(asset, part.head, part.tail)
        elif method == "url":
            url = form.fields.get("url", "")
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise _bad("url must be an http(s) URL of the raw media file.")
            asset = Asset.imported(url, metadata, ready_at)
        else:
            raise _bad("method must be 'direct' or 'url'.", "parameter_not_provided")
        self._add_asset(asset)
        return asset.detail(now)

    def _add_asset(self, asset: Asset) -> None:
        """Keep a new asset; past the cap the oldest goes, its file and uploads too."""
        self.assets[asset.asset_id] = asset
        for gone in _over(self.assets):
            self._drop_asset(gone)
        self._put_asset(asset)

    def _seconds(
        self, asset: Asset, head: bytes, tail: bytes | bytearray
    ) -> float | None:
        """An uploaded file's duration: from its file if kept, else from its ends."""
        if self.disk is None:
            return duration_from_head(head, bytes(tail), asset.size)
        try:
            with self.disk.file(asset.asset_id).open("rb") as file:
                return duration(file)
        except OSError:
            return None

    def _uploads(self, req: _Req, rest: list[str]) -> tuple[int, Any]:
        verb, params, raw, now = req.verb, req.params, req.raw, req.now
        if not rest and verb == "POST":
            return 201, self._create_upload(loads(raw), req.origin)
        if not rest and verb == "GET":
            rows = [
                {
                    "upload_id": u.upload_id,
                    "status": "active",
                    "total_size": u.total_size,
                    "chunk_size": u.chunk_size,
                    "total_chunks": u.total_chunks,
                    "created_at": u.created_at,
                }
                for u in self.uploads.values()
                if not u.complete
            ]
            return 200, page_of(rows, *paging(params))
        upload = self.uploads.get(rest[0]) if rest else None
        if upload is None:
            raise not_found("Upload", rest[0] if rest else "")
        if len(rest) == 1 and verb == "GET":
            return 200, upload.status(*paging(params))
        if len(rest) == 1 and verb == "POST":
            return 200, self._report(upload, loads(raw), now, req.origin)
        if rest[1:] == ["presigned-urls"] and verb == "POST":
            body = loads(raw)
            start, count = (
                body.get(k) if isinstance(body, dict) else None
                for k in ("start", "count")
            )
            if (
                type(start) is not int
                or type(count) is not int
                or start < 1
                or not 1 <= count <= 50
            ):
                raise _bad("start (from 1) and count (1 to 50) are integers.")
            return 200, {
                "upload_id": upload.upload_id,
                "start_index": start,
                "count": count,
                "upload_urls": upload.urls(req.origin, start, count),
                "generated_at": rfc3339(),
                "expires_at": in_seconds(3600),
            }
        raise _no_route(verb, "/assets/multipart-uploads/" + "/".join(rest))

    def _report(
        self, upload: Upload, body: Any, now: float, origin: str
    ) -> dict[str, Any]:
        """Take a batch of reported parts; the asset is made once all are in."""
        before = set(upload.reported)
        processed, duplicates = upload.report(body)
        if self.disk is not None:
            self.disk.report_parts(upload.upload_id, sorted(upload.reported - before))
        answer = {
            "processed_chunks": processed,
            "duplicate_chunks": duplicates,
            "total_completed": len(upload.reported),
            "asset_id": upload.asset.asset_id,
        }
        if upload.complete:
            if upload.asset.ready_at is None:
                finished = Asset.received(
                    "multipart",
                    upload.asset.filename,
                    upload.total_size,
                    upload.asset.head,
                    upload.asset.user_metadata,
                    now + self.config.asset_time,
                    upload.asset.asset_id,
                )
                finished.seconds = self._seconds(
                    finished, upload.asset.head, upload.tail
                )
                upload.tail = bytearray()  # read: no longer needed
                upload.asset = self.assets[finished.asset_id] = finished
                self._put_asset(finished)
            answer["url"] = f"{origin}/v1.3/assets/{upload.asset.asset_id}"
        return answer

    def _create_upload(self, body: Any, origin: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("The body must be a JSON object.")
        name, kind, size = (
            body.get("filename"),
            body.get("type"),
            body.get("total_size"),
        )
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise _bad("filename is required: 1 to 255 characters.")
        if kind not in ("video", "audio", "image"):
            raise _bad("type must be video, audio or image.")
        if type(size) is not int or not 1 <= size <= MULTIPART_LIMIT:
            raise _bad(f"total_size must be from 1 to {MULTIPART_LIMIT:,} bytes.")
        metadata = _metadata(body.get("user_metadata"), "user_metadata") or None
        if self.disk is not None:
            self.disk.reserve(size)  # the whole file, from now on
        asset = Asset(new_id("asset"), "multipart", name, size, b"", metadata, None)
        upload = Upload(new_id("upload"), asset, size, self.config.chunk_size)
        self._add_asset(asset)
        self.uploads[upload.upload_id] = upload
        for gone in _over(self.uploads):
            self._drop_upload(gone)
        self._put_upload(upload)
        return {
            "upload_id": upload.upload_id,
            "asset_id": asset.asset_id,
            "upload_urls": upload.urls(origin, 1, 50),
            "upload_headers": {},
            "chunk_size": upload.chunk_size,
            "total_chunks": upload.total_chunks,
            "expires_at": upload.expires_at,
        }

    def upload_for_part(
        self, upload_id: str, index: str, token: str
    ) -> tuple[Upload, int]:
        """The upload and chunk a part URL names; 403/404 if it names none.

        The token is compared in constant time: how long a refusal takes says
        nothing about how much of a guess was right.
        """
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise not_found("Upload", upload_id)
        if not hmac.compare_digest(token.encode(), upload.token.encode()):
            raise ApiError(
                403, "signature_invalid", "The part URL's token is not valid."
            )
        if not index.isdigit() or not 1 <= int(index) <= upload.total_chunks:
            raise not_found("Chunk", index)
        return upload, int(index)

    def part_body(self, upload_id: str, index: str, token: str) -> PartBody:
        """Where a part PUT to its URL goes: in place in its asset's file, if kept.

        Raises:
            ApiError: what `upload_for_part` raises.
        """
        upload, chunk = self.upload_for_part(upload_id, index, token)
        body = PartBody(upload.part_size(chunk), upload, chunk)
        if self.disk is not None:
            path = self.disk.file(upload.asset.asset_id)
            path.touch()
            body.out = path.open("r+b")
            body.out.seek(body.offset)
        return body

    def store_part(self, body: PartBody) -> str:
        """Record a part that arrived whole; its ETag.

        Raises:
            ApiError: 400 when the part is not the size the upload cut it to.
        """
        etag = body.store()
        upload = body.upload
        if self.disk is not None:
            part = upload.received[body.index]
            self.disk.put_part(upload.upload_id, body.index, part)
            if body.index == 1:
                self._put_asset(upload.asset)  # its head
        return etag


_MAX_KEPT = 10_000  # stores, assets or uploads one emulator keeps
_MAX_ITEMS = 10_000  # items a store holds
_MAX_ALL_ITEMS = 100_000  # items all stores hold
_MAX_TEXT = 2048  # a store's description, a store metadata string
_MAX_VALUE = 8192  # an item metadata string, or a list's strings in all
_FORM_LIMIT = DIRECT_LIMIT + (1 << 20)  # a direct upload's form: the file and fields


def _over(table: dict[str, Any], keep: Container[str] = ()) -> list[str]:
    """The keys of `table` past `_MAX_KEPT` entries, oldest first, but those in `keep`.

    Items keep their asset (not its id), so they outlive its eviction.
    """
    extra = len(table) - _MAX_KEPT
    return [k for k in table if k not in keep][: max(0, extra)]


_ASSET_TYPES = frozenset({"image", "video", "audio", "document"})
_SORTS = ("created_at", "updated_at")


def _sorted(
    rows: list[dict[str, Any]], params: dict[str, list[str]], made: dict[str, int]
) -> list[Any]:
    """Items by `sort_by` (`created_at`, `updated_at`), `sort_option` `desc` or `asc`.

    As the SDK documents: newest created first by default. Items added in the
    same second go in the order they were added (`made`); the demo videos,
    all made at once, keep the catalogue's order.
    """
    by = (params.get("sort_by") or ["created_at"])[-1]
    option = (params.get("sort_option") or ["desc"])[-1]
    if by not in _SORTS or option not in ("asc", "desc"):
        msg = "sort_by is created_at or updated_at; sort_option is asc or desc."
        raise _bad(msg)
    return sorted(
        rows,
        key=lambda row: (row[by], made.get(row["_id"], 0)),
        reverse=option == "desc",
    )


def _no_route(verb: str, path: str) -> ApiError:
    return ApiError(404, "not_found", f"No route for {verb} {path}.")


def _user_metadata(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    value = loads(text.encode())
    if not isinstance(value, dict):
        raise _bad("user_metadata must be a JSON object (sent as a string).")
    return _metadata(value, "user_metadata")


def _metadata(
    value: Any, name: str, pairs: int = 50, longest: int = _MAX_VALUE
) -> dict[str, Any]:
    """Metadata as the SDK allows it: ≤`pairs` pairs of flat values, not null.

    Keys are ≤128 characters, a string ≤`longest`, a list's strings ≤8,192 in all.
    """
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > pairs:
        raise _bad(f"{name} must be an object of at most {pairs} pairs.")
    for key, item in value.items():
        flat = isinstance(item, (str, int, float, bool)) or (
            isinstance(item, list) and all(isinstance(x, str) for x in item)
        )
        if len(key) > 128 or not flat:
            raise _bad(f"{name}.{key[:40]}: keys ≤128 chars; values flat, not null.")
        if isinstance(item, str) and len(item) > longest:
            msg = f"{name}.{key}: a string value is at most {longest:,} characters."
            raise _bad(msg)
        if isinstance(item, list) and sum(map(len, item)) > _MAX_VALUE:
            msg = f"{name}.{key}: a list holds at most {_MAX_VALUE:,} characters."
            raise _bad(msg)
    return dict(value)


_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "title",
        "description",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "format",
    }
)


def _ingestion(value: Any) -> dict[str, Any] | None:
    """A store's `ingestion_config`, checked as the API documents it.

    Its shape (an `enrichment_config` of `type` `description` with a text, or
    `json_schema` with an object schema) is a 400; a schema the platform
    cannot use (another keyword, a property without a `description`, a root
    that is no object) is the documented 422 (SDK 1.3.6
    `types/enrichment_config_json_schema.py`).
    """
    if value is None:
        return None
    config = value.get("enrichment_config") if isinstance(value, dict) else None
    if not isinstance(config, dict):
        msg = "ingestion_config is an object with an enrichment_config object."
        raise _bad(msg)
    kind = config.get("type")
    if kind == "description":
        text = config.get("description")
        if not isinstance(text, str) or not text.strip():
            raise _bad("enrichment_config.description is a non-empty string.")
        return {"enrichment_config": {"type": kind, "description": text}}
    if kind != "json_schema":
        raise _bad("enrichment_config.type is 'description' or 'json_schema'.")
    schema = config.get("json_schema")
    if not isinstance(schema, dict):
        raise _bad("enrichment_config.json_schema is a JSON schema object.")
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise _unusable("the root is an object with properties")
    _check_schema(schema, "json_schema")
    return {"enrichment_config": {"type": kind, "json_schema": schema}}


def _unusable(why: str) -> ApiError:
    return ApiError(422, "parameter_invalid", f"enrichment_config.json_schema: {why}.")


def _check_schema(node: Any, where: str) -> None:
    """Only the keywords the platform takes; a `description` on every property."""
    if not isinstance(node, dict):
        raise _unusable(f"{where} is not a schema object")
    unknown = sorted(set(node) - _SCHEMA_KEYWORDS)
    if unknown:
        raise _unusable(f"{where}: {unknown[0]!r} is not a supported keyword")
    properties = node.get("properties", {})
    if not isinstance(properties, dict):
        raise _unusable(f"{where}.properties is not an object")
    for name, prop in properties.items():
        if not isinstance(prop, dict) or not isinstance(prop.get("description"), str):
            raise _unusable(f"{where}.properties.{name} has no description")
        _check_schema(prop, f"{where}.properties.{name}")
    if "items" in node:
        _check_schema(node["items"], f"{where}.items")
    tuple_items = node.get("prefixItems", [])
    if not isinstance(tuple_items, list):
        raise _unusable(f"{where}.prefixItems is not a list")
    for n, item in enumerate(tuple_items):
        _check_schema(item, f"{where}.prefixItems[{n}]")


def _sentences(text: str) -> list[str]:
    """The sentences of `text`, as written."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _mid_sentence(text: str) -> str:
    """`The boats leave.` → `the boats leave`; `I`, `TV` and names stay.

    The middle of a narration ("In Title, the boats leave.").
    """
    text = text.rstrip(".")
    first, _, rest = text.partition(" ")
    if first.istitle() and first.lower() in _LOWER_FIRST:
        return f"{first.lower()} {rest}".strip()
    return text


def _ingested(item: Item) -> Video:
    """An uploaded video as answers and search see it: its moments from its metadata.

    A description's sentences are seen; a transcript's lines are said too
    (search returns them as the clip's `transcription`).
    """
    meta = {**(item.asset.user_metadata or {}), **item.metadata}
    stem = item.asset.filename.rsplit(".", 1)[0]
    title = str(meta.get("title") or re.sub(r"[_\-]+", " ", stem).strip().capitalize())
    duration = float(item.asset.duration or _DEFAULT_DURATION)
    timed: list[tuple[float, str]] = []
    spread: list[tuple[str, str | None]] = [  # (what is seen, what is said)
        (_mid_sentence(s), None) for s in _sentences(str(meta.get("description") or ""))
    ]
    for line in str(meta.get("transcript") or "").splitlines():
        match = _TIMED.match(line)
        if match and int(match[1]) * 60 + int(match[2]) < duration:
            at = int(match[1]) * 60 + int(match[2])
            timed.append((at, match[3].strip()))
        else:
            spread += [(_mid_sentence(s), s) for s in _sentences(line)]
    if not spread and not timed:
        spread = [(title, None)]
    step = duration / max(1, len(spread))
    lines = [f"{i * step:g}-{(i + 1) * step:g} {s}" for i, (s, _) in enumerate(spread)]
    said = [spoken for _, spoken in spread]
    timed.sort()
    for n, (start, text) in enumerate(timed):
        end = timed[n + 1][0] if n + 1 < len(timed) else duration
        end = min(end, start + 30.0, duration)
        if end > start:
            lines.append(f"{start:g}-{end:g} {_mid_sentence(text)}")
            said.append(text)
    return build_video(
        {
            "item_id": item.item_id,
            "title": title,
            "duration": duration,
            "topics": [],
            "highlight": 0,
            "moments": lines,
            "said": said,
            "metadata": dict(item.metadata),
        }
    )
