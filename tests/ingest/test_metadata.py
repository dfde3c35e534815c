"""Metadata when adding again, and stores found by name (#32 item 7).

Re-adding content with other metadata is reported (a warning and
`AddResult.previous_metadata`); `replace=True` adds the asset again as a new
item with the new metadata, without uploading, and removes the old item once
the new one is ready. On the command line, `--create NAME` reuses the one
store of that name, `--metadata KEY=VALUE` and sidecar `NAME.json` files set
item metadata.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.__main__ import main
from langchain_jockey.emulator import Emulator
from langchain_jockey.errors import JockeyInputError
from langchain_jockey.knowledge_stores import IngestEvent
from tests.ingest.conftest import add, connect, run_ingest, videos

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
    # The new item was waited for, and the old one went only once it was ready
    # (statuses never go backwards: after "skipped ready", the new item's
    # earlier statuses are not shown).
    polled = [status for kind, status, _ in steps if kind == "indexing"]
    assert polled[-1] == "ready", steps
    assert ("indexing", "ready", 0) in steps, steps
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


# -- finding stores by name ----------------------------------------------------------


def test_find_lists_the_stores_of_one_name(mode, emulator, tmp_path):
    settings = connect(emulator, tmp_path)
    one = KnowledgeStore.create("twice", **settings).knowledge_store_id
    two = KnowledgeStore.create("twice", **settings).knowledge_store_id
    KnowledgeStore.create("other", **settings)
    if mode == "sync":
        found = KnowledgeStore.find("twice", **settings)
        none = KnowledgeStore.find("nothing", **settings)
    else:
        found = asyncio.run(KnowledgeStore.afind("twice", **settings))
        none = asyncio.run(KnowledgeStore.afind("nothing", **settings))
    assert sorted(found) == sorted([one, two])
    assert none == []


# -- the command line ----------------------------------------------------------------


def open_store(emu: Emulator, store_id: str) -> KnowledgeStore:
    return KnowledgeStore(
        knowledge_store_id=store_id, base_url=emu.base_url, api_key=emu.api_key
    )


def named(emu: Emulator, name: str) -> list[str]:
    return KnowledgeStore.find(name, base_url=emu.base_url, api_key=emu.api_key)


@pytest.mark.slow  # two runs, each polling at the command's rate
@pytest.mark.usefixtures("cli_on_emulator")
def test_create_again_reuses_the_store_of_that_name_and_says_so(
    emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    code, out, err = run_ingest(capsys, str(folder), "--create", "matches", "--no-wait")
    assert code == 0, out + err
    [made] = named(emulator, "matches")
    assert f"Created knowledge store {made}" in out
    sent = sent_assets(emulator)

    videos(folder, "c.mp4")
    code, out, err = run_ingest(capsys, str(folder), "--create", "matches", "--no-wait")
    assert code == 0, out + err
    assert f"Using knowledge store {made}, the one named 'matches'" in out
    assert "Created" not in out
    assert named(emulator, "matches") == [made]
    assert len(sent_assets(emulator)) == len(sent) + 1  # only the new video
    assert open_store(emulator, made).info().item_count == 3


@pytest.mark.usefixtures("cli_on_emulator")
def test_create_with_a_name_several_stores_have_is_an_error_listing_them(
    emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    settings = {"base_url": emulator.base_url, "api_key": emulator.api_key}
    ids = [KnowledgeStore.create("dup", **settings).knowledge_store_id for _ in "ab"]
    code, out, err = run_ingest(capsys, str(folder), "--create", "dup")
    assert code == 2, out + err
    assert "2 knowledge stores are named 'dup'" in err
    assert all(i in err for i in ids)
    assert "--store" in err
    assert sent_assets(emulator) == []
    assert sorted(named(emulator, "dup")) == sorted(ids)


@pytest.mark.usefixtures("cli_on_emulator")
def test_metadata_flags_and_sidecars_set_item_metadata(emulator, capsys, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    (folder / "b.json").write_text(
        json.dumps({"team": "sidecar", "minute": 12, "tags": ["goal", "header"]})
    )
    code, out, err = run_ingest(
        capsys,
        str(folder),
        "--create",
        "tagged",
        "--metadata",
        "team=flag",
        "--metadata",
        "season=2024",
        "--metadata",
        "note=a=b",
        "--no-wait",
    )
    assert code == 0, out + err
    [store_id] = named(emulator, "tagged")
    items = {
        i.filename: own(i.metadata) for i in open_store(emulator, store_id).items()
    }
    assert items == {
        "a.mp4": {"team": "flag", "season": "2024", "note": "a=b"},
        "b.mp4": {
            "team": "sidecar",  # the sidecar's keys win
            "season": "2024",
            "note": "a=b",
            "minute": 12,
            "tags": ["goal", "header"],
        },
    }


@pytest.mark.usefixtures("cli_on_emulator")
@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"team": "x",', "the sidecar is not valid JSON"),
        ('["team"]', "a sidecar holds one flat JSON object of metadata, not list"),
        ('{"team": {"name": "x"}}', "values are strings, numbers"),
        ('{"team": null}', "values are strings, numbers"),
    ],
)
def test_a_bad_sidecar_is_named_before_anything_is_sent(
    emulator, capsys, tmp_path, content, says
):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    (folder / "b.json").write_text(content)
    code, _, err = run_ingest(capsys, str(folder), "--create", "x")
    assert code == 2
    assert str(folder / "b.json") in err
    assert says in err
    assert list(emulator.requests) == []


@pytest.mark.usefixtures("cli_on_emulator")
def test_metadata_over_the_item_limits_is_an_error_before_anything_is_sent(
    emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    code, _, err = run_ingest(
        capsys, str(folder), "--create", "x", "--metadata", f"k={'v' * 8193}"
    )
    assert code == 2
    assert "over 8,192 characters" in err
    assert list(emulator.requests) == []


@pytest.mark.usefixtures("cli_on_emulator")
@pytest.mark.parametrize("pair", ["novalue", "=value"])
def test_a_metadata_flag_that_is_not_key_value_is_a_usage_error(capsys, pair):
    with pytest.raises(SystemExit) as caught:
        main(["ingest", "a.mp4", "--create", "x", "--metadata", pair])
    assert caught.value.code == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow  # three runs, the last waiting at the command's poll rate
@pytest.mark.usefixtures("cli_on_emulator")
def test_the_command_says_what_the_store_kept_and_replace_replaces_it(
    emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "m", "--metadata", "t=1", "--no-wait"
    )
    assert code == 0, out + err
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "m", "--metadata", "t=2", "--no-wait"
    )
    assert code == 0, out + err
    assert "with other metadata, kept; --replace replaces it" in out
    assert "UserWarning" not in err
    [store_id] = named(emulator, "m")
    [old] = open_store(emulator, store_id).items()
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "m", "--metadata", "t=2", "--replace"
    )
    assert code == 0, out + err
    assert f"(replaced {old.item_id}, which had other metadata)" in out
    [new] = open_store(emulator, store_id).items()
    assert new.item_id != old.item_id
    assert own(new.metadata) == {"t": "2"}


def test_replace_with_no_wait_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["ingest", "a.mp4", "--create", "x", "--replace", "--no-wait"])
    assert caught.value.code == 2
    assert "--replace waits" in capsys.readouterr().err
