"""A terminal chat with Jockey: live streaming, a spinner while it thinks, the
citations after each answer. Ctrl-C cancels the answer being streamed; Ctrl-C
or Ctrl-D at the prompt (or "exit") quits.

Answers take 30 s to 3 min on the live API: the spinner shows Jockey is working.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from contextlib import closing

from langchain_core.messages import BaseMessage, HumanMessage

from _common import jockey, mmss

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def spin(first_token: threading.Event) -> None:
    """Show a spinner until the first token arrives."""
    started = time.monotonic()
    for frame in itertools.cycle(FRAMES):
        if first_token.wait(0.1):
            break
        sys.stdout.write(
            f"\r{frame} Jockey is thinking… {time.monotonic() - started:4.1f}s"
        )
        sys.stdout.flush()
    sys.stdout.write("\r" + " " * 40 + "\rJockey: ")
    sys.stdout.flush()


def answer(llm, history: list[BaseMessage]):  # type: ignore[no-untyped-def]
    first_token = threading.Event()
    spinner = threading.Thread(target=spin, args=(first_token,), daemon=True)
    spinner.start()
    total = None
    try:
        with closing(
            llm.stream(history)
        ) as chunks:  # closing: Ctrl-C releases the connection at once
            for chunk in chunks:
                if chunk.text and not first_token.is_set():
                    first_token.set()
                    spinner.join()
                print(chunk.text, end="", flush=True)
                total = chunk if total is None else total + chunk
    finally:
        first_token.set()
        spinner.join()
    return total


def citations(message) -> None:  # type: ignore[no-untyped-def]
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
            history.append(HumanMessage(question))
            try:
                message = answer(llm, history)
            except KeyboardInterrupt:
                history.pop()  # the question went unanswered
                print("\n[cancelled]")
                continue
            print()
            history.append(message)
            citations(message)


if __name__ == "__main__":
    main()
