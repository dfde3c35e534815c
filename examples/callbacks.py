"""A callback handler that receives tokens and shows Jockey's intermediate steps live."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from _common import jockey


class Progress(BaseCallbackHandler):
    """Prints Jockey's commentary, its tool steps and the answer as they arrive."""

    def __init__(self) -> None:
        self.thinking = False

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        extra = chunk.message.additional_kwargs if chunk is not None else {}
        if extra.get("reasoning_content"):
            if not self.thinking:
                print("[thinking] ", end="")
                self.thinking = True
            print(extra["reasoning_content"], end="", flush=True)
        for step in extra.get("jockey_steps", []):
            if step["type"] == "function_call":
                args = json.loads(step["arguments"] or "{}")
                print(f"\n[tool] {step['name']}({args.get('query', '')!r})", flush=True)
            else:
                print(
                    f"[tool result] {len(json.loads(step['output'] or '[]'))} moments found",
                    flush=True,
                )
        if token:
            if self.thinking:
                print("\n[answer] ", end="")
                self.thinking = False
            print(token, end="", flush=True)


with jockey(streaming=True, include=["intermediate_outputs"]) as llm:
    llm.invoke("Who saves the penalty?", config={"callbacks": [Progress()]})
    print()
