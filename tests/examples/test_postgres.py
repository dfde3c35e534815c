"""examples/postgres_memory.py: two processes continue one conversation in Postgres.

The server is the machine's own (Debian's `postgresql` package), started here in
a temporary directory on a free loopback port and stopped after; a machine
without it fails these tests with how to install it, never skips them. The
Jockey session must outlive each process too, so one emulator, started apart,
serves every run (TWELVE_LABS_BASE_URL).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from langchain_jockey.emulator import DEMO_API_KEY, spawn
from tests.examples.test_examples import ENV, run_to_end
from tests.support import free_port

INSTALL = (
    "install the PostgreSQL server: `apt-get install postgresql` (Debian/Ubuntu; "
    ".ci/run does it when the binaries are missing)"
)
FIRST = "When does the first goal come after the corner kick?"
NEXT = "What happens next?"


def server_binaries() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH, else Debian's place."""
    found = shutil.which("initdb")
    places = [Path(found).resolve().parent] if found else []
    places += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for place in places:
        if all((place / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return place
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) are neither on PATH "
        f"nor under /usr/lib/postgresql/*/bin: {INSTALL}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh Postgres cluster on 127.0.0.1 for the session: its database's URL."""
    bin_dir = server_binaries()
    as_user: dict[str, Any] = {}
    root = tempfile.mkdtemp(prefix="jockey-pg-")
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as its own user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(f"running as root and there is no 'postgres' user: {INSTALL}")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def pg(*args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=timeout,
            check=False,
            **as_user,
        )
        if done.returncode != 0:
            log = Path(root, "log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(
                f"{' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}{tail}"
            )

    data, port = f"{root}/data", free_port()
    try:
        pg("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N")
        # listen on loopback only; the unix socket stays in the temporary directory
        options = f"-h 127.0.0.1 -p {port} -k {root} -F"
        try:  # stopped even if start failed late, with a postmaster already up
            pg("pg_ctl", "start", "-D", data, "-l", f"{root}/log", "-w", "-o", options)
            server = f"postgresql://postgres@127.0.0.1:{port}"
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE jockey")
            yield f"{server}/jockey"
        finally:
            with contextlib.suppress(BaseException):  # nothing running: nothing to do
                pg("pg_ctl", "stop", "-D", data, "-m", "fast", "-w")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """One emulator for every run of the module, as two machines would share the API."""
    proc, url = spawn("--first-token-delay", "0", "--delta-delay", "0")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(env: dict[str, str], *args: str) -> str:
    """One process: examples/postgres_memory.py with `args`; what it printed."""
    done = run_to_end("postgres_memory", env, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def session_of(out: str) -> str:
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"session: (sess_[0-9a-f-]+)", last)
    assert match, f"the last line is not the session: {last!r}"
    return match.group(1)


def moments(out: str) -> list[tuple[str, str]]:
    """The (start, end) of each moment the answer cites."""
    answer = re.search(r"^Jockey: (.+)$", out, re.MULTILINE)
    assert answer, out
    return re.findall(r"\((\d\d:\d\d)–(\d\d:\d\d)\)", answer.group(1))


@pytest.mark.parametrize("saver", ["sync", "async"])
def test_a_second_process_continues_the_thread_and_its_jockey_session(
    saver: str, database_url: str, emulator_url: str
) -> None:
    flags = ["--async"] if saver == "async" else []
    env = {**ENV, "TWELVE_LABS_BASE_URL": emulator_url}
    thread = f"user-{uuid.uuid4().hex[:8]}"

    # the first process reads DATABASE_URL, the second --database-url
    first = run(
        {**env, "DATABASE_URL": database_url}, *flags, "--thread", thread, FIRST
    )
    second = run(env, *flags, "--database-url", database_url, "--thread", thread, NEXT)

    name = "AsyncPostgresSaver" if saver == "async" else "PostgresSaver"
    assert f"({name}): 0 earlier messages." in first
    assert f"({name}): 2 earlier messages." in second  # read back from Postgres
    assert "using the Jockey emulator at " + emulator_url in first.splitlines()[0]
    assert session_of(first) == session_of(second)
    # the follow-up goes on from the moment the first answer cited
    (before,) = moments(first)
    after = moments(second)
    assert after, second
    assert after[0][0] >= before[1], (first, second)
    assert "equalises" in second

    other = run(
        {**env, "DATABASE_URL": database_url}, *flags, "--thread", thread + "-b", FIRST
    )
    assert "0 earlier messages." in other
    assert session_of(other) != session_of(first)  # another thread, another session
    assert moments(other) == moments(first)  # a new conversation starts over


def expire_sessions(emulator_url: str) -> None:
    """End every session of the emulator, as a restart of the server would."""
    url = emulator_url.removesuffix("/v1.3") + "/emulator/sessions/expire"
    done = httpx.post(url, json={}, headers={"x-api-key": DEMO_API_KEY}, timeout=10)
    assert done.status_code == 200
    assert done.json()["expired"] >= 1


@pytest.mark.parametrize("saver", ["sync", "async"])
def test_a_thread_in_postgres_outlives_its_jockey_session(
    saver: str, database_url: str, emulator_url: str
) -> None:
    flags = ["--async"] if saver == "async" else []
    env = {**ENV, "TWELVE_LABS_BASE_URL": emulator_url, "DATABASE_URL": database_url}
    thread = f"user-{uuid.uuid4().hex[:8]}"
    restarted = "(Jockey no longer had the thread's session: it goes on in a new one.)"

    first = run(env, *flags, "--thread", thread, FIRST)
    expire_sessions(emulator_url)  # between two processes, as a restart would
    second = run(env, *flags, "--thread", thread, NEXT)
    third = run(env, *flags, "--thread", thread, "And after that?")

    assert restarted not in first
    assert restarted in second  # no failure: a new session holds the thread
    assert "2 earlier messages." in second
    assert session_of(second) != session_of(first)
    # the new session was given the history: "what happens next?" goes on from it
    (before,) = moments(first)
    assert moments(second)[0][0] >= before[1], (first, second)
    assert restarted not in third
    assert "4 earlier messages." in third
    assert session_of(third) == session_of(second)  # the next turn continues it
