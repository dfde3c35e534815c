"""`KnowledgeStore`: from a folder of videos (or URLs) to a store Jockey answers about.

```python
from langchain_jockey import KnowledgeStore

store = KnowledgeStore.create(name="harbour")
store.add("videos/", show_progress=True)  # upload, index, wait until ready
store.as_chat_model().invoke("When do the boats leave?")
```

Requests go through the same layers as `ChatJockey` (`_client`, `_http`): one
place for the key, `base_url`, retries, timeouts and errors. How a source is
added is written once, in `_ingest.py`; this module runs it, sync or async.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import closing
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
from langchain_core.utils import from_env
from pydantic import ConfigDict, Field, PrivateAttr
from typing_extensions import Self

from langchain_jockey import _http
from langchain_jockey._client import JockeyConnection
from langchain_jockey._failures import RetryPolicy, server_text
from langchain_jockey._ingest import (
    FAILURES,
    AddResult,
    Api,
    Call,
    Claims,
    Context,
    Flow,
    Fork,
    IngestEvent,
    Journal,
    Local,
    Progress,
    Send,
    Wait,
    Watch,
    Watcher,
    add_flow,
    existing_flow,
    joined,
    listed,
    obj,
    pages,
    safe_id,
    text,
)
from langchain_jockey._progress import progress_bar
from langchain_jockey._sources import Metadata, checked_metadata, sources_of
from langchain_jockey._state import StateLog
from langchain_jockey._structured import enrichment_schema
from langchain_jockey.errors import JockeyIngestError, JockeyInputError, warn

if TYPE_CHECKING:
    from collections.abc import Generator

    from langchain_jockey.chat_models import ChatJockey
    from langchain_jockey.retrievers import KnowledgeStoreRetriever
    from langchain_jockey.tools import JockeyTool

__all__ = ["AddResult", "IngestEvent", "KnowledgeStore", "StoreInfo", "StoreItem"]

T = TypeVar("T")
_THREADS = 256  # sources of one sync add running at once, at most
Sources = str | PathLike[str] | Iterable[str | PathLike[str]]
Enrichment = str | Mapping[str, Any] | type[Any] | None
"""A store's enrichment: a description of what to extract, or a JSON schema (a
dict, or a Pydantic model class or TypedDict, as `with_structured_output` takes)."""
_STORE_PAIRS, _STORE_VALUE = 10, 2048  # store metadata (SDK 1.3.6 knowledge_stores)


def _state_dir() -> Path:
    base = from_env("XDG_CACHE_HOME", default=str(Path.home() / ".cache"))()
    return Path(base) / "langchain-jockey" / "uploads"


def _unwatched(call: Watch) -> Any:
    """A `Watch` outside an `add`: a bug, only `_run` and `_arun` take one."""
    msg = f"{call.kind} {call.key}: a Watch outside an add"
    raise TypeError(msg)


async def _aunwatched(call: Watch) -> Any:
    """Async twin of `_unwatched`."""
    return _unwatched(call)


@dataclass(frozen=True)
class StoreInfo:
    """A knowledge store's name, settings and items.

    Attributes:
        knowledge_store_id: Its id (`ks_…`).
        name: Its name.
        description: Its description.
        counts: Items by status (`queued`, `pending`, `processing`, `ready`,
            `failed`), counted from the item list: the API gives one total
            (empty in `KnowledgeStore.stores()`, which reads no items).
        metadata: The store's own metadata.
        enrichment: What the platform extracts from each video, set when the
            store was made: a description (`str`), a JSON schema (`dict`), or
            `None`.
    """

    knowledge_store_id: str
    name: str
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    enrichment: str | dict[str, Any] | None = None

    @property
    def item_count(self) -> int:
        """Its items, of every status."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class StoreItem:
    """One item of a store.

    Attributes:
        item_id: Its id (`ksi_…`).
        asset_id: The asset it was made from.
        status: `queued`, `pending`, `processing`, `ready` or `failed`.
        filename: The file's name, when the API says.
        metadata: Its metadata (`source_sha256` among it, for what `add` added).
    """

    item_id: str
    asset_id: str | None
    status: str
    filename: str | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> StoreItem:
        """From the API's item object."""
        system, metadata = raw.get("system_metadata"), raw.get("metadata")
        filename = system.get("filename") if isinstance(system, dict) else None
        asset_id = raw.get("asset_id")
        return cls(
            str(raw.get("_id")),
            asset_id if isinstance(asset_id, str) else None,
            str(raw.get("status")),
            filename if isinstance(filename, str) else None,
            dict(metadata) if isinstance(metadata, dict) else {},
        )


class KnowledgeStore(JockeyConnection):
    """A TwelveLabs knowledge store: make one, fill it with videos, ask about them.

    ```python
    store = KnowledgeStore.create(
        name="matches"
    )  # or KnowledgeStore(knowledge_store_id="ks_…")
    results = store.add(["final.mp4", "clips/", "https://example.com/a.mp4"])
    store.as_retriever(k=3).invoke("the penalty save")
    ```

    `add` checks every source before uploading any, uploads what the store
    does not already hold (by content hash), resumes an interrupted upload,
    waits until each item is indexed, and reports progress. When any source
    fails, the others still finish, and then `add` raises
    `JockeyIngestError`, whose `results` hold every outcome.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    max_retries: int = Field(default=6, ge=0)
    """Retries of one request (429, 5xx, connection failures). More than a chat
    call's 2: `add` runs unattended for minutes to hours and makes hundreds of
    requests, and one that fails fails its whole source after its upload work.
    Safe, since a request that creates something is retried only when it never
    reached the server (docs/configuration.md, "Retry defaults")."""

    max_retry_wait: float = Field(default=300.0, ge=0)
    """The most seconds spent waiting between retries of one request, in total:
    five minutes, not a chat call's one, so a rate limit's `Retry-After` is
    waited out instead of failing a source."""

    multipart_threshold: int = Field(default=100_000_000, ge=1, le=200_000_000)
    """Files larger than this many bytes go by multipart upload (resumable, in
    parts); smaller ones in one request. The API takes one request up to
    200 MB."""

    concurrency: int = Field(default=4, ge=1, le=64)
    """Sources uploading at once. A source holds its slot from hashing to the
    end of its upload, never while the API processes it."""

    part_concurrency: int = Field(default=4, ge=1, le=16)
    """Parts of one multipart upload sent at once, each on a connection of its
    own, kept for the next part."""

    poll_interval: float | None = Field(default=None, gt=0)
    """Seconds between status checks of the assets processing and of the
    items indexing (one request for all of them, whatever their number).
    Default (`None`): as the API's guide says, assets every 5 s and items
    every 10 s."""

    wait_timeout: float = Field(default=3600.0, gt=0)
    """How long `add` waits for one source's asset to be processed, and with
    `wait=True` for its item to be indexed."""

    _claims: Claims = PrivateAttr(default_factory=Claims)

    state_dir: Path = Field(default_factory=_state_dir)
    """Where uploads under way are recorded, so that a new run resumes them, with
    the hashes of the files hashed (an unchanged file is not read again) and the
    locks that keep processes of this machine from adding the same content at
    once. Default: `$XDG_CACHE_HOME/langchain-jockey/uploads` (`~/.cache/…`)."""

    # -- making and opening -----------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        enrichment: Enrichment = None,
        **kwargs: Any,
    ) -> Self:
        """Create a new knowledge store; `kwargs` are the connection settings.

        Args:
            name: Its name (several stores may share one: see `find`).
            description: Its description.
            metadata: Its own metadata: up to 10 pairs, strings up to 2,048
                characters, numbers, booleans or lists of strings.
            enrichment: What the platform extracts from every video added,
                fixed once the store is made: a description of it in words,
                or a JSON schema (a dict, or a Pydantic model class or
                TypedDict, as `with_structured_output` takes), written as the
                platform takes it (`$ref`s inlined, annotations dropped).
            **kwargs: The connection settings (`api_key`, `base_url`, …).

        Raises:
            JockeyInputError: a bad argument (an enrichment schema the
                platform would refuse, metadata over its limits), before any
                request.
        """
        store = cls(**kwargs)
        flow = _create(name, description, metadata, enrichment)
        store.knowledge_store_id = store._drive(flow)
        return store

    @classmethod
    async def acreate(
        cls,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        enrichment: Enrichment = None,
        **kwargs: Any,
    ) -> Self:
        """Async twin of `create`."""
        store = cls(**kwargs)
        flow = _create(name, description, metadata, enrichment)
        store.knowledge_store_id = await store._adrive(flow)
        return store

    @classmethod
    def find(cls, name: str, **kwargs: Any) -> list[str]:
        """The ids of the stores named `name`, as the API lists them (newest first).

        `kwargs` are the connection settings. Names are not unique: a store
        made twice under one name is found twice.
        """
        finder = cls(**kwargs)
        return finder._drive(_named(name))

    @classmethod
    async def afind(cls, name: str, **kwargs: Any) -> list[str]:
        """Async twin of `find`."""
        finder = cls(**kwargs)
        return await finder._adrive(_named(name))

    @classmethod
    def stores(cls, **kwargs: Any) -> list[StoreInfo]:
        """The account's knowledge stores, newest first; `kwargs`: connection settings.

        Their `counts` are empty: a listing does not read each store's items
        (`info()` does).
        """
        connection = cls(**kwargs)
        return connection._drive(_stores())

    @classmethod
    async def astores(cls, **kwargs: Any) -> list[StoreInfo]:
        """Async twin of `stores`."""
        connection = cls(**kwargs)
        return await connection._adrive(_stores())

    # -- reading and removing -----------------------------------------------------

    def info(self) -> StoreInfo:
        """The store's name, description, metadata, enrichment and item counts."""
        return self._drive(_info(self._path))

    async def ainfo(self) -> StoreInfo:
        """Async twin of `info`."""
        return await self._adrive(_info(self._path))

    def items(self) -> list[StoreItem]:
        """Every item, with its status (up to 100,000; more is an error)."""
        return self._drive(_items(self._path))

    async def aitems(self) -> list[StoreItem]:
        """Async twin of `items`."""
        return await self._adrive(_items(self._path))

    def remove(self, item_id: str) -> None:
        """Remove one item from the store."""
        self._drive(_one(Api("DELETE", f"{self._path}/items/{_id(item_id)}")))

    async def aremove(self, item_id: str) -> None:
        """Async twin of `remove`."""
        await self._adrive(_one(Api("DELETE", f"{self._path}/items/{_id(item_id)}")))

    def delete(self) -> None:
        """Delete the store and all its items."""
        self._drive(_one(Api("DELETE", self._path)))

    async def adelete(self) -> None:
        """Async twin of `delete`."""
        await self._adrive(_one(Api("DELETE", self._path)))

    # -- adding -----------------------------------------------------------------------

    def add(
        self,
        sources: Sources,
        *,
        metadata: Metadata = None,
        wait: bool = True,
        show_progress: bool = False,
        on_progress: Callable[[IngestEvent], None] | None = None,
        replace: bool = False,
        verify: bool = False,
    ) -> list[AddResult]:
        """Upload and index files, directories (their media files) and URLs.

        Content the store already holds is not uploaded again. When its item
        has other metadata than `metadata` gives, the store keeps it, with a
        warning, and the result's `previous_metadata` says so; with `replace`,
        the same asset is added again as a new item with the new metadata (an
        item cannot be updated), and the old item is removed once the new one
        is `ready`.

        A file hashed before and unchanged since (same device, inode, size and
        modification time, remembered in `state_dir`) is not read again.

        Args:
            sources: A path or URL, or several.
            metadata: Item metadata: one mapping for every source, or a function
                of the source (its path or URL) returning one.
            wait: Wait until every item is `ready` or `failed`.
            show_progress: Draw progress bars (needs `tqdm`).
            on_progress: Called with an `IngestEvent` at every step.
            replace: Replace the items whose metadata differs (needs `wait`).
            verify: Read and hash every file again, unchanged or not (a file
                rewritten with its modification time restored is found).

        Returns:
            One `AddResult` per source (a directory's files each), in order.

        Raises:
            JockeyInputError: a bad source or argument, before any upload.
            JockeyIngestError: after every source finished, when any failed.
            JockeyError: when the store cannot be read (a bad key, no such store).
        """
        ctx, found = self._context(
            sources,
            metadata=metadata,
            wait=wait,
            on_progress=on_progress,
            replace=replace,
            verify=verify,
        )
        with progress_bar(ctx.progress, show_progress):
            ctx.existing = self._drive(existing_flow(self._path))
            watcher = Watcher(ctx)
            lanes = (
                threading.Semaphore(self.concurrency),
                threading.Semaphore(self.concurrency),
            )
            polling = threading.Thread(
                target=self._drive, args=(watcher.flow(),), daemon=True
            )
            polling.start()
            # A thread per source in progress, so that one waiting for the API
            # holds no upload slot (past _THREADS sources waiting, the next one
            # starts when one ends). A source starts once it has its slot:
            # a thread per source started up front (200 files) cost a GIL
            # hand-over each while the first uploads ran, 0.15 s of 1.7 here.
            pool = ThreadPoolExecutor(min(len(found), _THREADS), "jockey-add")
            futures: list[Future[AddResult]] = []
            try:
                for s in found:
                    lanes[0].acquire()
                    flow = add_flow(s, ctx)
                    futures.append(pool.submit(self._run, flow, watcher, lanes))
                wait_for(futures)  # every source finishes before anything is raised
            finally:
                watcher.close()
                pool.shutdown(wait=False, cancel_futures=True)
            polling.join()
        return _checked([f.exception() or f.result() for f in futures])

    async def aadd(
        self,
        sources: Sources,
        *,
        metadata: Metadata = None,
        wait: bool = True,
        show_progress: bool = False,
        on_progress: Callable[[IngestEvent], None] | None = None,
        replace: bool = False,
        verify: bool = False,
    ) -> list[AddResult]:
        """Async twin of `add`."""
        ctx, found = await asyncio.to_thread(  # reads every new file's first bytes
            functools.partial(
                self._context,
                sources,
                metadata=metadata,
                wait=wait,
                on_progress=on_progress,
                replace=replace,
                verify=verify,
            )
        )
        with progress_bar(ctx.progress, show_progress):
            ctx.existing = await self._adrive(existing_flow(self._path))
            watcher = Watcher(ctx)
            lanes = (
                asyncio.Semaphore(self.concurrency),
                asyncio.Semaphore(self.concurrency),
            )
            polling = asyncio.create_task(self._adrive(watcher.flow()))
            tasks: list[asyncio.Task[AddResult]] = []
            try:
                try:
                    for s in found:  # a source starts once it has its slot, as in add
                        await lanes[0].acquire()
                        flow = add_flow(s, ctx)
                        tasks.append(
                            asyncio.create_task(self._arun(flow, watcher, lanes))
                        )
                except BaseException:  # cancelled: as gather would, so do they
                    for task in tasks:
                        task.cancel()
                    if tasks:
                        await asyncio.wait(tasks)
                    raise
                results = await asyncio.gather(
                    *tasks,
                    return_exceptions=True,  # as in add: every source finishes
                )
            finally:
                watcher.close()
                polling.cancel()
                await asyncio.wait([polling])
        return _checked(list(results))

    def _context(
        self,
        sources: Sources,
        *,
        metadata: Metadata,
        wait: bool,
        on_progress: Callable[[IngestEvent], None] | None,
        replace: bool,
        verify: bool,
    ) -> tuple[Context, list[Any]]:
        path = self._path  # no store: an error before anything else
        if replace and not wait:
            msg = (
                "add(replace=True) removes an old item once its new one is ready, "
                "so it waits: pass wait=True."
            )
            raise JockeyInputError(msg)
        records = StateLog(self.state_dir)
        records.read()
        found = sources_of(sources, metadata, None if verify else records.recall)
        journal = Journal(self.state_dir, f"{self.base_url} {self.knowledge_store_id}")
        journal.check()  # before any upload: else orphan assets and upload sessions
        self._claims.enter(found)
        ctx = Context(
            path,
            Progress(found, on_progress, self._server_text),
            journal,
            records,
            self,
            self._claims,
            self._claims.clock(),  # before the store is listed
            verify=verify,
            wait=wait,
            clean=self._server_text,
            replace=replace,
        )
        return ctx, found

    def _server_text(self, text: str) -> str:
        """A server's `text` fit to keep and show: the key redacted, capped."""
        key = self.api_key.get_secret_value() if self.api_key else None
        return server_text(text, key)

    # -- bound LangChain objects ----------------------------------------------------

    def _bound(self) -> dict[str, Any]:
        settings = {
            "knowledge_store_id": self._path.removeprefix("knowledge-stores/"),
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "default_headers": self.default_headers,
        }
        return {k: v for k, v in settings.items() if v is not None}

    def as_retriever(self, **kwargs: Any) -> KnowledgeStoreRetriever:
        """A `KnowledgeStoreRetriever` over this store; `kwargs` are its fields."""
        from langchain_jockey.retrievers import (  # noqa: PLC0415 - loaded on use
            KnowledgeStoreRetriever,
        )

        return KnowledgeStoreRetriever(**{**self._bound(), **kwargs})

    def as_chat_model(self, **kwargs: Any) -> ChatJockey:
        """A `ChatJockey` that answers about this store; `kwargs` are its fields."""
        from langchain_jockey.chat_models import ChatJockey  # noqa: PLC0415

        return ChatJockey(**{**self._bound(), **kwargs})

    def as_tool(self, **kwargs: Any) -> JockeyTool:
        """A `JockeyTool` asking about this store; `kwargs` are the tool's fields."""
        from langchain_jockey.tools import JockeyTool  # noqa: PLC0415

        return JockeyTool(llm=self.as_chat_model(), **kwargs)

    # -- running a flow -----------------------------------------------------------

    @property
    def _path(self) -> str:
        if not self.knowledge_store_id:
            msg = (
                "KnowledgeStore needs a store: KnowledgeStore.create(name=…), or "
                "KnowledgeStore(knowledge_store_id='ks_…')."
            )
            raise JockeyInputError(msg)
        return f"knowledge-stores/{_id(self.knowledge_store_id)}"

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, call: Api | Send
    ) -> httpx.Request:
        if isinstance(call, Api):
            return self._build(
                client,
                call.path,
                body=call.body,
                accept=_http.JSON,
                method=call.method,
                params=call.params,
            )
        if call.api:
            return self._build(
                client,
                call.url,
                accept=_http.JSON,
                stream=call.stream,
                content_type=call.content_type,
            )
        # A part URL (http(s): `_ingest` reads no other) is signed for this one
        # upload: no API key goes there.
        headers = {
            "content-type": call.content_type,
            "content-length": str(call.stream.size),
        }
        request = client.build_request(
            "PUT", call.url, headers=headers, timeout=self._timeout
        )
        request.stream = call.stream  # sync and async (httpx would wrap it as sync)
        return request

    def _policy_for(self, call: Api | Send) -> RetryPolicy:
        """The retry policy: no resending of a call that creates something."""
        creates = call.creates if isinstance(call, Api) else call.api
        return replace(self._policy, resend=False) if creates else self._policy

    def _drive(
        self,
        flow: Generator[Call, Any, T],
        wait: Callable[[Watch], Any] = _unwatched,
    ) -> T:
        """Run `flow` to its end, on this thread; `wait` does its `Watch`es."""
        client = self._clients.sync(self.http_client)
        step: Callable[[Any], Call] = flow.send
        value: Any = None
        with closing(flow):  # cancelled or interrupted: its claims are released
            while True:
                try:
                    call = step(value)
                except StopIteration as stop:
                    return cast("T", stop.value)
                try:
                    if isinstance(call, Watch):
                        value = wait(call)
                    else:
                        value = self._do(client, call)
                    step = flow.send
                except FAILURES as exc:
                    value, step = exc, flow.throw

    async def _adrive(
        self,
        flow: Generator[Call, Any, T],
        wait: Callable[[Watch], Awaitable[Any]] = _aunwatched,
    ) -> T:
        """Async twin of `_drive`."""
        client = await self._clients.async_(self.http_async_client)
        step: Callable[[Any], Call] = flow.send
        value: Any = None
        with closing(flow):  # cancelled or interrupted: its claims are released
            while True:
                try:
                    call = step(value)
                except StopIteration as stop:
                    return cast("T", stop.value)
                try:
                    if isinstance(call, Watch):
                        value = await wait(call)
                    else:
                        value = await self._ado(client, call)
                    step = flow.send
                except FAILURES as exc:
                    value, step = exc, flow.throw

    def _run(
        self,
        flow: Flow,
        watcher: Watcher,
        lanes: tuple[threading.Semaphore, threading.Semaphore],
    ) -> AddResult:
        """Run one source's flow of an `add`, in its slots.

        It holds an upload slot (`lanes[0]`, taken by the caller) until its
        first `Watch`, which the `Watcher` resolves while it holds none, and a
        slot of `lanes[1]` after.
        """
        held = [lanes[0]]

        def wait(call: Watch) -> Any:
            held.pop().release()
            future = watcher.watch(call)
            wait_for([future])  # done, failed or cancelled
            lanes[1].acquire()
            held.append(lanes[1])
            return future.result()  # its value, or its error raised here

        try:
            return self._drive(flow, wait)
        finally:
            for lane in held:
                lane.release()

    async def _arun(
        self,
        flow: Flow,
        watcher: Watcher,
        lanes: tuple[asyncio.Semaphore, asyncio.Semaphore],
    ) -> AddResult:
        """Async twin of `_run`."""
        held = [lanes[0]]

        async def wait(call: Watch) -> Any:
            held.pop().release()
            future = watcher.watch(call)
            await asyncio.wait([asyncio.wrap_future(future)])
            await lanes[1].acquire()
            held.append(lanes[1])
            return future.result()

        try:
            return await self._adrive(flow, wait)
        finally:
            for lane in held:
                lane.release()

    def _do(self, client: httpx.Client, call: Api | Send | Local | Wait | Fork) -> Any:
        """Do one call of a flow (a `Watch` is `_drive`'s `wait`); its value."""
        if isinstance(call, Local):
            return call.fn(*call.args)
        if isinstance(call, Wait):
            time.sleep(call.seconds)
            return None
        if isinstance(call, Fork):
            with ThreadPoolExecutor(len(call.flows), "jockey-part") as pool:
                running = [pool.submit(self._drive, f) for f in call.flows]
            return joined([f.exception() or f.result() for f in running])
        request, policy = self._request(client, call), self._policy_for(call)
        if isinstance(call, Send) and not call.api:
            return _http.put_part(client, request, policy)
        return _http.call_json(client, request, policy)

    async def _ado(
        self, client: httpx.AsyncClient, call: Api | Send | Local | Wait | Fork
    ) -> Any:
        """Async twin of `_do`."""
        if isinstance(call, Local):
            return await asyncio.to_thread(call.fn, *call.args)
        if isinstance(call, Wait):
            await asyncio.sleep(call.seconds)
            return None
        if isinstance(call, Fork):
            running = [self._adrive(f) for f in call.flows]
            return joined(await asyncio.gather(*running, return_exceptions=True))
        request, policy = self._request(client, call), self._policy_for(call)
        if isinstance(call, Send) and not call.api:
            return await _http.aput_part(client, request, policy)
        return await _http.acall_json(client, request, policy)


def _id(value: str) -> str:
    if not safe_id(value):
        msg = f"Not an id: {value!r}."
        raise JockeyInputError(msg)
    return value


def _checked(outcomes: Sequence[AddResult | BaseException]) -> list[AddResult]:
    results = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    _warn_kept(results)
    if any(not r.ok for r in results):
        raise JockeyIngestError.of(results)
    return results


def _warn_kept(results: Sequence[AddResult]) -> None:
    """Warn about the sources whose item kept other metadata than was given."""
    kept = [
        r.source
        for r in results
        if r.ok and r.previous_metadata is not None and r.replaced_item_id is None
    ]
    if kept:
        shown = JockeyIngestError.SHOWN
        listed = ", ".join(kept[:shown]) + (
            f", …and {len(kept) - shown:,} more" if len(kept) > shown else ""
        )
        warn(
            f"The store already held {len(kept):,} of these with other metadata, "
            f"and kept it: {listed}. Their results' previous_metadata says what "
            "it is; add(..., replace=True) replaces it."
        )


def _one(call: Call) -> Generator[Call, Any, Any]:
    return (yield call)


def enrichment_of(enrichment: Enrichment) -> str | dict[str, Any] | None:
    """An enrichment as the platform takes it, and as `StoreInfo` reports it.

    A description stays as it is; a schema is `enrichment_schema`'s.

    Raises:
        JockeyInputError: an empty description, or a schema the platform
            would refuse.
    """
    if enrichment is None:
        return None
    if isinstance(enrichment, str):
        if not enrichment.strip():
            msg = "enrichment: a description of what to extract, not an empty string."
            raise JockeyInputError(msg)
        return enrichment
    return enrichment_schema(enrichment)


def _create(
    name: str,
    description: str | None,
    metadata: Mapping[str, Any] | None,
    enrichment: Enrichment,
) -> Generator[Call, Any, str]:
    if not isinstance(name, str) or not name.strip():
        raise JockeyInputError("A knowledge store needs a name.")
    if description is not None and not isinstance(description, str):
        msg = f"description is a string, not {type(description).__name__}."
        raise JockeyInputError(msg)
    body: dict[str, Any] = {"name": name}
    if description is not None:
        body["description"] = description
    if metadata is not None:
        where = f"knowledge store {name!r}"
        body["metadata"] = checked_metadata(where, metadata, _STORE_PAIRS, _STORE_VALUE)
    config = enrichment_of(enrichment)
    if config is not None:
        kind = "description" if isinstance(config, str) else "json_schema"
        body["ingestion_config"] = {"enrichment_config": {"type": kind, kind: config}}
    made = yield Api("POST", "knowledge-stores", body, creates=True)
    return text(made, "_id", "the new knowledge store")


def _named(name: str) -> Generator[Call, Any, list[str]]:
    stores = yield from _stores()
    return [s.knowledge_store_id for s in stores if s.name == name]


def _stores() -> Generator[Call, Any, list[StoreInfo]]:
    return (yield from pages("knowledge-stores", lambda raw: _store_info(raw, {})))


def _store_info(raw: dict[str, Any], counts: dict[str, int]) -> StoreInfo:
    """A store as the API describes it, with its `counts` by status."""
    metadata = raw.get("metadata")
    return StoreInfo(
        text(raw, "_id", "a knowledge store"),
        str(raw.get("name", "")),
        str(raw.get("description") or ""),
        counts,
        dict(metadata) if isinstance(metadata, dict) else {},
        _enrichment(raw.get("ingestion_config")),
    )


def _items(path: str) -> Generator[Call, Any, list[StoreItem]]:
    return (yield from pages(f"{path}/items", StoreItem.of))


def _info(path: str) -> Generator[Call, Any, StoreInfo]:
    raw = obj((yield Api("GET", path)), "the knowledge store")
    # Only each item's status is kept: an item's row may be 160 kB.
    statuses = yield from pages(f"{path}/items", lambda r: str(listed(r, "status")))
    return _store_info(raw, dict(Counter(statuses)))


def _enrichment(config: object) -> str | dict[str, Any] | None:
    """The enrichment of a store's `ingestion_config`: its description or schema."""
    found = config.get("enrichment_config") if isinstance(config, dict) else None
    kind = found.get("type") if isinstance(found, dict) else None
    value = (
        found.get(kind) if isinstance(found, dict) and isinstance(kind, str) else None
    )
    if (kind, type(value)) in (("description", str), ("json_schema", dict)):
        return cast("str | dict[str, Any]", value)
    return None
