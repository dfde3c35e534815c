"""What the chat page adds to an answer, and what the page's server keeps.

    .venv/bin/python benchmarks/web.py [--runs 20] [--conversations 200]

One emulator in a process of its own; the page's server (`python -m
langchain_jockey web`) in another, pointed at it; Debian's Chromium driven by
Playwright. For the same question:

- direct: `ChatJockey.astream` (with Jockey's steps), from the call to the first
  progress chunk and to the first answer token;
- page: from the Ask (the form's submit, in the page's clock) to the first
  Progress item and the first Answer text on screen.

The difference of the medians is what the page (server, SSE, browser) adds;
the target is under 50 ms. Then `--conversations` conversations (one question
each, 10 at a time) go through the server's API, and its resident memory is
read before (after a warm-up) and after. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from langchain_jockey import ChatJockey
from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID
from langchain_jockey.emulator._runner import spawn

QUESTION = "Who scores first?"
CHROMIUM = os.environ.get("JOCKEY_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The page's clock: the Ask (submit, before the page's own handler) and the first
# Progress item and Answer text of the newest turn.
WATCH = """() => {
  window.mark = {};
  document.addEventListener('submit', () => {
    window.mark = {ask: performance.now()};
  }, true);
  new MutationObserver(() => {
    const m = window.mark;
    if (m.ask === undefined) return;
    const turns = document.querySelectorAll('.turn');
    const turn = turns[turns.length - 1];
    if (!turn) return;
    if (m.progress === undefined && turn.querySelector('[aria-label=Progress] li'))
      m.progress = performance.now();
    const answer = turn.querySelector('[aria-label=Answer]');
    if (m.token === undefined && answer && answer.textContent)
      m.token = performance.now();
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def direct(base_url: str, runs: int) -> tuple[list[float], list[float]]:
    llm = ChatJockey(
        base_url=base_url,
        api_key=DEMO_API_KEY,
        knowledge_store_id=DEMO_STORE_ID,
        include=["intermediate_outputs"],
    )
    progress, token = [], []
    for _ in range(runs + 2):  # two to warm up
        started = time.perf_counter()
        first_step = first_text = None
        async for chunk in llm.astream(QUESTION):
            now = time.perf_counter()
            if first_step is None and (
                chunk.additional_kwargs.get("reasoning_content")
                or chunk.additional_kwargs.get("jockey_steps")
            ):
                first_step = now - started
            if first_text is None and chunk.text:
                first_text = now - started
        progress.append(1000 * (first_step or 0))
        token.append(1000 * (first_text or 0))
    return progress[2:], token[2:]


def page(url: str, runs: int) -> tuple[list[float], list[float]]:
    progress, token = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        tab = browser.new_page()
        tab.goto(url)
        tab.wait_for_function("() => !document.getElementById('ask').disabled")
        tab.evaluate(WATCH)
        for n in range(runs + 2):
            if n % 10 == 0:  # a new chat now and then: the page stays short
                tab.get_by_role("button", name="New chat").click()
            box = tab.get_by_label("Question")
            box.fill(QUESTION)
            box.press("Enter")
            tab.wait_for_function(
                "() => window.mark.token !== undefined"
                " && document.getElementById('stop').hidden"
            )
            mark = tab.evaluate("window.mark")
            progress.append(mark["progress"] - mark["ask"])
            token.append(mark["token"] - mark["ask"])
        browser.close()
    return progress[2:], token[2:]


async def conversations(url: str, count: int) -> None:
    gate = asyncio.Semaphore(10)

    async def one(client: httpx.AsyncClient) -> None:
        async with (
            gate,
            client.stream("POST", f"{url}/api/ask", json={"question": QUESTION}) as r,
        ):
            async for _ in r.aiter_bytes():
                pass

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=200)
    args = parser.parse_args()
    emulator, base_url = spawn()
    env = {k: v for k, v in os.environ.items() if "TWELVE" not in k}
    env["TWELVE_LABS_BASE_URL"] = base_url
    server = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "langchain_jockey", "web", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = next(
            line.split()[-1]
            for line in iter(server.stdout.readline, "")
            if line.startswith("Serving on")
        )
        d_progress, d_token = asyncio.run(direct(base_url, args.runs))
        p_progress, p_token = page(url, args.runs)
        asyncio.run(conversations(url, 10))  # warm up
        before = rss_kib(server.pid)
        started = time.perf_counter()
        asyncio.run(conversations(url, args.conversations))
        seconds = time.perf_counter() - started
        after = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(10)
        emulator.terminate()
        emulator.wait(10)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"ms, median (min–max) of {args.runs}:")
    print(f"  first progress step: direct astream {median(d_progress)}")
    print(f"                       page           {median(p_progress)}")
    print(f"  first answer token:  direct astream {median(d_token)}")
    print(f"                       page           {median(p_token)}")
    added_progress = statistics.median(p_progress) - statistics.median(d_progress)
    added_token = statistics.median(p_token) - statistics.median(d_token)
    met = "yes" if max(added_progress, added_token) < 50 else "NO"
    print(
        f"  the page adds {added_progress:.1f} ms to the first step and "
        f"{added_token:.1f} ms to the first token (target < 50 ms: {met})"
    )
    print(
        f"server RSS: {before / 1024:.1f} MiB after 10 conversations, "
        f"{after / 1024:.1f} MiB after {args.conversations} more "
        f"({(after - before) / args.conversations:.1f} KiB each; {seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
