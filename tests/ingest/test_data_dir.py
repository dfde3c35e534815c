"""The emulator's data directory: what survives a restart, the disk cap, and one
emulator per directory (#32 item 9)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from langchain_jockey import JockeyIngestError, KnowledgeStore
from langchain_jockey.emulator import (
    DEMO_API_KEY,
    DEMO_STORE_ID,
    Emulator,
    EmulatorBusyError,
    sample_video,
)
from tests.ingest.conftest import FAST, add, connect, uploads

META = {
    "harbour.mp4": {
        "description": "The trawlers leave the harbour at sunrise.",
        "transcript": "00:05 Gulls follow the boats out.",
    },
    "big.mp4": {"description": "A ferry crosses the bay."},
}


def api(emu: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ready(client: httpx.Client, asset_id: str) -> dict:
    """The asset once it is processed."""
    deadline = time.monotonic() + 30
    while (asset := client.get(f"/assets/{asset_id}").json())["status"] != "ready":
        assert time.monotonic() < deadline, asset
        time.sleep(0.02)
    return asset


def test_stores_items_assets_and_files_survive_a_restart(mode, tmp_path):
    data = tmp_path / "data"
    folder = tmp_path / "v"
    folder.mkdir()
    sample_video(folder / "harbour.mp4", seconds=20)
    sample_video(folder / "big.mp4", seconds=12, size=300_000, faststart=False)
    settings = connect(Emulator(), tmp_path, multipart_threshold=100_000)
    with Emulator(data_dir=data, **FAST) as emu:
        settings |= {"base_url": emu.base_url}
        store = KnowledgeStore.create("kept", description="mine", **settings)
        results = add(mode, store, folder, metadata=lambda s: META[Path(s).name])
        demo = KnowledgeStore(knowledge_store_id=DEMO_STORE_ID, **settings)
        [in_demo] = add(mode, demo, folder / "harbour.mp4")
        with api(emu) as client:
            before = {
                r.asset_id: client.get(f"/assets/{r.asset_id}").json() for r in results
            }
        assets = {
            r.asset_id: emu.server.library.asset_file(str(r.asset_id)) for r in results
        }
    assert {m["method"] for m in before.values()} == {"direct", "multipart"}
    for result in results:  # each file kept, whole, at its asset's path
        assert assets[result.asset_id] == data / "files" / str(result.asset_id)
        assert sha256(assets[result.asset_id]) == sha256(Path(result.source))

    with Emulator(data_dir=data, **FAST) as emu, api(emu) as client:
        settings |= {"base_url": emu.base_url}
        again = KnowledgeStore(knowledge_store_id=store.knowledge_store_id, **settings)
        info = again.info()
        assert (info.name, info.description, info.counts) == (
            "kept",
            "mine",
            {"ready": 2},
        )
        items = {i.item_id: i for i in again.items()}
        assert set(items) == {r.item_id for r in results}
        for result in results:
            item = items[result.item_id]
            name = Path(result.source).name
            assert {k: item.metadata[k] for k in META[name]} == META[name]
            asset = client.get(f"/assets/{result.asset_id}").json()
            assert asset == before[result.asset_id]  # duration, size, status…
            assert (
                emu.server.library.asset_file(result.asset_id)
                == assets[result.asset_id]
            )
        # The demo store keeps what was added to it too.
        demo_items = client.get(
            f"/knowledge-stores/{DEMO_STORE_ID}/items/{in_demo.item_id}"
        )
        assert demo_items.status_code == 200
        # Answers and search see the items as before; adding again uploads nothing.
        answer = again.as_chat_model().invoke("When do the gulls follow the boats?")
        harbour = next(r.item_id for r in results if "harbour" in r.source)
        cited = [c["extras"] for b in answer.content_blocks for c in b["annotations"]]
        assert [c["item_id"] for c in cited] == [harbour]
        again_results = add(mode, again, folder)
        assert not any(r.uploaded for r in again_results)
        assert uploads(emu) == []


def test_an_unfinished_multipart_upload_goes_on_after_a_restart(tmp_path):
    data = tmp_path / "data"
    video = sample_video(tmp_path / "big.mp4", seconds=9, size=200_000, faststart=False)
    content = video.read_bytes()
    chunk = FAST["chunk_size"]
    with Emulator(data_dir=data, **FAST) as emu, api(emu) as client:
        body = {"filename": "big.mp4", "type": "video", "total_size": len(content)}
        made = client.post("/assets/multipart-uploads", json=body).json()
        first = made["upload_urls"][0]
        put = httpx.put(first["url"], content=content[:chunk])
        report = {
            "chunk_index": 1,
            "proof": put.headers["etag"].strip('"'),
            "proof_type": "etag",
            "chunk_size": chunk,
        }
        upload_path = f"/assets/multipart-uploads/{made['upload_id']}"
        client.post(upload_path, json={"completed_chunks": [report]})
    with Emulator(data_dir=data, **FAST) as emu, api(emu) as client:
        status = client.get(upload_path).json()
        assert (status["chunks_completed"], status["total_size"]) == (1, len(content))
        listed = client.get("/assets/multipart-uploads").json()["data"]
        assert [u["upload_id"] for u in listed] == [made["upload_id"]]
        urls = client.post(
            f"{upload_path}/presigned-urls", json={"start": 1, "count": 50}
        ).json()["upload_urls"]
        reports = []
        for url in urls[1:]:
            index = url["chunk_index"]
            part = content[(index - 1) * chunk : index * chunk]
            etag = httpx.put(url["url"], content=part).headers["etag"].strip('"')
            reports.append(
                {
                    "chunk_index": index,
                    "proof": etag,
                    "proof_type": "etag",
                    "chunk_size": len(part),
                }
            )
        done = client.post(upload_path, json={"completed_chunks": reports}).json()
        assert done["url"].endswith(made["asset_id"])
        path = emu.server.library.asset_file(made["asset_id"])
        assert path is not None
        assert path.read_bytes() == content  # parts of both runs, in place
        assert ready(client, made["asset_id"])["duration"] == 9.0


def test_deleting_a_store_or_an_asset_is_kept_and_frees_the_file(tmp_path):
    data = tmp_path / "data"
    video = sample_video(tmp_path / "a.mp4", seconds=10)
    with Emulator(data_dir=data, **FAST) as emu, api(emu) as client:
        store = KnowledgeStore.create("gone", **connect(emu, tmp_path))
        [result] = store.add(video)
        kept = emu.server.library.asset_file(str(result.asset_id))
        assert kept is not None
        assert kept.is_file()
        store.delete()
        assert client.delete(f"/assets/{result.asset_id}").status_code == 204
        assert not kept.exists()
    with Emulator(data_dir=data, **FAST) as emu, api(emu) as client:
        path = f"/knowledge-stores/{store.knowledge_store_id}"
        assert client.get(path).status_code == 404
        assert client.get(f"/assets/{result.asset_id}").status_code == 404
    assert list((data / "files").iterdir()) == []


def test_without_a_data_dir_nothing_is_written_and_nothing_survives(tmp_path):
    video = sample_video(tmp_path / "a.mp4", seconds=10)
    with Emulator(**FAST) as emu:
        store = KnowledgeStore.create("brief", **connect(emu, tmp_path))
        [result] = store.add(video)
        assert emu.server.library.asset_file(str(result.asset_id)) is None
    with Emulator(**FAST) as emu, api(emu) as client:
        path = f"/knowledge-stores/{store.knowledge_store_id}"
        assert client.get(path).status_code == 404


# -- the disk cap --------------------------------------------------------------------


@pytest.mark.parametrize("way", ["direct", "multipart"])
def test_an_upload_past_max_disk_gets_the_apis_413(mode, tmp_path, way):
    data = tmp_path / "data"
    first = sample_video(tmp_path / "first.mp4", seconds=10, size=150_000)
    second = sample_video(tmp_path / "second.mp4", seconds=10, size=150_000)
    threshold = 100_000 if way == "multipart" else 100_000_000
    with Emulator(data_dir=data, max_disk=200_000, **FAST) as emu, api(emu) as client:
        store = KnowledgeStore.create(
            "capped", **connect(emu, tmp_path, multipart_threshold=threshold)
        )
        [ok] = add(mode, store, first)
        assert ok.status == "ready"
        with pytest.raises(JockeyIngestError) as caught:
            add(mode, store, second)
        [refused] = caught.value.results
        assert refused.status == "failed"
        assert "--max-disk" in str(refused.error)
        assert "413" in str(refused.error) or "too large" in str(refused.error).lower()
        # As the API answers it: 413 and its error body.
        if way == "multipart":
            body = {"filename": "x.mp4", "type": "video", "total_size": 60_000}
            answer = client.post("/assets/multipart-uploads", json=body)
        else:
            answer = client.post(
                "/assets",
                data={"method": "direct"},
                files={"file": ("x.mp4", second.read_bytes(), "video/mp4")},
            )
        assert answer.status_code == 413
        assert answer.json()["code"] == "content_too_large"
        assert set(answer.json()) == {"code", "message", "docs_url"}
        assert list((data / "tmp").iterdir()) == []  # nothing half-written is left
        # Deleting an asset makes room again.
        assert client.delete(f"/assets/{ok.asset_id}").status_code == 204
        [later] = add(mode, store, second)
        assert later.status == "ready"


def test_max_disk_is_set_from_the_command_line(tmp_path):
    from langchain_jockey.emulator import spawn  # noqa: PLC0415

    proc, url = spawn("--data-dir", str(tmp_path / "data"), "--max-disk", "100K")
    try:
        with httpx.Client(base_url=url, headers={"x-api-key": DEMO_API_KEY}) as c:
            body = {"filename": "x.mp4", "type": "video", "total_size": 100_001}
            assert c.post("/assets/multipart-uploads", json=body).status_code == 413
            body["total_size"] = 100_000
            assert c.post("/assets/multipart-uploads", json=body).status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- one emulator per data directory ---------------------------------------------


def test_a_second_emulator_on_a_served_data_dir_is_refused(tmp_path):
    data = tmp_path / "data"
    with Emulator(data_dir=data) as emu:
        lock = json.loads((data / "emulator.lock").read_text())
        assert lock == {"pid": os.getpid(), "url": emu.base_url}
        with pytest.raises(EmulatorBusyError, match=emu.base_url):
            Emulator(data_dir=data).start()
    # Stopped: the lock is free, and remembers the URL (for the next start's port).
    assert json.loads((data / "emulator.lock").read_text()) == {"url": emu.base_url}
    with Emulator(data_dir=data):
        pass


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


@pytest.mark.parametrize("pid", ["dead", "alive, not an emulator"])
def test_a_stale_lock_is_taken_over(tmp_path, pid):
    data = tmp_path / "data"
    data.mkdir()
    stale = {"pid": dead_pid() if pid == "dead" else os.getpid()}
    stale["url"] = "http://127.0.0.1:9/v1.3"  # nothing answers there
    (data / "emulator.lock").write_text(json.dumps(stale))
    with Emulator(data_dir=data) as emu:
        lock = json.loads((data / "emulator.lock").read_text())
        assert lock == {"pid": os.getpid(), "url": emu.base_url}


def test_a_direct_upload_cut_short_leaves_no_file_and_frees_its_room(tmp_path):
    data = tmp_path / "data"
    with Emulator(data_dir=data, **FAST) as emu:
        head = (
            "POST /v1.3/assets HTTP/1.1\r\nhost: x\r\n"
            f"x-api-key: {emu.api_key}\r\n"
            "content-type: multipart/form-data; boundary=b\r\n"
            "content-length: 1000000\r\n\r\n"
            '--b\r\ncontent-disposition: form-data; name="file"; filename="a.mp4"\r\n'
            "\r\n"
        )
        with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
            sock.sendall(head.encode() + b"\0" * 300_000)
            deadline = time.monotonic() + 30
            while emu.server.library.disk.used < 250_000:  # type: ignore[union-attr]
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert len(list((data / "tmp").iterdir())) == 1  # arriving
        deadline = time.monotonic() + 30
        while list((data / "tmp").iterdir()) or emu.server.library.disk.used:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the cut upload was kept"
            time.sleep(0.01)
