"""Bad input to KnowledgeStore fails with a clear JockeyInputError before any request."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from langchain_jockey import JockeyIngestError, JockeyInputError, KnowledgeStore
from langchain_jockey.__main__ import main
from langchain_jockey._sources import sources_of
from langchain_jockey.emulator import sample_video
from tests.ingest.conftest import add, connect, videos


@pytest.fixture
def opened(emulator, tmp_path) -> KnowledgeStore:
    """A store object on an id that does not exist: no request may be made."""
    return KnowledgeStore(
        knowledge_store_id="ks_never_asked", **connect(emulator, tmp_path)
    )


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


CASES = {
    "missing path": (lambda d: d / "nope.mp4", "no such file or directory"),
    "empty file": (lambda d: _write(d / "empty.mp4", b""), "the file is empty"),
    "text named .mp4": (
        lambda d: _write(d / "fake.mp4", b"hello, not a video\n" * 50),
        "not a supported video",
    ),
    "png named .mov": (
        lambda d: _write(d / "pic.mov", b"\x89PNG\r\n\x1a\n" + b"\0" * 200),
        "not a supported video",
    ),
    "over 10 GB": (
        lambda d: _sparse(d / "huge.mp4", 10_000_000_001),
        "over the API's 10,000,000,000-byte limit",
    ),
    "too long": (
        lambda d: sample_video(d / "long.mp4", seconds=3 * 3600),
        "10800 s long",
    ),
    "too short": (
        lambda d: sample_video(d / "blip.mp4", seconds=2),
        "indexed from 4 s",
    ),
    "ftp URL": (lambda d: "ftp://example.com/a.mp4", "only http(s) URLs"),
    "s3 URL": (lambda d: "s3://bucket/a.mp4", "only http(s) URLs"),
    "URL without host": (lambda d: "https:///a.mp4", "names no host"),
    "folder without media": (
        lambda d: _write(d / "docs" / "readme.txt", b"x").parent,
        "holds no media files",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_sources_are_refused_before_any_request(
    mode, emulator, opened, tmp_path, case
):
    make, message = CASES[case]
    good = sample_video(tmp_path / "good.mp4", seconds=30)
    bad = make(tmp_path)
    before = len(emulator.requests)
    with pytest.raises(JockeyInputError) as caught:
        add(mode, opened, [good, bad])
    assert message in str(caught.value)
    assert emulator.requests[before:] == []


BAD_URLS = {
    "unclosed IPv6 literal": "http://[::1",
    "not an IPv6 literal": "https://[zz]/a.mp4",
    "port over 65535": "http://example.com:99999/a.mp4",
    "port 0": "http://example.com:0/a.mp4",
    "port not a number": "http://example.com:abc/a.mp4",
    "negative port": "http://example.com:-1/a.mp4",
    "NUL in the host": "http://exa\0mple.com/a.mp4",
    "NUL in the path": "http://example.com/a\0.mp4",
    "a forged header line": "http://example.com/a.mp4\r\nX-Api-Key: k",
    "300-character label": "http://" + "a" * 300 + ".com/a.mp4",
    "host over 253 characters": "http://" + "a." * 130 + "com/a.mp4",
    "empty label": "http://a..com/a.mp4",
    "bad punycode": "http://xn--/a.mp4",
    "space in the host": "http://exa mple.com/a.mp4",
    "empty host": "http:///a.mp4",
    "userinfo only": "http://user:pw@/a.mp4",
    "port only": "http://:80/a.mp4",
}


@pytest.mark.parametrize("case", list(BAD_URLS))
def test_a_malformed_url_is_refused_naming_it_before_any_request(
    mode, emulator, opened, tmp_path, case
):
    good = sample_video(tmp_path / "good.mp4", seconds=30)
    with pytest.raises(JockeyInputError, match="not a URL the API can fetch") as caught:
        add(mode, opened, [good, BAD_URLS[case]])
    assert repr(BAD_URLS[case]) in str(caught.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8600/a.mp4",
        "https://example.com./a.mp4",
        "https://user:pw@example.com:8443/a.mp4?x=1#t",
        "http://例え.jp/a.mp4",
        "HTTPS://Example.COM/a b.mp4",
    ],
)
def test_well_formed_urls_are_taken(url):
    (source,) = sources_of(url)
    assert source.url == url


BAD_METADATA = {
    "not a mapping": ["a", "b"],
    "nested": {"a": {"b": 1}},
    "null": {"a": None},
    "long value": {"a": "x" * 8193},
    "long list": {"a": ["x" * 100] * 100},
    "long string in a list": {"a": ["x" * 9000]},
    "huge number": {"a": 10**5000},
    "lone surrogate": {"a": "\ud800"},
    "lone surrogate in a list": {"a": ["ok", "\udfff"]},
    "lone surrogate in a key": {"\ud800": "v"},
    "long key": {"k" * 129: "v"},
    "too many pairs": {f"k{i}": i for i in range(50)},
    "NaN": {"a": float("nan")},
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_metadata_the_api_would_refuse_is_refused_first(
    mode, emulator, opened, tmp_path, case
):
    good = sample_video(tmp_path / "good.mp4", seconds=30)
    with pytest.raises(JockeyInputError, match="metadata"):
        add(mode, opened, good, metadata=BAD_METADATA[case])
    assert emulator.requests == []


def test_no_sources_and_wrong_types_are_refused(opened):
    with pytest.raises(JockeyInputError, match="at least one"):
        opened.add([])
    with pytest.raises(JockeyInputError, match="not int"):
        opened.add([42])  # type: ignore[list-item]


def test_a_store_object_without_an_id_says_how_to_get_one(emulator, tmp_path):
    store = KnowledgeStore(**connect(emulator, tmp_path))
    with pytest.raises(JockeyInputError, match="KnowledgeStore.create"):
        store.info()
    with pytest.raises(JockeyInputError, match="KnowledgeStore.create"):
        store.add(sample_video(tmp_path / "a.mp4"))


def test_no_key_and_bad_settings_are_refused(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    store = KnowledgeStore(knowledge_store_id="ks_x", state_dir=tmp_path)
    with pytest.raises(JockeyInputError, match="API key"):
        store.info()
    with pytest.raises(JockeyInputError, match="concurrency"):
        KnowledgeStore(concurrency=0)
    with pytest.raises(JockeyInputError, match="multipart_threshold"):
        KnowledgeStore(multipart_threshold=300_000_000)
    with pytest.raises(JockeyInputError, match="did you mean 'concurrency'"):
        KnowledgeStore(concurency=2)
    with pytest.raises(JockeyInputError, match="name"):
        KnowledgeStore.create("  ", api_key="k", base_url="http://127.0.0.1:9/v1.3")


def test_the_key_is_not_in_the_repr(tmp_path):
    store = KnowledgeStore(api_key="tlk_secret_value", state_dir=tmp_path)
    assert "tlk_secret_value" not in repr(store)


def test_progress_bars_without_tqdm_say_how_to_get_them_before_any_request(
    mode, emulator, opened, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    good = sample_video(tmp_path / "good.mp4", seconds=30)
    with pytest.raises(JockeyInputError, match=r"langchain-jockey\[progress\]"):
        add(mode, opened, good, show_progress=True)
    assert emulator.requests == []


@pytest.mark.parametrize("item_id", ["..", ".", "a/b", "a?b", ""])
def test_an_item_id_that_would_change_the_path_is_refused(
    emulator, opened, item_id
) -> None:
    with pytest.raises(JockeyInputError, match="Not an id"):
        opened.remove(item_id)
    assert emulator.requests == []


def test_a_list_value_is_measured_as_the_json_sent(tmp_path):
    video = sample_video(tmp_path / "a.mp4")
    fits = ["x" * 8188]  # ["x…x"]: 8,192 characters as JSON
    (source,) = sources_of(video, {"tags": fits})
    assert source.metadata == {"tags": fits}
    with pytest.raises(JockeyInputError, match=r"over 8,192 characters as JSON"):
        sources_of(video, {"tags": ["x" * 8188, ""]})  # ,"": 8,195


@pytest.fixture
def nested(tmp_path) -> Iterator[Callable[[int], Path]]:
    """Makes a folder with a video `levels` folders down; removes it after.

    Removed here, from the bottom up: pytest's `shutil.rmtree` recurses, and
    fails on a tree this deep.
    """
    made: list[tuple[Path, int]] = []

    def make(levels: int) -> Path:
        root = tmp_path / f"nested{len(made)}"
        deepest = root
        root.mkdir()
        made.append((root, levels))
        for _ in range(levels):  # mkdir(parents=True) recurses too
            deepest /= "d"
            deepest.mkdir()
        sample_video(deepest / "deep.mp4", seconds=30)
        return root

    yield make
    for root, levels in made:
        for depth in range(levels, -1, -1):
            folder = root.joinpath(*["d"] * depth)
            if not folder.is_dir():  # made only part of the way down
                continue
            for entry in folder.iterdir():  # its own folder "d" is gone already
                entry.unlink()
            if depth:
                folder.rmdir()


def test_a_folder_nested_over_1000_levels_is_refused_before_any_request(
    mode, emulator, opened, nested
):
    folder = nested(1001)  # Path.rglob: a RecursionError
    with pytest.raises(JockeyInputError, match="nested over 1,000 levels"):
        add(mode, opened, folder)
    assert emulator.requests == []


def test_a_file_1000_levels_down_is_found(nested):
    folder = nested(1000)
    (source,) = sources_of(folder)
    assert source.name.endswith("/d/deep.mp4")
    assert len(Path(source.name).relative_to(folder).parts) == 1001


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges")
def test_a_folder_linking_to_itself_is_walked_once(nested):
    folder = nested(2)
    sample_video(folder / "d" / "top.mp4", seconds=30)
    (folder / "d" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "d" / "linked.mp4").symlink_to(folder / "d" / "top.mp4")
    names = [Path(s.name).relative_to(folder).as_posix() for s in sources_of(folder)]
    assert names == ["d/d/deep.mp4", "d/linked.mp4", "d/top.mp4"]


# -- every bad source named once, in one error (#32 item 7) -------------------------


def test_every_bad_source_is_named_once_in_one_error(mode, store, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    missing = tmp_path / "missing.mp4"
    good = sample_video(tmp_path / "good.mp4")
    with pytest.raises(JockeyInputError) as caught:
        add(mode, store, [fake, good, missing])
    message = str(caught.value)
    assert message.count(str(fake)) == 1
    assert message.count(str(missing)) == 1
    assert "not a supported video" in message
    assert "no such file or directory" in message
    assert str(good) not in message


def test_a_bad_file_of_a_folder_is_named_once_on_its_line(
    mode, emulator, store, tmp_path
):
    folder = videos(tmp_path / "v", "good.mp4")
    (folder / "notes.mp4").write_text("not a video at all")
    with pytest.raises(JockeyIngestError) as caught:
        add(mode, store, folder)
    (bad,) = caught.value.failures
    assert not bad.error.startswith(str(folder))
    assert bad.error.startswith("not a supported video")
    (line,) = [x for x in str(caught.value).splitlines() if "notes.mp4" in x]
    assert line.count("notes.mp4") == 1, line


def test_the_command_line_names_every_bad_source(capsys, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    code = main(["ingest", str(fake), str(tmp_path / "missing.mp4"), "--create", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("fake.mp4") == 1
    assert err.count("missing.mp4") == 1
