"""`python -m langchain_jockey ingest PATH_OR_URL... (--store ks_… | --create NAME)`.

Uploads and indexes videos into a knowledge store, with progress bars (with
the `progress` extra; else a line per finished video), then
prints the store id and a ready-to-paste `ChatJockey(...)` line. Exits 1 when
any source failed (each named), 2 on bad arguments, 130 on Ctrl-C.

The key, base URL and store come from the same environment variables as
`ChatJockey` (`TWELVE_LABS_API_KEY`, `TWELVE_LABS_BASE_URL`). Without a key it
uses the local emulator, and says so: the one at `TWELVE_LABS_BASE_URL` if set
(`python -m langchain_jockey.emulator --port 8600`), else one started for this
command, whose stores end with it. Without a key it sends files only to this
machine (127.0.0.1, localhost, ::1): a base URL on any other host is an error.

Ctrl-C stops at once, whatever is under way: a multipart upload is left
resumable (its journal is kept, and the next run of the same command continues
it), a direct upload starts again next time, and an item being indexed is
found by the next run without a new upload. The command says which is which.

Everything printed that came from a file name or a server has its control
characters escaped and URL credentials hidden (`_terminal.shown`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import httpx

from langchain_jockey._client import DEFAULT_BASE_URL
from langchain_jockey._sources import Source, sources_of
from langchain_jockey._terminal import shown
from langchain_jockey.errors import JockeyError, JockeyIngestError, JockeyInputError
from langchain_jockey.knowledge_stores import AddResult, IngestEvent, KnowledgeStore

__all__ = ["INTERRUPTED", "main"]

INTERRUPTED = 130  # 128 + SIGINT: how shells report a command stopped by Ctrl-C
_LISTED = 20  # names listed per kind of unfinished source, then "…and N more"
# The emulator processes in seconds, not minutes: polled faster than the API.
_EMULATED = {"poll_interval": 0.25}
T = TypeVar("T")


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
    return parser


def _say(text: str, file: TextIO | None = None) -> None:
    """Print `text` with control characters escaped and URL credentials hidden."""
    print(shown(text), file=file or sys.stdout)


def _on_loopback(host: str) -> bool:
    """Whether `host` is this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        return False


@contextlib.contextmanager
def _connection() -> Iterator[tuple[dict[str, Any], bool]]:
    """The live API's settings when a key is set, else an emulator's, said aloud.

    Yields the settings, and whether they are those of an emulator started for
    this command (its stores end with it).

    Raises:
        JockeyInputError: no key, and a base URL on another machine: the demo
            key and the files would go to a server that is no local emulator.
    """
    configured = KnowledgeStore()  # the key and URL from the environment, as everywhere
    if configured.api_key is not None:
        yield {}, False
        return
    from langchain_jockey.emulator import DEMO_API_KEY, Emulator  # noqa: PLC0415

    url = configured.base_url
    if url != DEFAULT_BASE_URL:
        host = httpx.URL(url).host  # checked when the store was made
        if not _on_loopback(host):
            msg = (
                f"No TWELVE_LABS_API_KEY, and TWELVE_LABS_BASE_URL names {host}, "
                "another machine. Without a key, files go only to a Jockey emulator "
                "on this one (127.0.0.1, localhost or ::1). Set TWELVE_LABS_API_KEY "
                "to use that server, or point TWELVE_LABS_BASE_URL at a local "
                "emulator (python -m langchain_jockey.emulator)."
            )
            raise JockeyInputError(msg)
        _say(f"No TWELVE_LABS_API_KEY: using the Jockey emulator at {url}.")
        yield {"base_url": url, "api_key": DEMO_API_KEY, **_EMULATED}, False
        return
    with Emulator() as emu:
        _say(
            "No TWELVE_LABS_API_KEY: using a local Jockey emulator started for this "
            f"command ({emu.base_url}); its stores end with it. Set "
            "TWELVE_LABS_API_KEY for the live API."
        )
        yield {"base_url": emu.base_url, "api_key": emu.api_key, **_EMULATED}, True


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


@dataclass
class _Steps:
    """Each source's latest step, to say what a Ctrl-C left where.

    Attributes:
        sources: The sources of the command.
        lines: Print a line per finished source (when there are no bars).
        throwaway: The store is on an emulator started for this command, which
            ends with it: nothing is left to resume.
        last: Each source's latest event kind, by name.
    """

    sources: list[Source]
    lines: bool
    throwaway: bool = False
    last: dict[str, str] = field(default_factory=dict)

    def __call__(self, event: IngestEvent) -> None:
        """Take one progress event (and print it, without bars, when final)."""
        self.last[event.source] = event.kind
        if self.lines and event.kind in ("done", "failed"):
            _say(
                f"[{event.items_done}/{event.items_total}] {event.source}: "
                f"{event.status}"
            )

    def interrupted(self, store: KnowledgeStore | None) -> list[str]:
        """What became of each source that had not finished, in a few lines."""
        first = "Interrupted: stopped at once (Ctrl-C)."
        if self.throwaway:
            return [first, "The emulator started for this command ended with it."]
        threshold = store.multipart_threshold if store else 0
        kinds: dict[str, list[str]] = {}
        for source in self.sources:
            step = self.last.get(source.name)
            if step in ("done", "failed", "skipped"):
                continue
            if step in ("uploaded", "indexing"):
                kind = "uploaded"
            elif step != "uploading":
                kind = "waiting"  # hashed, or not yet begun: nothing was sent
            elif source.path is not None and source.size > threshold:
                kind = "multipart"
            else:
                kind = "direct"
            kinds.setdefault(kind, []).append(source.name)
        where = f" (journal: {store.state_dir})" if store else ""
        say = {
            "multipart": "Multipart uploads left resumable"
            + where
            + "; the same command continues them",
            "direct": "Direct uploads stopped; they start again next time",
            "uploaded": "Uploaded, not yet indexed; the next run waits for them "
            "without uploading again",
            "waiting": "Not sent yet",
        }
        lines = [first]
        for kind, text in say.items():
            names = kinds.get(kind, [])
            if names:
                more = len(names) - _LISTED
                listed = ", ".join(names[:_LISTED])
                lines.append(
                    f"{text}: {listed}" + (f", …and {more} more" if more > 0 else "")
                )
        return lines


def _interruptible(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on a new event loop; Ctrl-C cancels it at once.

    Raises:
        KeyboardInterrupt: after `work` was cancelled by Ctrl-C.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(work)
    interrupted: list[bool] = []

    def interrupt() -> None:
        interrupted.append(True)
        task.cancel()

    try:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # Not on Windows, nor off the main thread: Ctrl-C then raises
            # KeyboardInterrupt in the loop, handled below.
            loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
            raise
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        loop.close()


async def _add(
    store: KnowledgeStore, sources: list[str], steps: _Steps, **options: Any
) -> list[AddResult]:
    """`store.aadd`, closing the store's clients at the end."""
    try:
        return await store.aadd(sources, on_progress=steps, **options)
    finally:
        await store.aclose()


def _report(results: Sequence[AddResult]) -> None:
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        note = "" if result.uploaded or not result.ok else " (already in the store)"
        why = f": {result.error}" if result.error else ""
        _say(
            f"{mark} {result.source} -> {result.item_id or '-'} "
            f"{result.status}{note}{why}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = _parser().parse_args(argv)
    bars = not args.no_progress and _bars()
    store: KnowledgeStore | None = None
    steps = _Steps([], lines=not bars and not args.no_progress)
    try:
        # A bad source: an error before a store is made.
        steps.sources = sources_of(args.sources)
        with _connection() as (settings, throwaway):
            steps.throwaway = throwaway
            if args.create:
                made = KnowledgeStore.create(args.create, **settings)
                _say(f"Created knowledge store {made.knowledge_store_id}.")
                store = made
            else:
                store = KnowledgeStore(knowledge_store_id=args.store, **settings)
            add = _add(
                store, args.sources, steps, wait=not args.no_wait, show_progress=bars
            )
            try:
                results = _interruptible(add)
            except JockeyIngestError as err:
                _report(err.results)
                print(f"{len(err.failures)} source(s) failed.", file=sys.stderr)
                return 1
            _report(results)
            _say(f"\nKnowledge store: {store.knowledge_store_id}")
            _say(f'ChatJockey(knowledge_store_id="{store.knowledge_store_id}")')
            return 0
    except KeyboardInterrupt:
        for line in steps.interrupted(store):
            _say(line, sys.stderr)
        return INTERRUPTED
    except JockeyError as err:
        _say(f"{type(err).__name__}: {err}", sys.stderr)
        return 2


if __name__ == "__main__":
    code = main()
    if code == INTERRUPTED:
        # Everything of ours is closed by now, but a thread still hashing a large
        # file cannot be stopped, and the interpreter would wait for it to end.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
