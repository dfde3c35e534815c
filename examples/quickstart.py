"""Stream a Jockey answer token by token.

With TWELVE_LABS_API_KEY and TWELVE_LABS_KNOWLEDGE_STORE_ID set, this asks the
live Jockey API. Without a key it replays a bundled recorded Jockey transcript
(examples/demo_transcript.sse) through httpx.MockTransport, paced like a live
stream, so it runs anywhere with no network and no key.

    python examples/quickstart.py ["your question"]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from langchain_jockey import ChatJockey

QUESTION = (
    "When do the fishing boats leave, and when does their catch reach the market?"
)
TRANSCRIPT = Path(__file__).with_name("demo_transcript.sse")


def replay_client(pace: float = 0.04) -> httpx.Client:
    """An httpx client whose every response is the bundled transcript."""
    events = [e + b"\n\n" for e in TRANSCRIPT.read_bytes().split(b"\n\n") if e]

    def paced() -> Iterator[bytes]:
        for event in events:
            if b"output_text.delta" in event:
                time.sleep(pace)
            yield event

    def handler(request: httpx.Request) -> httpx.Response:
        del request
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=paced()
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def build_model() -> ChatJockey:
    if os.environ.get("TWELVE_LABS_API_KEY") or os.environ.get("TWELVELABS_API_KEY"):
        print("Using the live Jockey API (TWELVE_LABS_API_KEY is set).", flush=True)
        return ChatJockey()
    print(
        "No TWELVE_LABS_API_KEY: replaying a recorded Jockey transcript offline.",
        flush=True,
    )
    return ChatJockey(
        api_key="demo",
        knowledge_store_id="ks_0195d0e0-0000-7000-8000-0000000000d0",
        http_client=replay_client(),
    )


def main() -> None:
    question = " ".join(sys.argv[1:]) or QUESTION
    model = build_model()
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
