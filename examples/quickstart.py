"""Stream a Jockey answer token by token.

python examples/quickstart.py ["your question"]
"""

from __future__ import annotations

import sys

from _common import jockey

QUESTION = "When do the fishing boats leave, and where do they unload their catch?"


def main() -> None:
    question = " ".join(sys.argv[1:]) or QUESTION
    with jockey() as llm:
        print(f"Q: {question}\nA: ", end="", flush=True)
        answer = None
        for chunk in llm.stream(question):
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
