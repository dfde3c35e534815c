"""The `ingest` command line facing Ctrl-C, hostile names and text, and no key (#31).

Most tests run `main()` in this process against an emulator on loopback; the
Ctrl-C tests run the command as a child, as a user does, and signal it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.__main__ import _Steps, main
from langchain_jockey._sources import Source
from langchain_jockey.emulator import (
    DEMO_API_KEY,
    DEMO_STORE_ID,
    Emulator,
    sample_video,
)
from langchain_jockey.knowledge_stores import IngestEvent
from tests.ingest.conftest import FAST, videos
from tests.reliability.hostile import Hostile, Request, chunk, head

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = (
    "\x1b]0;pwned\x07.mp4",
    "a\nok   forged -> ksi_x ready.mp4",
    "\u202egnp.mp4",
)
FORGED_LINE = "ok   forged"


@pytest.fixture
def keyless(monkeypatch, tmp_path) -> Callable[[str], None]:
    """No key in the environment, the journal under tmp; call it with a base URL."""
    for name in list(os.environ):
        if name.startswith(("TWELVE_LABS_", "TWELVELABS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return lambda url: monkeypatch.setenv("TWELVE_LABS_BASE_URL", url)


def ingest(capsys, *args: str) -> tuple[int, str, str]:
    """`main(["ingest", *args])`: its exit status, stdout and stderr."""
    code = main(["ingest", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_printable(text: str) -> None:
    """No character of `text` can steer a terminal."""
    controls = [c for c in text if c != "\n" and (ord(c) < 32 or 0x7F <= ord(c) < 0xA0)]
    assert controls == [], text
    assert not {"\u202e", "\u2066", "\u2028"} & set(text), text


# -- 9. the terminal shows text, not control codes ---------------------------------


def test_file_names_are_printed_with_their_control_characters_escaped(
    emulator, keyless, capsys, tmp_path
):
    keyless(emulator.base_url)
    folder = videos(tmp_path / "v", *HOSTILE_NAMES)
    code, out, err = ingest(capsys, str(folder), "--create", "names")
    assert code == 0, out + err
    assert_printable(out + err)
    assert "\\x1b]0;pwned\\x07.mp4" in out  # shown, never obeyed
    assert "a\\nok   forged -> ksi_x ready.mp4" in out
    assert "\\u202egnp.mp4" in out
    assert not any(line.startswith(FORGED_LINE) for line in out.splitlines())


def error_reply(message: str) -> Callable[[Hostile, socket.socket, Request], None]:
    """A behaviour: 400 with `message` in the API's error body."""
    body = json.dumps({"code": "parameter_invalid", "message": message}).encode()

    def behaviour(server: Hostile, conn: socket.socket, request: Request) -> None:
        head(conn, status=400, headers={"content-type": "application/json"})
        chunk(server, conn, body)
        chunk(server, conn, b"")

    return behaviour


def test_server_text_is_printed_with_its_control_characters_escaped(
    keyless, capsys, tmp_path
):
    video = videos(tmp_path / "v", "a.mp4") / "a.mp4"
    hostile = "\x1b]0;pwned\x07\x1b[2J\nok   forged \x9b31m\u202e"
    server = Hostile(error_reply(hostile))
    try:
        keyless(server.url)
        code, out, err = ingest(capsys, str(video), "--create", "x")
    finally:
        server.close()
    assert code == 2
    assert_printable(out + err)
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\nok   forged \\x9b31m\\u202e" in err
    assert not any(line.startswith(FORGED_LINE) for line in (out + err).splitlines())


# -- 17. without a key: only an emulator on loopback, and no credentials shown ------


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1:8600/v1.3",
        "https://api.example.com/v1.3",
        "http://127.0.0.1.nip.io:8600/v1.3",
        "http://[2001:db8::1]:8600/v1.3",
        "http://user:s3cret@192.0.2.1:8600/v1.3",
    ],
)
def test_without_a_key_a_base_url_on_another_host_is_refused_before_any_request(
    keyless, capsys, tmp_path, url
):
    keyless(url)
    video = videos(tmp_path / "v", "a.mp4") / "a.mp4"
    code, out, err = ingest(capsys, str(video), "--create", "x")
    assert code == 2
    assert "another machine" in err
    assert "TWELVE_LABS_API_KEY" in err
    assert "s3cret" not in out + err
    assert "Created" not in out


def test_without_a_key_an_emulator_named_as_localhost_is_used(
    emulator, keyless, capsys, tmp_path
):
    url = emulator.base_url.replace("127.0.0.1", "localhost")
    keyless(url)
    video = videos(tmp_path / "v", "a.mp4") / "a.mp4"
    code, out, err = ingest(capsys, str(video), "--create", "local")
    assert code == 0, out + err
    assert f"using the Jockey emulator at {url}." in out


def test_the_closing_lines_are_printed_as_lines_not_escaped(
    emulator, keyless, capsys, tmp_path
):
    keyless(emulator.base_url)
    video = videos(tmp_path / "v", "a.mp4") / "a.mp4"
    code, out, err = ingest(capsys, str(video), "--create", "lines")
    assert code == 0, out + err
    assert "\\n" not in out, out
    assert "\nKnowledge store: ks_" in out


def test_without_a_key_ipv6_loopback_is_allowed(keyless, capsys, tmp_path):
    with socket.socket(socket.AF_INET6) as probe:  # a port nothing listens on
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    keyless(f"http://[::1]:{port}/v1.3")
    video = videos(tmp_path / "v", "a.mp4") / "a.mp4"
    code, out, err = ingest(capsys, str(video), "--create", "x")
    assert f"using the Jockey emulator at http://[::1]:{port}/v1.3." in out
    assert code == 2  # allowed, then nothing answered
    assert "another machine" not in err


def test_url_credentials_are_never_printed(emulator, keyless, capsys):
    keyless(emulator.base_url.replace("http://", "http://user:s3cret@"))
    source = "https://viewer:t0ken@videos.example.com/clip.mp4"
    code, out, err = ingest(capsys, source, "--store", DEMO_STORE_ID, "--no-wait")
    assert code == 0, out + err
    assert "s3cret" not in out + err
    assert "t0ken" not in out + err
    assert "http://***@127.0.0.1" in out
    assert "https://***@videos.example.com/clip.mp4" in out


# -- 8. Ctrl-C stops at once ---------------------------------------------------------


def child(args: list[str], emu: Emulator, cache: Path) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWELVE_LABS_", "TWELVELABS_"))
    }
    env |= {
        "TWELVE_LABS_BASE_URL": emu.base_url,
        "XDG_CACHE_HOME": str(cache),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-m", "langchain_jockey", "ingest", *args, "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never got there"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen[str]) -> tuple[float, str, str]:
    """Ctrl-C: how long the command took to exit, its stdout and stderr."""
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return time.monotonic() - started, out, err


def api(emu: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": DEMO_API_KEY})


@pytest.mark.slow
def test_ctrl_c_while_items_index_exits_at_once_with_130(tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    with Emulator(asset_time=0.05, index_time=600) as emu, api(emu) as client:
        proc = child([str(folder), "--create", "slow"], emu, tmp_path / "cache")

        def indexing() -> bool:
            stores = client.get("/knowledge-stores", params={"page_limit": 50})
            return any(
                s["item_count"] == 2 and s["name"] == "slow"
                for s in stores.json()["data"]
            )

        wait_for(indexing, proc)
        took, _, err = interrupt(proc)
    assert took < 5, f"{took:.1f} s"  # today it waits for indexing (wait_timeout)
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    assert "Uploaded, not yet indexed; the next run waits for them" in err
    assert "a.mp4" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_during_a_multipart_upload_leaves_it_resumable_and_says_so(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    big = folder / "big.mp4"
    size = 101_000_000  # past KnowledgeStore's multipart_threshold (100 MB)
    sample_video(big, seconds=600, size=size)
    cache = tmp_path / "cache"
    settings = {**FAST, "chunk_size": 256 << 10}  # 386 parts
    with Emulator(**settings) as emu, api(emu) as client:
        store = KnowledgeStore.create(
            "big", base_url=emu.base_url, api_key=DEMO_API_KEY
        ).knowledge_store_id
        proc = child([str(big), "--store", store], emu, cache)

        def uploading() -> bool:
            sessions = client.get("/assets/multipart-uploads").json()["data"]
            if not sessions:
                return False
            done = client.get(f"/assets/multipart-uploads/{sessions[0]['upload_id']}")
            return bool(done.json()["chunks_completed"])

        wait_for(uploading, proc)
        took, _, err = interrupt(proc)
        assert took < 5, f"{took:.1f} s"
        assert proc.returncode == 130, err
        assert "Multipart uploads left resumable" in err
        assert str(big) in err.split("Multipart uploads left resumable", 1)[1]
        journal = cache / "langchain-jockey" / "uploads"
        assert len(list(journal.glob("*.json"))) == 1  # kept for the next run
        again = child([str(big), "--store", store], emu, cache)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert f"ok   {big}" in out
        created = client.get("/assets/multipart-uploads").json()
    assert created["data"] == []  # the one upload was completed, not a new one
    assert list(journal.glob("*.json")) == []


def test_after_ctrl_c_the_command_says_what_each_unfinished_source_became(tmp_path):
    def source(name: str, size: int) -> Source:
        return Source(name, tmp_path / name, None, size, "video/mp4", {})

    names = {
        "part.mp4": ("uploading", 5000),  # over the threshold: multipart
        "whole.mp4": ("uploading", 500),  # direct
        "sent.mp4": ("indexing", 500),
        "hashing.mp4": ("hashing", 500),
        "ready.mp4": ("done", 500),
    }
    steps = _Steps([source(n, size) for n, (_, size) in names.items()], lines=False)
    for name, (kind, _) in names.items():
        steps(IngestEvent(kind, name))
    store = KnowledgeStore(
        api_key="k",
        knowledge_store_id="ks_x",
        multipart_threshold=1000,
        state_dir=tmp_path / "journal",
    )
    lines = steps.interrupted(store)
    assert lines == [
        "Interrupted: stopped at once (Ctrl-C).",
        (
            f"Multipart uploads left resumable (journal: {tmp_path / 'journal'}); "
            "the same command continues them: part.mp4"
        ),
        "Direct uploads stopped; they start again next time: whole.mp4",
        (
            "Uploaded, not yet indexed; the next run waits for them without "
            "uploading again: sent.mp4"
        ),
        "Not sent yet: hashing.mp4",
    ]
