"""`python -m langchain_jockey ingest PATH_OR_URL... (--store ks_… | --create NAME)`.

Uploads and indexes videos into a knowledge store, with progress bars (with
the `progress` extra; else a line per finished video), then
prints the store id and a ready-to-paste `ChatJockey(...)` line. Exits 1 when
any source failed (each named), 2 on bad arguments.

The key, base URL and store come from the same environment variables as
`ChatJockey` (`TWELVE_LABS_API_KEY`, `TWELVE_LABS_BASE_URL`). Without a key it
uses the local emulator, and says so: the one at `TWELVE_LABS_BASE_URL` if set
(`python -m langchain_jockey.emulator --port 8600`), else one started for this
command, whose stores end with it.

`python -m langchain_jockey web` serves the chat page (langchain_jockey/web/),
talking to the same Jockey `_connection` chooses.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_jockey._client import DEFAULT_BASE_URL
from langchain_jockey._sources import sources_of
from langchain_jockey.errors import JockeyError, JockeyIngestError
from langchain_jockey.knowledge_stores import AddResult, IngestEvent, KnowledgeStore
from langchain_jockey.web import _cli as web

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_jockey",
        description="Add videos to a TwelveLabs knowledge store.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest", help="upload and index files, directories or URLs"
    )
    ingest.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    target = ingest.add_mutually_exclusive_group(required=True)
    target.add_argument("--store", metavar="ks_…", help="an existing store")
    target.add_argument("--create", metavar="NAME", help="create a store named NAME")
    ingest.add_argument(
        "--no-wait", action="store_true", help="do not wait until items are ready"
    )
    ingest.add_argument(
        "--no-progress", action="store_true", help="no progress bars (no tqdm needed)"
    )
    web.add_parser(commands)  # `web`: the chat page (langchain_jockey/web/)
    return parser


@contextlib.contextmanager
def _connection() -> Iterator[dict[str, Any]]:
    """The live API's settings when a key is set, else an emulator's, said aloud."""
    configured = KnowledgeStore()  # the key and URL from the environment, as everywhere
    if configured.api_key is not None:
        yield {}
        return
    from langchain_jockey.emulator import DEMO_API_KEY, Emulator  # noqa: PLC0415

    url = configured.base_url
    if url != DEFAULT_BASE_URL:
        print(f"No TWELVE_LABS_API_KEY: using the Jockey emulator at {url}.")
        yield {"base_url": url, "api_key": DEMO_API_KEY}
        return
    with Emulator() as emu:
        print(
            "No TWELVE_LABS_API_KEY: using a local Jockey emulator started for this "
            f"command ({emu.base_url}); its stores end with it. Set "
            "TWELVE_LABS_API_KEY for the live API."
        )
        yield {"base_url": emu.base_url, "api_key": emu.api_key}


def _bars() -> bool:
    """Whether tqdm is installed (the `progress` extra) to draw progress bars."""
    try:
        import tqdm.auto  # noqa: F401, PLC0415 - only whether it imports
    except ImportError:
        print(
            "(No progress bars: pip install 'langchain-jockey[progress]' for them; "
            "printing each video as it finishes.)"
        )
        return False
    return True


def _print_step(event: IngestEvent) -> None:
    """Without bars: one line per source that finished."""
    if event.kind in ("done", "failed"):
        print(
            f"[{event.items_done}/{event.items_total}] {event.source}: {event.status}"
        )


def _report(results: Sequence[AddResult]) -> None:
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        note = "" if result.uploaded or not result.ok else " (already in the store)"
        why = f": {result.error}" if result.error else ""
        print(
            f"{mark} {result.source} -> {result.item_id or '-'} "
            f"{result.status}{note}{why}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "web":
        return web.run(args, _connection)
    bars = not args.no_progress and _bars()
    lines = None if bars or args.no_progress else _print_step
    try:
        sources_of(args.sources)  # a bad source: an error before a store is made
        with _connection() as settings:
            if args.create:
                store = KnowledgeStore.create(args.create, **settings)
                print(f"Created knowledge store {store.knowledge_store_id}.")
            else:
                store = KnowledgeStore(knowledge_store_id=args.store, **settings)
            try:
                results = store.add(
                    args.sources,
                    wait=not args.no_wait,
                    show_progress=bars,
                    on_progress=lines,
                )
            except JockeyIngestError as err:
                _report(err.results)
                print(f"{len(err.failures)} source(s) failed.", file=sys.stderr)
                return 1
            _report(results)
            print(f"\nKnowledge store: {store.knowledge_store_id}")
            print(f'ChatJockey(knowledge_store_id="{store.knowledge_store_id}")')
            return 0
    except JockeyError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
