"""The ingestion endpoints as the official SDK sees them.

Knowledge stores, items, assets and multipart uploads: every response the
emulator sends parses into the SDK's models (`twelvelabs`) with no field the
models do not declare, and every status is one the SDK names. Then the raw
refusals: each is a 4xx with a JSON `{code, message}` body.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pydantic
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.assets.types.assets_list_response import AssetsListResponse
from twelvelabs.core.api_error import ApiError as SdkApiError
from twelvelabs.core.pagination import SyncPager
from twelvelabs.core.pydantic_utilities import parse_obj_as
from twelvelabs.knowledge_store_items.types.knowledge_store_items_list_response import (
    KnowledgeStoreItemsListResponse,
)
from twelvelabs.knowledge_stores.types.knowledge_stores_list_response import (
    KnowledgeStoresListResponse,
)
from twelvelabs.types.asset_method import AssetMethod
from twelvelabs.types.asset_status import AssetStatus
from twelvelabs.types.chunk_info_status import ChunkInfoStatus
from twelvelabs.types.get_upload_status_response import GetUploadStatusResponse
from twelvelabs.types.knowledge_store_item_status import KnowledgeStoreItemStatus
from twelvelabs.types.list_incomplete_uploads_response import (
    ListIncompleteUploadsResponse,
)
from twelvelabs.types.multipart_upload_status_type import MultipartUploadStatusType

from langchain_jockey.emulator import DEMO_STORE_ID, Emulator, sample_video
from tests.support import undeclared

T = TypeVar("T")
URL_VIDEO = "https://videos.example.invalid/a.mp4"
ITEM_ORDER = ("queued", "pending", "processing", "ready")


# -- helpers ------------------------------------------------------------------------


def clean(parsed: T, what: str) -> T:
    """`parsed`, after asserting it carries no undeclared field."""
    extra = undeclared(parsed)
    assert extra == [], f"{what}: the SDK model has undeclared fields {extra}"
    return parsed


def sdk_call(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the SDK; a response it cannot parse fails the test, naming `what`."""
    try:
        result = call(*args, **kwargs)
    except pydantic.ValidationError as exc:
        pytest.fail(f"the SDK cannot parse the emulator's {what} response:\n{exc}")
    return clean(result, what)


def listed(what: str, pager: SyncPager[T], page_type: type[Any]) -> list[T]:
    """Every item of `pager`, each page's whole body checked as `page_type`.

    The pager keeps only the items; the page body (`page_info`, and for the
    upload status the session fields) is parsed again from the raw response
    with the SDK's own `parse_obj_as`, so it is checked too.
    """
    items: list[T] = []
    try:
        for n, page in enumerate(pager.iter_pages(), 1):
            assert page.response is not None
            body = page.response._response.json()
            clean(parse_obj_as(page_type, body), f"{what} page {n}")
            items += [clean(i, f"{what} page {n} item") for i in page.items or []]
    except pydantic.ValidationError as exc:
        pytest.fail(f"the SDK cannot parse the emulator's {what} response:\n{exc}")
    return items


def names(alias: Any) -> set[str]:
    """The values an SDK enum alias (`Union[Literal[...], Any]`) names."""
    literal = typing.get_args(alias)[0]
    return set(typing.get_args(literal))


def wait_asset(sdk: TwelveLabs, asset_id: str, *, timeout: float = 5.0) -> Any:
    """Retrieve the asset until it leaves `processing`; its last detail."""
    deadline = time.monotonic() + timeout
    while True:
        detail = sdk_call("GET /assets/{id}", sdk.assets.retrieve, asset_id)
        assert detail.status in names(AssetStatus), detail.status
        if detail.status != "processing" or time.monotonic() > deadline:
            return detail
        time.sleep(0.02)


def direct(sdk: TwelveLabs, path: Path, **kwargs: Any) -> Any:
    """A direct upload of the file at `path` (the `Asset` the create returns)."""
    return sdk_call(
        "POST /assets (direct)",
        sdk.assets.create,
        method="direct",
        file=(path.name, path.read_bytes(), "video/mp4"),
        **kwargs,
    )


@pytest.fixture
def sdk(emulator: Emulator) -> TwelveLabs:
    return TwelveLabs(api_key=emulator.api_key, base_url=emulator.base_url)


@pytest.fixture
def http(emulator: Emulator) -> typing.Iterator[httpx.Client]:
    """A raw client on the emulator, with the API key."""
    with httpx.Client(
        base_url=emulator.base_url,
        headers={"x-api-key": emulator.api_key},
        timeout=10,
    ) as client:
        yield client


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON error body of a refusal, after checking its shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), str), body
    assert isinstance(body.get("message"), str), body
    assert body["code"], body
    assert body["message"], body
    return body


# -- knowledge stores ----------------------------------------------------------------


def test_the_sdk_creates_lists_retrieves_and_deletes_a_store_with_no_undeclared_field(
    sdk,
) -> None:
    created = sdk_call(
        "POST /knowledge-stores",
        sdk.knowledge_stores.create,
        name="ingest",
        description="Clips to ingest.",
        metadata={"team": "video"},
    )
    assert created.id.startswith("ks_")
    assert (created.name, created.description, created.item_count) == (
        "ingest",
        "Clips to ingest.",
        0,
    )
    assert created.metadata == {"team": "video"}
    assert created.created_at is not None
    assert created.updated_at is not None

    stores = listed(
        "GET /knowledge-stores",
        sdk.knowledge_stores.list(page_limit=1),
        KnowledgeStoresListResponse,
    )
    ids = [s.id for s in stores]
    assert created.id in ids
    assert DEMO_STORE_ID in ids  # the built-in stores parse as well
    assert len(ids) == len(set(ids))

    fetched = sdk_call(
        "GET /knowledge-stores/{id}", sdk.knowledge_stores.retrieve, created.id
    )
    assert fetched == created

    assert sdk.knowledge_stores.delete(created.id) is None
    with pytest.raises(SdkApiError) as caught:
        sdk.knowledge_stores.retrieve(created.id)
    assert caught.value.status_code == 404
    remaining = listed(
        "GET /knowledge-stores",
        sdk.knowledge_stores.list(page_limit=50),
        KnowledgeStoresListResponse,
    )
    assert created.id not in [s.id for s in remaining]


# -- assets --------------------------------------------------------------------------


def test_a_direct_upload_parses_as_processing_then_ready_with_size_and_duration(
    sdk, tmp_path
) -> None:
    path = sample_video(tmp_path / "harbour.mp4", seconds=30)
    asset = direct(sdk, path)
    assert asset.id.startswith("asset")
    assert (asset.method, asset.status, asset.filename) == (
        "direct",
        "processing",
        "harbour.mp4",
    )
    assert asset.method in names(AssetMethod)
    assert asset.created_at is not None

    ready = wait_asset(sdk, asset.id)
    assert ready.status == "ready"
    assert ready.file_type == "video/mp4"
    assert ready.size == path.stat().st_size
    assert ready.duration == pytest.approx(30.0)
    assert ready.error is None


def test_a_direct_upload_keeps_its_user_metadata_as_the_sdk_models_it(
    sdk, tmp_path
) -> None:
    path = sample_video(tmp_path / "clip.mp4", seconds=10)
    asset = direct(sdk, path, user_metadata='{"sha256": "abc", "take": 3}')
    assert asset.user_metadata == {"sha256": "abc", "take": 3}
    ready = wait_asset(sdk, asset.id)
    assert ready.user_metadata == {"sha256": "abc", "take": 3}


def test_a_url_import_parses_and_becomes_ready_without_fetching(sdk) -> None:
    asset = sdk_call(
        "POST /assets (url)", sdk.assets.create, method="url", url=URL_VIDEO
    )
    assert (asset.method, asset.status, asset.filename) == (
        "url",
        "processing",
        "a.mp4",
    )
    ready = wait_asset(sdk, asset.id)
    assert ready.status == "ready"
    assert ready.method == "url"
    assert ready.error is None


def test_a_direct_upload_of_text_ends_failed_with_a_container_error(sdk) -> None:
    asset = sdk_call(
        "POST /assets (direct, text)",
        sdk.assets.create,
        method="direct",
        file=("notes.mp4", b"these are meeting notes, not a video\n" * 20, "video/mp4"),
    )
    assert asset.status == "processing"
    failed = wait_asset(sdk, asset.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "container" in failed.error.message
    assert failed.size is None  # set on ready only


def test_the_sdk_lists_every_page_of_assets_and_deletes_one(sdk, tmp_path) -> None:
    made = [
        direct(sdk, sample_video(tmp_path / f"clip{i}.mp4", seconds=5 + i)).id
        for i in range(4)
    ]
    made.append(
        sdk_call(
            "POST /assets (url)", sdk.assets.create, method="url", url=URL_VIDEO
        ).id
    )
    for asset_id in made:
        wait_asset(sdk, asset_id)
    assets = listed("GET /assets", sdk.assets.list(page_limit=2), AssetsListResponse)
    assert [a.id for a in assets] == made[::-1]  # newest first
    assert all(a.status == "ready" for a in assets)
    only = listed(
        "GET /assets?filename",
        sdk.assets.list(filename="CLIP2", page_limit=50),
        AssetsListResponse,
    )
    assert [a.id for a in only] == [made[2]]

    assert sdk.assets.delete(made[0]) is None
    with pytest.raises(SdkApiError) as caught:
        sdk.assets.retrieve(made[0])
    assert caught.value.status_code == 404
    after = listed("GET /assets", sdk.assets.list(page_limit=50), AssetsListResponse)
    assert [a.id for a in after] == made[:0:-1]


def test_the_sdk_lists_assets_by_id_and_by_type(sdk, tmp_path) -> None:
    made = [
        direct(sdk, sample_video(tmp_path / f"clip{i}.mp4", seconds=5 + i)).id
        for i in range(3)
    ]

    def ids(**filters: Any) -> list[str]:
        pager = sdk.assets.list(page_limit=50, **filters)
        return [a.id for a in listed("GET /assets?…", pager, AssetsListResponse)]

    assert ids(asset_ids=[made[0], made[2]]) == [made[2], made[0]]  # newest first
    assert ids(asset_ids=made[1]) == [made[1]]
    assert ids(asset_ids=["asset_gone"]) == []
    assert ids(asset_types=["video", "audio"]) == made[::-1]
    assert ids(asset_types="image") == []
    assert ids(asset_ids=made[1], filename="clip0") == []


def test_the_sdk_lists_items_newest_first_or_as_sorted(sdk, tmp_path) -> None:
    store = sdk_call("POST /knowledge-stores", sdk.knowledge_stores.create, name="s")
    assets = [direct(sdk, sample_video(tmp_path / f"v{i}.mp4")) for i in range(3)]
    made = []
    for asset in assets:
        assert wait_asset(sdk, asset.id).status == "ready"
        item = sdk.knowledge_store_items.create(store.id, asset_id=asset.id)
        made.append(item.id)

    def ids(**options: Any) -> list[str]:
        pager = sdk.knowledge_store_items.list(store.id, page_limit=2, **options)
        items = listed("GET …/items?…", pager, KnowledgeStoreItemsListResponse)
        return [i.id for i in items]

    assert ids() == made[::-1]  # the SDK's default: created_at, desc
    assert ids(sort_by="created_at", sort_option="asc") == made
    assert ids(sort_by="updated_at", sort_option="desc") == made[::-1]
    with pytest.raises(SdkApiError) as caught:
        ids(sort_by="name")
    assert caught.value.status_code == 400


# -- items ---------------------------------------------------------------------------


def test_an_item_moves_from_queued_to_ready_and_every_state_parses(
    sdk, tmp_path
) -> None:
    store = sdk_call(
        "POST /knowledge-stores", sdk.knowledge_stores.create, name="items"
    )
    asset = direct(sdk, sample_video(tmp_path / "pottery.mp4", seconds=20))
    assert wait_asset(sdk, asset.id).status == "ready"

    item = sdk_call(
        "POST /knowledge-stores/{id}/items",
        sdk.knowledge_store_items.create,
        store.id,
        asset_id=asset.id,
        metadata={"sha256": "f" * 64, "tags": ["clay", "wheel"]},
    )
    assert item.id.startswith("ksi_")
    assert (item.asset_id, item.asset_type, item.status) == (
        asset.id,
        "video",
        "queued",
    )
    assert item.metadata == {"sha256": "f" * 64, "tags": ["clay", "wheel"]}
    assert item.system_metadata.filename == "pottery.mp4"
    assert item.system_metadata.duration == pytest.approx(20.0)

    seen = [item.status]
    deadline = time.monotonic() + 5
    while seen[-1] != "ready" and time.monotonic() < deadline:
        time.sleep(0.01)
        got = sdk_call(
            "GET /knowledge-stores/{id}/items/{item_id}",
            sdk.knowledge_store_items.retrieve,
            store.id,
            item.id,
        )
        assert got.status in names(KnowledgeStoreItemStatus), got.status
        if got.status != seen[-1]:
            seen.append(got.status)
    assert seen[-1] == "ready", seen
    assert [ITEM_ORDER.index(s) for s in seen] == sorted(
        ITEM_ORDER.index(s) for s in seen
    ), seen
    assert len(seen) >= 3, f"too few intermediate states observed: {seen}"

    items = listed(
        "GET /knowledge-stores/{id}/items",
        sdk.knowledge_store_items.list(store.id, page_limit=10),
        KnowledgeStoreItemsListResponse,
    )
    assert [(i.id, i.status) for i in items] == [(item.id, "ready")]
    queued = listed(
        "GET /knowledge-stores/{id}/items?status",
        sdk.knowledge_store_items.list(store.id, status=["queued", "pending"]),
        KnowledgeStoreItemsListResponse,
    )
    assert queued == []
    stored = sdk_call(
        "GET /knowledge-stores/{id}", sdk.knowledge_stores.retrieve, store.id
    )
    assert stored.item_count == 1

    assert sdk.knowledge_store_items.delete(store.id, item.id) is None
    with pytest.raises(SdkApiError) as caught:
        sdk.knowledge_store_items.retrieve(store.id, item.id)
    assert caught.value.status_code == 404
    assert (
        listed(
            "GET /knowledge-stores/{id}/items",
            sdk.knowledge_store_items.list(store.id),
            KnowledgeStoreItemsListResponse,
        )
        == []
    )


def test_an_item_from_a_corrupt_named_file_ends_failed_and_still_parses(
    sdk, tmp_path
) -> None:
    store = sdk_call("POST /knowledge-stores", sdk.knowledge_stores.create, name="f")
    asset = direct(sdk, sample_video(tmp_path / "corrupt_take.mp4", seconds=8))
    assert wait_asset(sdk, asset.id).status == "ready"
    item = sdk_call(
        "POST /knowledge-stores/{id}/items",
        sdk.knowledge_store_items.create,
        store.id,
        asset_id=asset.id,
        asset_type="video",
    )
    deadline = time.monotonic() + 5
    while item.status not in {"ready", "failed"} and time.monotonic() < deadline:
        time.sleep(0.02)
        item = sdk_call(
            "GET /knowledge-stores/{id}/items/{item_id}",
            sdk.knowledge_store_items.retrieve,
            store.id,
            item.id,
        )
    assert item.status == "failed"
    failed = listed(
        "GET /knowledge-stores/{id}/items?status=failed",
        sdk.knowledge_store_items.list(store.id, status="failed"),
        KnowledgeStoreItemsListResponse,
    )
    assert [i.id for i in failed] == [item.id]


# -- multipart uploads ---------------------------------------------------------------


def put_part(url: str, data: bytes) -> str:
    """PUT one part to its URL as the SDK's wrapper does (no key); its ETag."""
    response = httpx.put(
        url, content=data, headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text
    return response.headers["etag"].strip('"')


def session(sdk: TwelveLabs, upload_id: str) -> GetUploadStatusResponse:
    """The upload's status, whole: the SDK's pager keeps only the chunks."""
    pager = sdk_call(
        "GET /assets/multipart-uploads/{id}", sdk.multipart_upload.get_status, upload_id
    )
    assert pager.response is not None
    body = pager.response._response.json()
    try:
        parsed = parse_obj_as(GetUploadStatusResponse, body)
    except pydantic.ValidationError as exc:
        pytest.fail(f"GetUploadStatusResponse cannot parse the emulator's:\n{exc}")
    return clean(parsed, "GET /assets/multipart-uploads/{id}")


def test_a_multipart_upload_walks_every_endpoint_through_the_sdk(sdk, tmp_path) -> None:
    path = sample_video(tmp_path / "long_take.mp4", seconds=30, size=200_000)
    data = path.read_bytes()
    upload = sdk_call(
        "POST /assets/multipart-uploads",
        sdk.multipart_upload.create,
        filename=path.name,
        type="video",
        total_size=len(data),
        user_metadata={"sha256": "0" * 64},
    )
    size = upload.chunk_size
    assert size == 64 << 10
    assert upload.total_chunks == 4 == -(-len(data) // size)
    assert [u.chunk_index for u in upload.upload_urls] == [1, 2, 3, 4]
    assert upload.upload_headers == {}
    # The session lasts 24 h, its part URLs 1 h (docs/protocol.md).
    left = upload.expires_at.timestamp() - time.time()
    assert 23 * 3600 < left <= 24 * 3600 + 5, upload.expires_at
    for url in upload.upload_urls:
        assert 3000 < url.expires_at.timestamp() - time.time() <= 3605
    parts = {i: data[(i - 1) * size : i * size] for i in range(1, 5)}

    incomplete = listed(
        "GET /assets/multipart-uploads",
        sdk.multipart_upload.list_incomplete_uploads(),
        ListIncompleteUploadsResponse,
    )
    assert [
        (u.upload_id, u.total_size, u.chunk_size, u.total_chunks) for u in incomplete
    ] == [(upload.upload_id, len(data), size, 4)]
    assert incomplete[0].status in names(MultipartUploadStatusType)

    urls = {u.chunk_index: u.url for u in upload.upload_urls}
    etags = {i: put_part(urls[i], parts[i]) for i in (1, 2, 3)}

    def report(*ids: int) -> Any:
        return sdk_call(
            "POST /assets/multipart-uploads/{id}",
            sdk.multipart_upload.report_chunk_batch,
            upload.upload_id,
            completed_chunks=[
                {
                    "chunk_index": i,
                    "proof": etags[i],
                    "proof_type": "etag",
                    "chunk_size": len(parts[i]),
                }
                for i in ids
            ],
        )

    first = report(1, 2)
    assert (first.processed_chunks, first.duplicate_chunks, first.total_completed) == (
        2,
        0,
        2,
    )
    assert first.asset_id == upload.asset_id
    assert first.url is None  # only once every chunk is reported

    chunks = listed(
        "GET /assets/multipart-uploads/{id}",
        sdk.multipart_upload.get_status(upload.upload_id, page_limit=2),
        GetUploadStatusResponse,
    )
    assert [(c.index, c.status) for c in chunks] == [
        (1, "completed"),
        (2, "completed"),
        (3, "pending"),
    ]
    assert all(c.status in names(ChunkInfoStatus) for c in chunks)
    raw_status = session(sdk, upload.upload_id)
    assert raw_status.status == "active"
    assert (raw_status.chunks_completed, raw_status.total_size) == (2, len(data))
    assert raw_status.uploaded_size == 2 * size

    more = sdk_call(
        "POST /assets/multipart-uploads/{id}/presigned-urls",
        sdk.multipart_upload.get_additional_presigned_urls,
        upload.upload_id,
        start=4,
        count=1,
    )
    assert (more.upload_id, more.start_index, more.count) == (upload.upload_id, 4, 1)
    assert [u.chunk_index for u in more.upload_urls] == [4]
    assert more.generated_at is not None
    assert more.expires_at is not None
    etags[4] = put_part(more.upload_urls[0].url, parts[4])

    last = report(2, 3, 4)
    assert (last.processed_chunks, last.duplicate_chunks, last.total_completed) == (
        2,
        1,
        4,
    )
    assert last.url is not None
    assert upload.asset_id in last.url

    assert (
        listed(
            "GET /assets/multipart-uploads",
            sdk.multipart_upload.list_incomplete_uploads(),
            ListIncompleteUploadsResponse,
        )
        == []
    )
    done = session(sdk, upload.upload_id)
    assert done.status == "completed"
    assert done.uploaded_size == len(data)

    ready = wait_asset(sdk, upload.asset_id)
    assert (ready.status, ready.method, ready.filename) == (
        "ready",
        "multipart",
        path.name,
    )
    assert ready.size == len(data)
    assert ready.duration == pytest.approx(30.0)
    assert ready.user_metadata == {"sha256": "0" * 64}


# -- refusals, raw -------------------------------------------------------------------


def new_upload(http: httpx.Client, total_size: int = 100_000) -> dict[str, Any]:
    response = http.post(
        "/assets/multipart-uploads",
        json={"filename": "big.mp4", "type": "video", "total_size": total_size},
    )
    assert response.status_code in {200, 201}, response.text
    return response.json()


def test_an_asset_post_that_is_not_multipart_form_data_is_refused(http) -> None:
    body = refused(http.post("/assets", json={"method": "url", "url": URL_VIDEO}), 400)
    assert "multipart/form-data" in body["message"]


def test_a_form_without_its_closing_boundary_is_refused(http) -> None:
    form = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="method"\r\n\r\n'
        b"url\r\n"
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="url"\r\n\r\n' + URL_VIDEO.encode()
    )
    response = http.post(
        "/assets",
        content=form,
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert "closing boundary" in refused(response, 400)["message"]


def test_a_part_put_with_a_wrong_token_is_forbidden(http) -> None:
    upload = new_upload(http)
    url = httpx.URL(upload["upload_urls"][0]["url"])
    forged = url.copy_set_param("token", "not-the-token")
    response = httpx.put(forged, content=b"\0" * upload["chunk_size"])
    refused(response, 403)


def test_a_part_put_of_the_wrong_size_is_refused(http) -> None:
    upload = new_upload(http)
    url = upload["upload_urls"][0]["url"]
    body = refused(httpx.put(url, content=b"\0" * (upload["chunk_size"] - 1)), 400)
    assert f"{upload['chunk_size']:,}" in body["message"]


def test_adding_an_item_whose_asset_is_still_processing_is_refused(http) -> None:
    # A multipart upload's asset is `processing` until every part is reported.
    upload = new_upload(http)
    store = http.post("/knowledge-stores", json={"name": "early"}).json()
    response = http.post(
        f"/knowledge-stores/{store['_id']}/items",
        json={"asset_id": upload["asset_id"]},
    )
    body = refused(response, 400)
    assert "processing" in body["message"]
    items = http.get(f"/knowledge-stores/{store['_id']}/items").json()
    assert items["data"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/knowledge-stores/ks_unknown"),
        ("DELETE", "/knowledge-stores/ks_unknown"),
        ("GET", "/knowledge-stores/ks_unknown/items"),
        ("POST", "/knowledge-stores/ks_unknown/items"),
        ("GET", "/assets/asset_unknown"),
        ("GET", "/assets/multipart-uploads/upload_unknown"),
    ],
)
def test_an_unknown_id_is_not_found(http, method, path) -> None:
    kwargs = {"json": {"asset_id": "asset_unknown"}} if method == "POST" else {}
    body = refused(http.request(method, path, **kwargs), 404)
    assert "unknown" in body["message"]


def test_the_sdk_raises_a_typed_404_for_an_unknown_store(sdk) -> None:
    with pytest.raises(SdkApiError) as caught:
        sdk.knowledge_stores.retrieve("ks_unknown")
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "resource_not_exist"
