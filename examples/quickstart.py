"""Stream a Jockey answer token by token.

With TWELVE_LABS_API_KEY and TWELVE_LABS_KNOWLEDGE_STORE_ID set, this asks the
live Jockey API. Without a key it starts the local Jockey emulator (a demo
knowledge store of invented videos) on a free loopback port and asks it, paced
like the real thing, so it runs anywhere with no network and no key.

    python examples/quickstart.py ["your question"]
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from langchain_jockey import ChatJockey

QUESTION = "When do the fishing boats leave, and where does their catch end up?"


def build_model(stack: ExitStack) -> ChatJockey:
    if os.environ.get("TWELVE_LABS_API_KEY") or os.environ.get("TWELVELABS_API_KEY"):
        print("Using the live Jockey API (TWELVE_LABS_API_KEY is set).", flush=True)
        return ChatJockey()
    from langchain_jockey.emulator import Emulator

    emulator = stack.enter_context(
        Emulator(first_token_delay=1.0, keepalive_interval=0.25, delta_delay=0.03)
    )
    print(
        f"No TWELVE_LABS_API_KEY: using the local Jockey emulator at {emulator.base_url}.",
        flush=True,
    )
    return ChatJockey(**emulator.chat_kwargs())


def main() -> None:
    question = " ".join(sys.argv[1:]) or QUESTION
    with ExitStack() as stack:
        model = build_model(stack)
        print(f"Q: {question}\nA: ", end="", flush=True)
        answer = None
        for chunk in model.stream(question):
            print(chunk.text, end="", flush=True)
            answer = chunk if answer is None else answer + chunk
        assert answer is not None
        meta, usage = answer.response_metadata, answer.usage_metadata or {}
        print(
            f"\n\n[session {meta['session_id']} · status {meta['status']} · "
            f"{usage.get('input_tokens')} in / {usage.get('output_tokens')} out tokens]"
        )


if __name__ == "__main__":
    main()
