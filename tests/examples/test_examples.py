"""Every example runs against the emulator, and its output shows what it promises."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWELVE_LABS_", "TWELVELABS_"))
        and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")  # offline planners
    },
    "JOCKEY_EMULATOR_FIRST_TOKEN_DELAY": "0.2",
    "JOCKEY_EMULATOR_DELTA_DELAY": "0.01",
    "PYTHONUNBUFFERED": "1",
}
NOTICE = "No TWELVE_LABS_API_KEY: using the local Jockey emulator at http://127.0.0.1:"


def run(name: str, streamed_marker: str | None = None) -> str:
    """Run examples/<name>.py; if given, `streamed_marker` must show up before it ends."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    seen = b""
    if streamed_marker is not None:
        while streamed_marker.encode() not in seen:
            byte = proc.stdout.read(1)
            assert byte, f"{name} ended before {streamed_marker!r}: {seen!r}"
            seen += byte
        assert proc.poll() is None, (
            f"{name}: {streamed_marker!r} arrived only at the end"
        )
    out = proc.stdout.read()  # the buffered reader: communicate() would skip its buffer
    err = proc.stderr.read() if proc.stderr else b""
    assert proc.wait(timeout=120) == 0, err.decode()
    text = (seen + out).decode()
    assert NOTICE in text.splitlines()[0]  # one line says the emulator is in use
    return text


def test_chain_streams_through_the_parser() -> None:
    out = run("chain", streamed_marker="- Under-12")
    bullets = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(bullets) >= 2
    assert all(re.search(r"\[\d+\]$", line) for line in bullets)


def test_structured_output_prints_partials_then_the_final_object() -> None:
    out = run("structured_output", streamed_marker="partial (")
    sizes = [int(m) for m in re.findall(r"partial \(\s*(\d+) chars\)", out)]
    assert len(set(sizes)) >= 3
    assert sizes[0] < sizes[-1]  # they fill in
    assert "final (2 moments):" in out
    assert "- Harbour at dawn (timelapse) 42-75s: the fishing boats leave" in out
    assert (
        "- Harbour at dawn (timelapse) 205-225s: the first fishing boats return" in out
    )


def test_sessions_continue_one_session() -> None:
    out = run("sessions")
    sessions = re.findall(r"\(session (sess_[0-9a-f-]+)\)", out)
    assert len(sessions) == 3
    assert len(set(sessions)) == 1
    answers = re.findall(r"Jockey: (.+)", out)
    assert len(answers) == 3 and len(set(answers)) == 3


def test_citations_resolve_to_titles_and_time_ranges() -> None:
    out = run("citations")
    answer = out.splitlines()[1]
    resolved = re.findall(
        r"^(\[\d+\]) (.+) \((\d\d:\d\d)–(\d\d:\d\d)\)", out, re.MULTILINE
    )
    assert len(resolved) == 3
    for marker, title, start, end in resolved:
        assert marker in answer
        assert title == "Fish market walkthrough"
        assert start < end


def test_callbacks_show_intermediate_steps_live_before_the_answer() -> None:
    out = run("callbacks", streamed_marker="[answer]")
    assert (
        out.index("[thinking] Searching")
        < out.index("[tool] search_knowledge_store")
        < out.index("[answer] In ")
    )
    assert "[tool result] 1 moments found" in out


def test_langgraph_nodes_stream_in_one_session() -> None:
    out = run("langgraph_agent", streamed_marker="[research] In")
    research = re.search(r"\[research\] (.+)", out).group(1)
    follow_up = re.search(r"\[follow_up\] (.+)", out).group(1)
    assert "saves a penalty" in research
    assert (
        "half time" in follow_up
    )  # the moment after the penalty: the session continued


class Terminal:
    """examples/chat.py on a pseudo-terminal (so Ctrl-C is a real SIGINT)."""

    def __init__(self) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal
            os.execvpe(
                sys.executable,
                [sys.executable, str(EXAMPLES / "chat.py")],
                {**ENV, "JOCKEY_EMULATOR_DELTA_DELAY": "0.05"},
            )
        self.pid, self.fd, self.screen, self.mark = pid, fd, "", 0

    def read_until(self, pattern: str, timeout: float = 30) -> str:
        """Wait for `pattern` in what was printed since the last keystrokes."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.screen[self.mark :]):
            left = deadline - time.monotonic()
            assert left > 0, (
                f"timed out waiting for {pattern!r}; screen: {self.screen[-500:]!r}"
            )
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        return self.screen

    def type(self, text: str) -> None:
        self.mark = len(self.screen)
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.slow
def test_terminal_chat_streams_spins_cites_and_cancels() -> None:
    term = Terminal()
    term.read_until(r"You: ")
    term.type("Who saves the penalty?\n")
    screen = term.read_until(r"\[1\] Under-12 football final \(03:05–03:50\)")
    assert re.search(
        f"[{'⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'}] Jockey is thinking", screen
    )  # the spinner ran first
    assert (
        "Jockey: In Under-12 football final, the red keeper Zoe saves a penalty"
        in screen
    )

    term.read_until(r"You: $")
    term.type("Summarise the football final in detail\n")
    term.read_until(r"Jockey: In Under-12")  # this answer has started streaming...
    term.type("\x03")  # ...Ctrl-C
    term.read_until(r"\[cancelled\]\s+You: $")

    term.type(
        "what happens next?\n"
    )  # the session goes on from the last *answered* turn
    screen = term.read_until(r"half time talk")
    term.read_until(r"You: $")
    term.type("exit\n")
    term.read_until("Bye.")
    assert term.wait() == 0
    assert "Traceback" not in screen


def quickstart(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run examples/quickstart.py to the end with `env`; its output, as text."""
    return run_to_end("quickstart", env, *args)


def run_to_end(
    name: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run examples/<name>.py to the end with `env`; its output, as text."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_with_a_key_the_banner_names_the_endpoint_from_the_base_url() -> None:
    from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, spawn

    proc, url = spawn("--delta-delay", "0", "--first-token-delay", "0")
    try:
        for spelling in ("TWELVE_LABS_", "TWELVELABS_"):
            env = {
                **ENV,
                spelling + "API_KEY": DEMO_API_KEY,
                spelling + "BASE_URL": url,
                spelling + "KNOWLEDGE_STORE_ID": DEMO_STORE_ID,
            }
            result = quickstart(env, "Who scores first?")
            assert result.returncode == 0, result.stderr
            first = result.stdout.splitlines()[0]
            assert first == f"Using a local Jockey server (an emulator?) at {url}."
            assert "[session sess_" in result.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_agent_streams_the_planner_progress_jockey_tokens_then_citations() -> None:
    out = run("agent", streamed_marker="  [jockey] ")
    assert "Planner: a scripted tool-calling model (offline stand-in)" in out
    lines = out.splitlines()
    asks = [i for i, line in enumerate(lines) if line.startswith("[planner] asks ")]
    assert len(asks) == 2
    first = lines[asks[0] : asks[1]]
    kinds = [line.split("]")[0].strip() + "]" for line in first if line.strip()]
    assert kinds.index("[jockey progress]") < kinds.index("[jockey]")
    assert kinds.index("[jockey]") < kinds.index("[cited moments]")
    moments = [
        line for line in first if re.match(r"^    .+ \d\d:\d\d–\d\d:\d\d$", line)
    ]
    assert moments
    sessions = re.findall(r"\[session (sess_[0-9a-f-]+)\]", out)
    assert len(sessions) == 2 and sessions[0] == sessions[1]  # one Jockey session
    assert lines[-1].startswith("[planner] According to the videos: ")


def test_multi_agent_jockey_answers_after_the_other_agents_tool_calls() -> None:
    out = run("multi_agent", streamed_marker="[jockey] ")
    assert "[scout tool result] Red played the Under-12 final" in out
    assert out.index("[scout] ") < out.index("[jockey] ")
    jockey = out.split("[jockey] ", 1)[1]
    assert "[1]" in jockey


def test_ingest_adds_a_folder_then_answers_and_finds_the_new_videos() -> None:
    out = run("ingest")
    assert re.search(r"^lighthouse_tour\.mp4: ksi_\S+ ready$", out, re.MULTILINE)
    assert re.search(r"^tram_ride\.mp4: ksi_\S+ ready$", out, re.MULTILINE)
    assert "Added again: 0 uploaded (already there)." in out
    answer = out.split("A: ", 1)[1].splitlines()[0]
    assert answer.startswith(
        "In Lighthouse tour, the lamp turns once every ten seconds (00:40–01:10) [1]"
    ), answer
    assert "Clip: Pottery class 01:20-01:50" in out


def test_retriever_rag_chain_prints_the_clips_then_a_cited_answer() -> None:
    out = run("retriever", streamed_marker="Answer: ")
    clips = re.findall(r"^  (\d)\. (.+) (\d\d:\d\d)–(\d\d:\d\d)$", out, re.MULTILINE)
    assert [int(rank) for rank, *_ in clips] == [1, 2, 3, 4]
    assert clips[0][1] == "Harbour at dawn (timelapse)"
    # "fishing" is a topic word: no clip of another topic (the bike ride) is listed.
    assert {title for _, title, *_ in clips} <= {
        "Harbour at dawn (timelapse)",
        "Fish market walkthrough",
    }
    answer = out.split("Answer: ", 1)[1]
    assert "could not find" not in answer
    assert answer.startswith(
        "In Harbour at dawn (timelapse), the first fishing boats return heavy with "
        "the catch (03:25–03:45) [1]"
    )


ONE_SHOT = [
    "quickstart",
    "chain",
    "structured_output",
    "sessions",
    "citations",
    "langgraph_agent",
    "multi_agent",
    "retriever",
    "callbacks",
]


@pytest.mark.parametrize("name", ONE_SHOT)
def test_with_a_key_and_nothing_listening_an_example_ends_in_one_line(name) -> None:
    port = free_port()  # nothing listens there
    result = run_to_end(
        name,
        {
            **ENV,
            "TWELVE_LABS_API_KEY": "tlk_secret_do_not_show",
            "TWELVE_LABS_KNOWLEDGE_STORE_ID": "ks_x",
            "TWELVE_LABS_BASE_URL": f"http://127.0.0.1:{port}/v1.3",
        },
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("JockeyConnectionError: could not connect to Jockey at ")
    assert f"127.0.0.1:{port}" in line
    assert "emulator" in line
    assert "tlk_secret_do_not_show" not in result.stderr + result.stdout


def test_with_nothing_listening_the_agent_reports_the_tool_error_and_goes_on() -> None:
    result = run_to_end(
        "agent",
        {
            **ENV,
            "TWELVE_LABS_API_KEY": "tlk_secret_do_not_show",
            "TWELVE_LABS_KNOWLEDGE_STORE_ID": "ks_x",
            "TWELVE_LABS_BASE_URL": "http://127.0.0.1:9/v1.3",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[jockey failed] The video expert could not answer (Connection)" in (
        result.stdout
    )
