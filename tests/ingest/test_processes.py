"""Ingestion across processes: a killed upload resumes, memory stays flat, the CLI.

Each child is a new Python process talking to an emulator in this one, so its
memory and its death are its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import Emulator, sample_video
from tests.ingest.conftest import FAST, connect, videos

ROOT = Path(__file__).resolve().parents[2]
CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("TWELVE_LABS_", "TWELVELABS_"))
}

CHILD = """
import os, signal, sys
from pathlib import Path
from langchain_jockey import KnowledgeStore

store_id, path, state, kill_at, threshold, parts = (sys.argv[1:] + ["4"])[:6]
store = KnowledgeStore(
    knowledge_store_id=store_id,
    base_url=os.environ["JOCKEY_TEST_URL"],
    api_key=os.environ["JOCKEY_TEST_KEY"],
    state_dir=Path(state),
    multipart_threshold=int(threshold),
    part_concurrency=int(parts),
    poll_interval=0.02,
)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


peak = [0]


def watch(event):
    peak[0] = max(peak[0], rss())  # sampled at every block sent and every poll
    if event.kind == "uploading" and event.bytes_sent >= int(kill_at) > 0:
        os.kill(os.getpid(), signal.SIGKILL)

store.items()  # the client and its connection exist before the baseline
before = rss()
results = store.add(path, on_progress=watch)
print(results[0].status, max(peak[0], rss()) - before)
"""


def child(emu: Emulator, *args: object) -> subprocess.CompletedProcess[str]:
    env = {**CLEAN_ENV, "JOCKEY_TEST_URL": emu.base_url, "JOCKEY_TEST_KEY": emu.api_key}
    return subprocess.run(  # noqa: S603 - this interpreter, our script
        [sys.executable, "-c", textwrap.dedent(CHILD), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _count(emu: Emulator, method: str, prefix: str) -> int:
    return sum(
        1 for r in emu.requests if r.method == method and r.path.startswith(prefix)
    )


def test_an_upload_killed_midway_resumes_without_sending_confirmed_parts_again(
    emulator, tmp_path
):
    store = KnowledgeStore.create("resume", **connect(emulator, tmp_path))
    video = sample_video(tmp_path / "match.mp4", seconds=60, size=1_000_000)  # 16 parts
    part = FAST["chunk_size"]
    # One part at a time: parts 1-10 are reported (10 a report, as the SDK
    # does) before part 11 goes, and the kill comes during part 12.
    killed = child(
        emulator, store.knowledge_store_id, video, tmp_path / "state", 12 * part, 1, 1
    )
    assert killed.returncode == -9, killed.stderr
    first_puts = _count(emulator, "PUT", "/emulator-uploads/")
    confirmed = {
        c["chunk_index"]
        for r in emulator.requests
        if r.method == "POST" and r.path.startswith("/v1.3/assets/multipart-uploads/")
        for c in r.body.get("completed_chunks", ())
    }
    assert confirmed == set(range(1, 11))
    assert 11 <= first_puts < 16
    again = KnowledgeStore(
        knowledge_store_id=store.knowledge_store_id,
        **connect(emulator, tmp_path, multipart_threshold=1),
    )
    result = again.add(video)[0]
    assert (result.status, result.uploaded) == ("ready", True)
    resent = _count(emulator, "PUT", "/emulator-uploads/") - first_puts
    assert resent == 16 - len(confirmed)  # only what was not confirmed
    assert _count(emulator, "POST", "/v1.3/assets/multipart-uploads") > 0
    created = [
        r
        for r in emulator.requests
        if (r.method, r.path) == ("POST", "/v1.3/assets/multipart-uploads")
    ]
    assert len(created) == 1  # the same upload, continued
    assert list((tmp_path / "state").glob("*.json")) == []  # the journal is cleared


@pytest.mark.slow
@pytest.mark.parametrize("path", ["direct", "multipart"])
def test_memory_while_a_200_mb_file_uploads_is_bounded_by_the_part_size(tmp_path, path):
    with Emulator(asset_time=0.05, index_time=0.1, request_timeout=120) as emu:
        store = KnowledgeStore.create("big", **connect(emu, tmp_path))
        video = sample_video(tmp_path / "big.mp4", seconds=600, size=200_000_000)
        threshold = 200_000_000 if path == "direct" else 50_000_000
        done = child(emu, store.knowledge_store_id, video, tmp_path / "s", 0, threshold)
        assert done.returncode == 0, done.stderr
        status, growth = done.stdout.split()
        assert status == "ready"
        part = emu.config.chunk_size  # 8 MiB
        print(f"{path}: peak RSS grew {int(growth) / 2**20:.1f} MiB for a 200 MB file")
        # Parts go 4 at once (part_concurrency), each on a thread reading 1 MiB
        # blocks and hashing gaps; measured 11 MiB with one malloc arena and
        # 14.5-16.5 MiB with glibc's arena per thread. 5 MiB per part in flight
        # stays far below holding parts (8 MiB each) or the file.
        in_flight = KnowledgeStore.model_fields["part_concurrency"].default
        limit = 2 * part if path == "direct" else 5 * 2**20 * in_flight
        assert int(growth) < limit, f"{int(growth):,} bytes"
        if path == "multipart":
            assert _count(emu, "PUT", "/emulator-uploads/") == 24  # 200 MB / 8 MiB


def _cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-m", "langchain_jockey", "ingest", *args],
        env=env or CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_the_cli_ingests_a_folder_and_prints_the_store_and_a_chatjockey_line(tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    done = _cli(str(folder), "--create", "Demo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "No TWELVE_LABS_API_KEY: using the local library's Jockey emulator at "
    )
    url = lines[0].split(" at ", 1)[1].split(" ", 1)[0]
    store_id = lines[-4].split(": ")[1]
    assert store_id.startswith("ks_")
    assert lines[-3] == (
        f"Ask it: python -m langchain_jockey ask --store {store_id} "
        '"What happens in these videos?"'
    )
    assert lines[-1] == (
        f'ChatJockey(base_url="{url}", api_key="tlk_emulator_demo_key", '
        f'knowledge_store_id="{store_id}")'
    )
    assert sum(line.startswith("ok ") for line in lines) == 2
    assert "100%" in done.stderr  # the progress bars


@pytest.mark.slow
def test_the_cli_exits_non_zero_naming_each_failed_source(tmp_path):
    folder = videos(tmp_path / "v", "good.mp4")
    (folder / "broken.mp4").write_bytes(b"garbage" * 100)
    with Emulator(**FAST) as emu:
        env = {**CLEAN_ENV, "TWELVE_LABS_BASE_URL": emu.base_url}
        done = _cli(str(folder), "--create", "Demo", "--no-progress", env=env)
    assert done.returncode == 1
    assert f"using the Jockey emulator at {emu.base_url}" in done.stdout
    assert "FAIL" in done.stdout
    assert "broken.mp4" in done.stdout
    assert "1 source(s) failed" in done.stderr
    assert "ok   " in done.stdout  # the good one finished


def test_the_cli_refuses_bad_arguments(tmp_path):
    done = _cli(str(tmp_path / "missing.mp4"), "--store", "ks_x")
    assert done.returncode == 2
    assert "no such file or directory" in done.stderr
    done = _cli(str(tmp_path))  # neither --store nor --create
    assert done.returncode == 2
    assert "--store" in done.stderr


def test_the_cli_makes_no_store_when_a_source_is_bad(tmp_path):
    with Emulator(**FAST) as emu:
        env = {**CLEAN_ENV, "TWELVE_LABS_BASE_URL": emu.base_url}
        done = _cli(str(tmp_path / "typo.mp4"), "--create", "Orphan", env=env)
        made = [r for r in emu.requests if r.path == "/v1.3/knowledge-stores"]
    assert done.returncode == 2
    assert "no such file or directory" in done.stderr
    assert "Created" not in done.stdout
    assert made == []


@pytest.mark.slow
def test_the_cli_without_tqdm_prints_a_line_per_video_instead_of_failing(tmp_path):
    folder = videos(tmp_path / "v", "a.mp4", "b.mp4")
    hide_tqdm = (
        "import sys; sys.modules['tqdm'] = None; "
        "from langchain_jockey.__main__ import main; "
        f"raise SystemExit(main(['ingest', {str(folder)!r}, '--create', 'Demo']))"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-c", hide_tqdm],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'langchain-jockey[progress]'" in done.stdout
    assert re.search(r"^\[2/2\] .*: ready$", done.stdout, re.MULTILINE), done.stdout
    assert "Ask it: python -m langchain_jockey ask --store ks_" in done.stdout
