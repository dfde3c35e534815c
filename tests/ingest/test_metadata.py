"""Metadata when adding again, and stores found by name (#32 item 7).

Re-adding content with other metadata is reported (a warning and
`AddResult.previous_metadata`); `replace=True` adds the asset again as a new
item with the new metadata, without uploading, and removes the old item once
the new one is ready. On the command line, `--create NAME` reuses the one
store of that name, `--metadata KEY=VALUE` and sidecar `NAME.json` files set
item metadata.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from langchain_jockey.emulator import Emulator
from langchain_jockey.errors import JockeyInputError
from langchain_jockey.knowledge_stores import IngestEvent
from tests.ingest.conftest import add, videos

HASH = "source_sha256"


def sent_assets(emu: Emulator) -> list[str]:
    """Every request that creates an asset or sends bytes."""
    return [
        f"{r.method} {r.path}"
        for r in emu.requests
        if r.method == "PUT"
        or (r.method == "POST" and r.path.startswith("/v1.3/assets"))
    ]


def own(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != HASH}


# -- re-adding with other metadata ---------------------------------------------------


def test_re_adding_with_other_metadata_warns_and_reports_what_the_store_kept(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    add(mode, store, folder, metadata={"team": "old"})
    with pytest.warns(UserWarning, match=r"other metadata.*replace=True") as caught:
        [again] = add(mode, store, folder, metadata={"team": "new"})
    assert str(folder / "a.mp4") in str(caught[0].message)
    assert again.previous_metadata == {"team": "old"}
    assert (again.uploaded, again.replaced_item_id) == (False, None)
    [item] = store.items()
    assert own(item.metadata) == {"team": "old"}  # kept, as the warning says
    assert again.item_id == item.item_id


def test_re_adding_with_the_same_metadata_is_silent(mode, emulator, store, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4")
    add(mode, store, folder, metadata={"team": "same", "tags": ["x"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [again] = add(mode, store, folder, metadata={"team": "same", "tags": ["x"]})
    assert again.previous_metadata is None


def test_replace_adds_the_asset_again_with_the_new_metadata_and_no_upload(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    [first] = add(mode, store, folder, metadata={"team": "old"})
    before = sent_assets(emulator)
    steps: list[tuple[str, str | None, int]] = []

    def seen(event: IngestEvent) -> None:  # each step, with the removals made by then
        deleted = sum(r.method == "DELETE" for r in emulator.requests)
        steps.append((event.kind, event.status, deleted))

    [result] = add(
        mode, store, folder, metadata={"team": "new"}, replace=True, on_progress=seen
    )
    assert sent_assets(emulator) == before  # no asset made, no byte sent
    assert result.asset_id == first.asset_id
    assert result.item_id != first.item_id
    assert (result.status, result.uploaded) == ("ready", False)
    assert result.previous_metadata == {"team": "old"}
    assert result.replaced_item_id == first.item_id
    [item] = store.items()
    assert (item.item_id, own(item.metadata)) == (result.item_id, {"team": "new"})
    assert item.metadata[HASH]  # still found by its hash next time
    deletes = [r.path for r in emulator.requests if r.method == "DELETE"]
    assert deletes == [f"/v1.3/{store._path}/items/{first.item_id}"]
    # The new item was waited for, and the old one went only once it was ready.
    polled = [status for kind, status, _ in steps if kind == "indexing"]
    assert polled[-1] == "ready", steps
    assert len(polled) > 1, steps
    assert all(deleted == 0 for kind, _, deleted in steps if kind != "done"), steps
    assert steps[-1] == ("done", "ready", 1), steps


def test_replace_leaves_items_whose_metadata_is_the_same(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    [first] = add(mode, store, folder, metadata={"team": "same"})
    [again] = add(mode, store, folder, metadata={"team": "same"}, replace=True)
    assert again.item_id == first.item_id
    assert (again.previous_metadata, again.replaced_item_id) == (None, None)
    assert not [r for r in emulator.requests if r.method == "DELETE"]


def test_replace_without_waiting_is_an_input_error_before_any_request(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    before = len(emulator.requests)
    with pytest.raises(JockeyInputError, match="wait=True"):
        add(mode, store, folder, replace=True, wait=False)
    assert len(emulator.requests) == before
