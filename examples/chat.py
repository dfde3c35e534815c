"""A terminal chat with Jockey: live streaming, a spinner while it thinks, the
citations after each answer. Ctrl-C cancels the answer being streamed; Ctrl-C
or Ctrl-D at the prompt (or "exit") quits.

Answers take 30 s to 3 min on the live API: the spinner shows Jockey is working.
The answer streams on a worker thread and the main thread only waits on a
queue, so Ctrl-C never lands inside the HTTP client: the worker stops at the
next event and closes its stream itself.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from contextlib import closing
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage

from _common import jockey, mmss

FRAMES = itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
DONE = object()


def stream_into(
    llm: Any, history: list[BaseMessage], out: queue.Queue[Any], cancel: threading.Event
) -> None:
    """(Worker thread) put each chunk on `out`, then DONE or the error."""
    try:
        with closing(llm.stream(history)) as chunks:
            for chunk in chunks:
                if cancel.is_set():
                    return
                out.put(chunk)
        out.put(DONE)
    except Exception as exc:  # noqa: BLE001 - shown to the user by the main thread
        out.put(exc)


def answer(llm: Any, history: list[BaseMessage]) -> AIMessageChunk:
    """Stream one answer; KeyboardInterrupt (Ctrl-C) cancels it."""
    out: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    threading.Thread(
        target=stream_into, args=(llm, list(history), out, cancel), daemon=True
    ).start()
    started, total, speaking = time.monotonic(), None, False
    spin = sys.stdout.isatty()  # a spinner only on a terminal, not in a pipe or a log
    try:
        while True:
            try:
                item = out.get(timeout=0.1)
            except queue.Empty:
                if spin and not speaking:
                    sys.stdout.write(
                        f"\r{next(FRAMES)} Jockey is thinking… {time.monotonic() - started:4.1f}s"
                    )
                    sys.stdout.flush()
                continue
            if item is DONE:
                return total
            if isinstance(item, Exception):
                raise item
            if item.text and not speaking:
                speaking = True
                sys.stdout.write("\r" + " " * 40 + "\rJockey: " if spin else "Jockey: ")
            print(item.text, end="", flush=True)
            total = item if total is None else total + item
    except KeyboardInterrupt:
        cancel.set()
        raise


def citations(message: AIMessageChunk) -> None:
    block = next((b for b in message.content_blocks if b["type"] == "text"), None)
    for citation in (block or {}).get("annotations", []):
        extras = citation["extras"]
        marker = block["text"][citation["start_index"] : citation["end_index"]]
        span = (
            f"{mmss(extras['start_sec'])}–{mmss(extras['end_sec'])}"
            if "start_sec" in extras
            else "whole video"
        )
        print(f"  {marker} {extras.get('title')} ({span})")


def main() -> None:
    with jockey() as llm:
        print('Ask about the videos. Ctrl-C cancels an answer; "exit" quits.')
        history: list[BaseMessage] = []
        while True:
            try:
                question = input("\nYou: ").strip()
            except (EOFError, KeyboardInterrupt):
                print("\nBye.")
                return
            if question.lower() in {"exit", "quit"}:
                print("Bye.")
                return
            if not question:
                continue
            try:
                message = answer(llm, [*history, HumanMessage(question)])
            except KeyboardInterrupt:
                print("\n[cancelled]")  # the question went unanswered: not kept
                continue
            except Exception as exc:  # noqa: BLE001 - a chat shows the error and goes on
                print(f"\n[error] {exc}")
                continue
            history.append(HumanMessage(question))
            print()
            history.append(message)
            citations(message)


if __name__ == "__main__":
    main()
