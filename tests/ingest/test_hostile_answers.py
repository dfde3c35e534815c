"""A server's odd answers to KnowledgeStore are typed errors, never KeyError or ValueError.

Ids the server sends go into request paths, so one that would change the path
(`../x`, `a?b`) is refused; counts of the wrong type are refused; a multipart
plan that does not fit the file is refused. A source whose answers are odd
fails alone, with the reason in its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import JockeyIngestError, JockeyServerError, KnowledgeStore
from langchain_jockey.knowledge_stores import AddResult
from langchain_jockey.emulator import sample_video

Routes = dict[tuple[str, str], Any]
EMPTY_PAGE = {"data": [], "page_info": {"total_page": 1}}
TEST_KEY = "tlk_test_key"  # redacted from what results keep: not a common letter


def store_on(
    routes: Routes, tmp_path: Path, seen: list[str] | None = None, **kwargs: Any
) -> KnowledgeStore:
    """A store whose requests are answered from `routes` ((method, path) → JSON)."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if seen is not None:
            seen.append(f"{request.method} {path}")
        found = routes.get((request.method, path), {"code": "not_found"})
        status = 404 if found == {"code": "not_found"} else 200
        return httpx.Response(status, json=found)

    transport = httpx.MockTransport(answer)
    return KnowledgeStore(
        knowledge_store_id="ks_1",
        api_key=TEST_KEY,
        base_url="https://jockey.test/v1.3",
        state_dir=tmp_path / "state",
        poll_interval=0.01,
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
        **kwargs,
    )


def call(mode: str, store: KnowledgeStore, name: str, *args: Any, **kw: Any) -> Any:
    method: Callable[..., Any] = getattr(store, name if mode == "sync" else f"a{name}")
    return method(*args, **kw) if mode == "sync" else asyncio.run(method(*args, **kw))


@pytest.mark.parametrize(
    "page_info", [{"total_page": "abc"}, {"total_page": 2.5}, {"total_page": None}]
)
def test_a_page_count_of_the_wrong_type_is_a_typed_error(mode, tmp_path, page_info):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): {"data": [], "page_info": page_info}
    }
    with pytest.raises(JockeyServerError, match="total_page"):
        call(mode, store_on(routes, tmp_path), "items")


@pytest.mark.parametrize("new_id", ["../assets", "ks_1?x=1", "", None, 7])
def test_a_new_store_id_that_would_change_the_path_is_refused(mode, tmp_path, new_id):
    routes = {("POST", "knowledge-stores"): {"_id": new_id}}
    store = store_on(routes, tmp_path)
    with pytest.raises(JockeyServerError, match="'_id'"):
        if mode == "sync":
            type(store).create("x", **_same_connection(store))
        else:
            asyncio.run(type(store).acreate("x", **_same_connection(store)))


def _same_connection(store: KnowledgeStore) -> dict[str, Any]:
    return {
        "api_key": TEST_KEY,
        "base_url": store.base_url,
        "http_client": store.http_client,
        "http_async_client": store.http_async_client,
    }


@pytest.mark.parametrize(
    "asset", [{"status": "ready"}, {"_id": "../../x"}, ["not", "an", "object"]]
)
def test_an_upload_answered_oddly_fails_that_source_with_the_reason(
    mode, tmp_path, asset
):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("POST", "assets"): asset,
    }
    video = sample_video(tmp_path / "a.mp4")
    with pytest.raises(JockeyIngestError) as caught:
        call(mode, store_on(routes, tmp_path), "add", video)
    (result,) = caught.value.results
    assert result.status == "failed"
    assert "JockeyServerError" in result.error
    assert "the new asset" in result.error


@pytest.mark.parametrize(
    "plan",
    [
        {"chunk_size": 0, "total_chunks": 1},
        {"chunk_size": 100, "total_chunks": 10**9},
        {"chunk_size": "64", "total_chunks": 4},
        {"chunk_size": 65536},
    ],
)
def test_a_multipart_plan_that_does_not_fit_the_file_is_refused(mode, tmp_path, plan):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("POST", "assets/multipart-uploads"): {
            "upload_id": "up_1",
            "asset_id": "asset_1",
            **plan,
        },
    }
    video = sample_video(tmp_path / "a.mp4", size=200_000)
    store = store_on(routes, tmp_path, multipart_threshold=1)
    with pytest.raises(JockeyIngestError) as caught:
        call(mode, store, "add", video)
    assert "the multipart upload" in caught.value.results[0].error


def test_a_part_url_that_is_not_http_is_never_used(mode, tmp_path):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("POST", "assets/multipart-uploads"): {
            "upload_id": "up_1",
            "asset_id": "asset_1",
            "chunk_size": 200_000,
            "total_chunks": 1,
            "upload_urls": [{"chunk_index": 1, "url": "file:///etc/passwd"}],
        },
        ("POST", "assets/multipart-uploads/up_1/presigned-urls"): {"upload_urls": []},
    }
    video = sample_video(tmp_path / "a.mp4", size=200_000)
    store = store_on(routes, tmp_path, multipart_threshold=1)
    with pytest.raises(JockeyIngestError) as caught:
        call(mode, store, "add", video)
    assert "upload URL of part 1 is not a usable URL" in caught.value.results[0].error


def test_an_empty_list_may_say_it_has_zero_pages(mode, tmp_path):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): {
            "data": [],
            "page_info": {"total_page": 0},
        }
    }
    assert call(mode, store_on(routes, tmp_path), "items") == []


def test_a_list_that_never_ends_is_a_typed_error(mode, tmp_path):
    endless = {
        "data": [{"_id": "ksi_1", "status": "ready"}],
        "page_info": {"total_page": 10**12},
    }
    routes = {("GET", "knowledge-stores/ks_1/items"): endless}
    with pytest.raises(JockeyServerError, match="over 100,000 rows"):
        call(mode, store_on(routes, tmp_path), "items")


def _endless(rows_a_page: int, served: list[int], tmp_path: Path) -> KnowledgeStore:
    """A store whose item list has pages of `rows_a_page` rows, forever.

    `served` counts the rows sent. Past 100,000 of them the list ends, so a
    client without the cap finishes (holding them all) instead of running on.
    """

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if path == "knowledge-stores/ks_1":
            return httpx.Response(200, json={"_id": "ks_1", "name": "s"})
        if sum(served) > 100_000:
            return httpx.Response(200, json=EMPTY_PAGE)
        page = int(request.url.params["page"])
        rows = [
            {"_id": f"ksi_{page}_{n}", "status": "ready"} for n in range(rows_a_page)
        ]
        served.append(len(rows))
        listed = {"data": rows, "page_info": {"total_page": 10**12}}
        return httpx.Response(200, json=listed)

    return _store(answer, tmp_path)


@pytest.mark.parametrize("name", ["items", "info", "add"])
def test_a_page_of_more_rows_than_asked_for_is_a_typed_error(mode, tmp_path, name):
    served: list[int] = []
    store = _endless(
        1800, served, tmp_path
    )  # 3.6 million rows in 2,000 pages, unchecked
    args = [sample_video(tmp_path / "a.mp4")] if name == "add" else []
    with pytest.raises(JockeyServerError, match="1,800 rows, over the 50 asked for"):
        call(mode, store, name, *args)
    assert served == [1800]  # one page read, then refused


@pytest.mark.slow
@pytest.mark.parametrize("name", ["items", "add"])
def test_a_list_of_full_pages_that_never_ends_stops_at_100000_rows(
    mode, tmp_path, name
):
    served: list[int] = []
    args = [sample_video(tmp_path / "a.mp4")] if name == "add" else []
    with pytest.raises(JockeyServerError, match="over 100,000 rows"):
        call(mode, _endless(50, served, tmp_path), name, *args)
    assert sum(served) == 100_000


def _fat_rows(pages: int, fat: int, tmp_path: Path) -> KnowledgeStore:
    """A store listing `pages` full pages of items, each row carrying `fat`
    characters of its own (a page stays under the 8 MB a JSON body may be);
    nothing else is found (404)."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if path == "knowledge-stores/ks_1":
            return httpx.Response(200, json={"_id": "ks_1", "name": "s"})
        if path != "knowledge-stores/ks_1/items" or request.method != "GET":
            return httpx.Response(404, json={"code": "not_found"})
        gc.collect()  # earlier pages' garbage is not held: the peak counts what is
        page = int(request.url.params["page"])
        rows = [
            {
                "_id": f"ksi_{page}_{n}",
                "status": "ready",
                "metadata": {"source_sha256": f"{page:032x}{n:032x}"},
                "notes": f"{page} {n} " + "x" * fat,  # a new string each
            }
            for n in range(50)
        ]
        return httpx.Response(
            200, json={"data": rows, "page_info": {"total_page": pages}}
        )

    return _store(answer, tmp_path)


@pytest.mark.parametrize("name", ["info", "add"])
def test_info_and_add_hold_only_an_items_id_asset_status_and_hash(mode, tmp_path, name):
    """Rows are capped in number (100,000), not in size: at 8 MB a page, whole
    rows would let a server make `info` and every `add` hold 16 GB. They keep
    what they read of an item, so 25 pages of 1 MB stay far under 25 MB."""
    store = _fat_rows(25, 20_000, tmp_path)
    args = [sample_video(tmp_path / "a.mp4")] if name == "add" else []
    tracemalloc.start()
    try:
        with contextlib.suppress(JockeyIngestError):  # add: the upload is a 404
            found = call(mode, store, name, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if name == "info":
        assert found.counts == {"ready": 1250}
    assert peak < 10_000_000, f"{peak:,} bytes"


def test_odd_shapes_inside_items_are_read_as_missing(mode, tmp_path):
    page = {
        "data": [
            {
                "_id": "ksi_1",
                "status": "ready",
                "metadata": ["not", "an", "object"],
                "system_metadata": "x",
                "asset_id": 5,
            }
        ],
        "page_info": {"total_page": 1},
    }
    routes = {("GET", "knowledge-stores/ks_1/items"): page}
    (item,) = call(mode, store_on(routes, tmp_path), "items")
    assert (item.item_id, item.metadata, item.filename, item.asset_id) == (
        "ksi_1",
        {},
        None,
        None,
    )


def test_a_failed_asset_whose_error_is_a_string_says_it(mode, tmp_path):
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("POST", "assets"): {
            "_id": "asset_1",
            "status": "failed",
            "error": "codec not supported",
        },
    }
    video = sample_video(tmp_path / "a.mp4")
    with pytest.raises(JockeyIngestError) as caught:
        call(mode, store_on(routes, tmp_path), "add", video)
    assert caught.value.results[0].error == "codec not supported"


def test_an_expired_upload_in_the_journal_starts_a_new_one(mode, tmp_path):
    video = sample_video(tmp_path / "a.mp4", size=200_000)
    seen: list[str] = []
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("GET", "assets/multipart-uploads/up_old"): {
            "status": "expired",
            "uploaded_chunks": [],
            "page_info": {"total_page": 1},
        },
    }
    store = store_on(routes, tmp_path, seen, multipart_threshold=1)
    from langchain_jockey._ingest import Journal
    from langchain_jockey._sources import FileState

    journal = Journal(store.state_dir, f"{store.base_url} ks_1")
    plan = {"upload_id": "up_old", "asset_id": "a", "chunk_size": 1, "total_chunks": 1}
    journal.save(f"file-{FileState.of(video).key}", plan)  # found by its state
    with pytest.raises(JockeyIngestError):  # the mock knows no new upload
        call(mode, store, "add", video)
    assert seen[-2:] == [
        "GET assets/multipart-uploads/up_old",
        "POST assets/multipart-uploads",
    ]


def _flaky_items(status: int, headers: dict[str, str] | None = None):
    """A server whose first `POST …/items` answers `status`, then the item."""
    posts: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if (request.method, path) == ("POST", "knowledge-stores/ks_1/items"):
            posts.append(1)
            if len(posts) == 1:
                return httpx.Response(
                    status, json={"code": "x", "message": "m"}, headers=headers
                )
            return httpx.Response(200, json={"_id": "ksi_1", "status": "ready"})
        if path == "knowledge-stores/ks_1/items":
            return httpx.Response(200, json=EMPTY_PAGE)
        if path.startswith("assets"):
            return httpx.Response(200, json={"_id": "asset_1", "status": "ready"})
        return httpx.Response(404, json={"code": "not_found", "message": path})

    return answer, posts


def _store(answer, tmp_path: Path, api_key: str = TEST_KEY) -> KnowledgeStore:
    transport = httpx.MockTransport(answer)
    return KnowledgeStore(
        knowledge_store_id="ks_1",
        api_key=api_key,
        base_url="https://jockey.test/v1.3",
        state_dir=tmp_path / "state",
        poll_interval=0.01,
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )


def test_a_call_that_creates_is_not_sent_again_after_a_5xx(mode, tmp_path):
    answer, posts = _flaky_items(502)
    video = sample_video(tmp_path / "a.mp4")
    with pytest.raises(JockeyIngestError) as caught:
        call(mode, _store(answer, tmp_path), "add", video)
    assert len(posts) == 1  # the server may have made the item: never twice
    assert "502" in caught.value.results[0].error


def test_a_call_that_creates_is_retried_after_a_429(mode, tmp_path):
    answer, posts = _flaky_items(429, {"retry-after": "0"})
    video = sample_video(tmp_path / "a.mp4")
    (result,) = call(mode, _store(answer, tmp_path), "add", video)
    assert (result.item_id, len(posts)) == ("ksi_1", 2)


@pytest.mark.parametrize("kind", ["application/xml", "text/html; charset=UTF-8"])
def test_a_part_stored_with_an_etag_in_any_content_type_is_taken(mode, tmp_path, kind):
    reported: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if request.url.host == "storage.test":
            assert "x-api-key" not in request.headers
            return httpx.Response(200, headers={"etag": '"e1"', "content-type": kind})
        if path == "knowledge-stores/ks_1/items" and request.method == "GET":
            return httpx.Response(200, json=EMPTY_PAGE)
        if path == "assets/multipart-uploads":
            plan = {"upload_id": "up_1", "asset_id": "asset_1"}
            return httpx.Response(
                200,
                json={
                    **plan,
                    "chunk_size": 200_000,
                    "total_chunks": 1,
                    "upload_urls": [
                        {"chunk_index": 1, "url": "https://storage.test/p1"}
                    ],
                },
            )
        if path == "assets/multipart-uploads/up_1":
            reported.append(request.read())
            return httpx.Response(200, json={"total_completed": 1})
        if path == "knowledge-stores/ks_1/items":
            return httpx.Response(200, json={"_id": "ksi_1", "status": "ready"})
        asset = {"_id": "asset_1", "status": "ready"}
        if path == "assets":  # the watcher's list of the assets processing
            return httpx.Response(200, json={"data": [asset], "page_info": {}})
        return httpx.Response(200, json=asset)

    store = _store(answer, tmp_path)
    store.multipart_threshold = 1
    video = sample_video(tmp_path / "a.mp4", size=200_000)
    (result,) = call(mode, store, "add", video)
    assert result.item_id == "ksi_1"
    assert b'"proof":"e1"' in reported[0]


KEY = "tlk_echoed_0123456789abcdefghij"
MEGABYTE = "x" * 1_000_000


def _answering(status: int, asset: Any, item: Any = None):
    """A server: `POST /assets` answers `status` and `asset`; the item is `item`."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.3/")
        if (request.method, path) == ("POST", "assets"):
            return httpx.Response(status, json=asset)
        if path == "knowledge-stores/ks_1/items" and request.method == "GET":
            return httpx.Response(200, json=EMPTY_PAGE)
        if path == "knowledge-stores/ks_1/items":
            return httpx.Response(200, json=item)
        return httpx.Response(200, json={"_id": "asset_1", "status": "ready"})

    return answer


READY = {"_id": "asset_1", "status": "ready"}
SERVER_TEXT = {
    "a failed asset's message": (
        _answering(
            200,
            {
                "_id": "asset_1",
                "status": "failed",
                "error": {"message": f"cannot read it with {KEY} {MEGABYTE}"},
            },
        ),
        "error",
    ),
    "an item's status": (
        _answering(200, READY, {"_id": "ksi_1", "status": f"{KEY} {MEGABYTE}"}),
        "status",
    ),
    "an HTTP error's message": (
        _answering(400, {"code": "bad", "message": f"{KEY} {MEGABYTE}"}),
        "error",
    ),
}


@pytest.mark.parametrize("case", list(SERVER_TEXT))
def test_server_text_in_results_and_errors_is_redacted_and_capped(mode, tmp_path, case):
    answer, field = SERVER_TEXT[case]
    events: list[Any] = []
    store = _store(answer, tmp_path, api_key=KEY)
    video = sample_video(tmp_path / "a.mp4")
    try:
        (result,) = call(
            mode, store, "add", video, wait=False, on_progress=events.append
        )
    except JockeyIngestError as err:
        (result,) = err.results
        shown = str(err)
        assert len(shown) < 2200
        assert KEY[:8] not in shown
    kept = getattr(result, field)
    assert len(kept) <= 2001  # 2,000 characters and "…"
    assert KEY[:8] not in kept  # not the key, not a piece of it
    for event in events:
        assert KEY[:8] not in f"{event.error} {event.status}"
        assert len(f"{event.error} {event.status}") < 4100


def test_an_ingest_error_of_100000_failures_names_20_and_counts_the_rest():
    why = "JockeyServerError: " + "x" * 170  # 19 MB of message, one line each
    results = [AddResult(f"v/{n}.mp4", None, None, "failed", why) for n in range(10**5)]
    message = str(JockeyIngestError.of(results))
    assert message.startswith("100,000 of 100,000 source(s) failed:\n- v/0.mp4: ")
    assert message.count(why) == 20
    assert message.endswith("- v/19.mp4: " + why + "\n…and 99,980 more")
    assert len(JockeyIngestError.of(results).failures) == 10**5


def test_rows_of_a_status_list_without_a_usable_id_are_passed_over(mode, tmp_path):
    odd_rows = {"data": [{"_id": ["x"]}, {"_id": None}, "row"], "page_info": {}}
    routes = {
        ("GET", "knowledge-stores/ks_1/items"): EMPTY_PAGE,
        ("POST", "assets"): {"_id": "asset_1", "status": "processing"},
        ("GET", "assets"): odd_rows,  # the watcher's list: the asset is not in it
        ("GET", "assets/asset_1"): {"_id": "asset_1", "status": "ready"},
        ("POST", "knowledge-stores/ks_1/items"): {"_id": "ksi_1", "status": "ready"},
    }
    seen: list[str] = []
    video = sample_video(tmp_path / "a.mp4")
    (result,) = call(mode, store_on(routes, tmp_path, seen), "add", video)
    assert (result.item_id, result.status) == ("ksi_1", "ready")
    assert "GET assets/asset_1" in seen  # read by its id, once the list had not it
