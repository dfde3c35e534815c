"""Resolve each [N] citation marker to its video title and time range."""

from __future__ import annotations

from _common import jockey, mmss

with jockey() as llm:
    message = llm.invoke("What happens at the fish market?")
    block = next(b for b in message.content_blocks if b["type"] == "text")
    print(block["text"], "\n")
    for citation in block.get("annotations", []):
        marker = block["text"][citation["start_index"] : citation["end_index"]]
        extras = citation["extras"]
        span = (
            f"{mmss(extras['start_sec'])}–{mmss(extras['end_sec'])}"
            if "start_sec" in extras
            else "whole video"
        )
        print(f"{marker} {extras.get('title')} ({span})  {citation.get('url', '')}")
