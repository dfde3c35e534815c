"""The emulator is a server users leave running: what it keeps of uploads is bounded."""

from __future__ import annotations

import httpx

from langchain_jockey.emulator import _library


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
