"""The emulator is a server users leave running: what it keeps of uploads is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from langchain_jockey import JockeyPermissionDeniedError, KnowledgeStore
from langchain_jockey.emulator import (
    DEMO_STORE_ID,
    STORES,
    Emulator,
    _library,
    sample_video,
)
from langchain_jockey.emulator._requests import ApiError
from tests.ingest.conftest import connect


def test_the_oldest_uploads_and_assets_go_past_the_cap(emulator, monkeypatch):
    monkeypatch.setattr(_library, "_MAX_KEPT", 5)
    headers = {"x-api-key": emulator.api_key}
    body = {"filename": "a.mp4", "type": "video", "total_size": 10_000_000_000}
    with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
        made = [
            client.post("/assets/multipart-uploads", json=body).json()
            for _ in range(12)
        ]
        library = emulator.server.library
        assert len(library.uploads) == len(library.assets) == 5
        assert client.get(f"/assets/{made[0]['asset_id']}").status_code == 404
        newest = made[-1]["asset_id"]
        assert client.get(f"/assets/{newest}").status_code == 200
        # Deleting an asset also forgets its upload session.
        assert client.delete(f"/assets/{newest}").status_code == 204
        assert made[-1]["upload_id"] not in library.uploads


def _client(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key})


def test_the_demo_stores_are_never_evicted_past_the_cap(emulator, monkeypatch):
    monkeypatch.setattr(_library, "_MAX_KEPT", len(STORES) + 3)
    with _client(emulator) as client:
        made = [
            client.post("/knowledge-stores", json={"name": f"s{n}"}).json()["_id"]
            for n in range(12)
        ]
        for store_id in STORES:
            assert client.get(f"/knowledge-stores/{store_id}").status_code == 200
        kept = set(emulator.server.library.stores)
        assert kept == set(STORES) | set(made[-3:])  # the oldest new ones went


def test_nobody_can_delete_a_demo_store(emulator, mode, tmp_path):
    store = KnowledgeStore(
        knowledge_store_id=DEMO_STORE_ID, **connect(emulator, tmp_path)
    )
    delete = store.delete if mode == "sync" else lambda: asyncio.run(store.adelete())
    with pytest.raises(JockeyPermissionDeniedError, match="cannot be deleted"):
        delete()
    with _client(emulator) as client:
        refused = client.delete(f"/knowledge-stores/{DEMO_STORE_ID}")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert client.get(f"/knowledge-stores/{DEMO_STORE_ID}").status_code == 200
        made = client.post("/knowledge-stores", json={"name": "mine"}).json()["_id"]
        assert client.delete(f"/knowledge-stores/{made}").status_code == 204


STORE_BODIES = {
    "11 metadata pairs": {"metadata": {f"k{n}": "v" for n in range(11)}},
    "a 2,049-character metadata string": {"metadata": {"k": "x" * 2049}},
    "a nested metadata value": {"metadata": {"k": {"deep": 1}}},
    "a null metadata value": {"metadata": {"k": None}},
    "a 2,049-character description": {"description": "x" * 2049},
}


@pytest.mark.parametrize("extra", STORE_BODIES.values(), ids=STORE_BODIES.keys())
def test_store_metadata_past_the_documented_limits_gets_400(emulator, extra):
    with _client(emulator) as client:
        answer = client.post("/knowledge-stores", json={"name": "s", **extra})
        assert answer.status_code == 400, answer.text
        assert len(emulator.server.library.stores) == len(STORES)
        fits = {"metadata": {f"k{n}": "x" * 2048 for n in range(10)}}
        assert client.post("/knowledge-stores", json={"name": "s", **fits}).is_success


def _asset(client: httpx.Client, folder: Path) -> str:
    """A ready asset: a small direct upload."""
    video = sample_video(folder / "a.mp4").read_bytes()
    made = client.post(
        "/assets", data={"method": "direct"}, files={"file": ("a.mp4", video)}
    ).json()
    while client.get(f"/assets/{made['_id']}").json()["status"] != "ready":
        time.sleep(0.02)
    return str(made["_id"])


def test_item_metadata_lists_are_capped_like_strings(emulator, store, tmp_path):
    with _client(emulator) as client:
        asset = _asset(client, tmp_path)
        path = f"/knowledge-stores/{store.knowledge_store_id}/items"
        long_list = {"tags": ["x" * 1000] * 9}  # 9,000 characters in all
        answer = client.post(path, json={"asset_id": asset, "metadata": long_list})
        assert answer.status_code == 400, answer.text
        assert "at most 8,192 characters" in answer.json()["message"]
        fits = {"tags": ["x" * 1000] * 8}
        assert client.post(path, json={"asset_id": asset, "metadata": fits}).is_success


def test_items_per_store_and_in_all_are_capped(emulator, monkeypatch, tmp_path):
    monkeypatch.setattr(_library, "_MAX_ITEMS", 3)
    monkeypatch.setattr(_library, "_MAX_ALL_ITEMS", 5)
    with _client(emulator) as client:
        asset = _asset(client, tmp_path)
        stores = [
            client.post("/knowledge-stores", json={"name": f"s{n}"}).json()["_id"]
            for n in range(2)
        ]

        def add(store_id: str) -> httpx.Response:
            path = f"/knowledge-stores/{store_id}/items"
            return client.post(path, json={"asset_id": asset})

        assert [add(stores[0]).status_code for _ in range(4)] == [202, 202, 202, 400]
        assert "at most 3 items a store" in add(stores[0]).json()["message"]
        assert [add(stores[1]).status_code for _ in range(3)] == [202, 202, 400]
        assert "at most 5 items in all" in add(stores[1]).json()["message"]


@pytest.mark.parametrize("where", ["multipart", "direct"])
def test_asset_user_metadata_is_capped_like_item_metadata(emulator, where):
    huge = {"note": "x" * 8193}
    with _client(emulator) as client:
        if where == "multipart":
            body = {"filename": "a.mp4", "type": "video", "total_size": 10}
            answer = client.post(
                "/assets/multipart-uploads", json={**body, "user_metadata": huge}
            )
        else:
            form = {
                "method": "url",
                "url": "https://example.com/a.mp4",
                "user_metadata": json.dumps(huge),
            }
            parts = {k: (None, v) for k, v in form.items()}  # multipart/form-data
            answer = client.post("/assets", files=parts)
        assert answer.status_code == 400, answer.text
        assert emulator.server.library.assets == {}


class _EqualsSpy(str):
    """A token that fails the test if it is compared with == or !=."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        raise AssertionError("compared with ==: it stops at the first difference")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("compared with !=: it stops at the first difference")

    __hash__ = str.__hash__


def test_a_part_url_token_is_compared_in_constant_time(emulator):
    with _client(emulator) as client:
        body = {"filename": "a.mp4", "type": "video", "total_size": 10}
        made = client.post("/assets/multipart-uploads", json=body).json()
    library = emulator.server.library
    token = made["upload_urls"][0]["url"].rsplit("token=", 1)[1]
    upload, chunk = library.upload_for_part(made["upload_id"], "1", _EqualsSpy(token))
    assert (upload.upload_id, chunk) == (made["upload_id"], 1)
    with pytest.raises(ApiError) as refused:
        library.upload_for_part(made["upload_id"], "1", _EqualsSpy(token[:-1] + "!"))
    assert refused.value.status == 403


def _put_slowly(emu: Emulator, url: str, size: int, seconds: float) -> bytes:
    """PUT `size` bytes to a part URL in 8 pieces spread over `seconds`; the answer."""
    target = url.split(f"{emu.port}", 1)[1]
    head = f"PUT {target} HTTP/1.1\r\nhost: x\r\ncontent-length: {size}\r\n\r\n"
    with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
        sock.sendall(head.encode())
        piece = size // 8
        for n in range(8):
            time.sleep(seconds / 8)
            with contextlib.suppress(OSError):  # refused midway: the answer tells
                sock.sendall(b"\0" * (piece if n < 7 else size - 7 * piece))
        return sock.recv(65536)


def test_an_upload_has_a_second_more_per_declared_mb_to_arrive():
    with Emulator(request_timeout=0.3, chunk_size=1_000_000) as emu, _client(emu) as c:
        body = {"filename": "a.mp4", "type": "video", "total_size": 1_100_000}
        made = c.post("/assets/multipart-uploads", json=body).json()
        first, second = (u["url"] for u in made["upload_urls"])
        # 1 MB over 0.8 s: past request_timeout, within its 0.3 + 1.0 s.
        assert _put_slowly(emu, first, 1_000_000, 0.8).startswith(b"HTTP/1.1 200")
        # 100 kB over 0.8 s: past its 0.3 + 0.1 s.
        late = _put_slowly(emu, second, 100_000, 0.8)
        assert late.startswith(b"HTTP/1.1 408"), late[:200]
        assert b"within 0.4 s" in late
