"""`python -m langchain_jockey ingest|ask`: add videos to a store, ask it.

`ingest PATH_OR_URL... (--store ks_… | --create NAME)` uploads and indexes
videos into a knowledge store, with progress bars (with the `progress` extra;
else a line per finished video), then prints the store id and the next steps
as they work: an `ask` command and a ready-to-paste `ChatJockey(...)` line.
Exits 1 when any source failed (each named), 2 on bad arguments, 130 on Ctrl-C.

`ask [--store ks_…] QUESTION` streams Jockey's answer, then lists the moments
it cites (title, time range, item).

`--create NAME` makes the store, or reuses the one store of that name (and
says so): run again, it adds what is new. Several stores of that name are an
error listing their ids. `--enrich TEXT` or `--enrich-schema FILE.json` set a
new store's enrichment (fixed once it is made: reusing a store whose
enrichment differs is an error). Item metadata comes from `--metadata
KEY=VALUE` (repeatable; string values) and from a sidecar next to each video,
`NAME.json` beside `NAME.mp4`: one flat JSON object, whose keys override
`--metadata`. Sidecars are read, and checked, before anything is sent.

The key, base URL and store come from the same environment variables as
`ChatJockey` (`TWELVE_LABS_API_KEY`, `TWELVE_LABS_BASE_URL`,
`TWELVE_LABS_KNOWLEDGE_STORE_ID`). Without a key they use a local emulator,
and say so: the one at `TWELVE_LABS_BASE_URL` if set (`python -m
langchain_jockey.emulator --port 8600`), else the one serving the local
library (`emulator.library_dir()`, under `XDG_DATA_HOME`, or
`LANGCHAIN_JOCKEY_LIBRARY`): a running one is joined, else one is started in
the background, where it stays for the next command (it stops after 30
minutes without a request). What it holds survives it. Without a key they send
files only to this machine (127.0.0.1, localhost, ::1): a base URL on any
other host is an error.

Ctrl-C stops at once, whatever is under way: a multipart upload is left
resumable (its journal is kept, and the next run of the same command continues
it), a direct upload starts again next time, and an item being indexed is
found by the next run without a new upload. The command says which is which.

Everything printed that came from a file name or a server has its control
characters escaped and URL credentials hidden (`_terminal.shown`).

`python -m langchain_jockey web` serves the chat page (langchain_jockey/web/),
talking to the same Jockey `_target` chooses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import warnings
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import httpx
from langchain_core.messages import BaseMessageChunk

from langchain_jockey._client import DEFAULT_BASE_URL
from langchain_jockey._failures import is_loopback
from langchain_jockey._output import time_range
from langchain_jockey._sources import Source, item_metadata, sources_of
from langchain_jockey._terminal import shown
from langchain_jockey.errors import (
    JockeyConnectionError,
    JockeyError,
    JockeyIngestError,
    JockeyInputError,
)
from langchain_jockey.knowledge_stores import (
    AddResult,
    IngestEvent,
    KnowledgeStore,
    enrichment_of,
)
from langchain_jockey.web import _cli as web

__all__ = ["INTERRUPTED", "main"]

INTERRUPTED = 130  # 128 + SIGINT: how shells report a command stopped by Ctrl-C
_LISTED = 20  # names listed per kind of unfinished source, then "…and N more"
_MAX_JSON = 1 << 20  # bytes of a sidecar or schema file read at most
# The emulator processes in seconds, not minutes: an add polls it faster than the API.
_EMULATED = {"poll_interval": 0.25}
T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_jockey",
        description=(
            "Ask TwelveLabs Jockey, add videos to a knowledge store, "
            "or serve the chat page."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser(
        "ask", help="ask a knowledge store; the answer streams, then its citations"
    )
    ask.add_argument("question", nargs="+", metavar="QUESTION")
    ask.add_argument(
        "--store",
        metavar="ks_…",
        help="the store (default: TWELVE_LABS_KNOWLEDGE_STORE_ID)",
    )
    ingest = commands.add_parser(
        "ingest", help="upload and index files, directories or URLs"
    )
    ingest.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    target = ingest.add_mutually_exclusive_group(required=True)
    target.add_argument("--store", metavar="ks_…", help="an existing store")
    target.add_argument("--create", metavar="NAME", help="create a store named NAME")
    ingest.add_argument(
        "--metadata",
        action="append",
        default=[],
        type=_pair,
        metavar="KEY=VALUE",
        help="item metadata for every video (repeatable; a later KEY wins); a "
        "sidecar NAME.json beside NAME.mp4 (a flat JSON object) adds its own, "
        "and its keys win",
    )
    enrich = ingest.add_mutually_exclusive_group()
    enrich.add_argument(
        "--enrich",
        metavar="TEXT",
        help="with --create: what to extract from every video, in words "
        "(fixed once the store is made)",
    )
    enrich.add_argument(
        "--enrich-schema",
        metavar="FILE.json",
        help="with --create: what to extract, as a JSON schema (an object whose "
        "every property has a description)",
    )
    ingest.add_argument(
        "--replace",
        action="store_true",
        help="a video the store holds with other metadata: add it again with "
        "the new metadata (no upload), removing the old item once it is ready",
    )
    ingest.add_argument(
        "--no-wait", action="store_true", help="do not wait until items are ready"
    )
    ingest.add_argument(
        "--no-progress", action="store_true", help="no progress bars (no tqdm needed)"
    )
    ingest.add_argument(
        "--verify",
        action="store_true",
        help="read and hash every file again, even those unchanged since last time",
    )
    web.add_parser(commands)  # `web`: the chat page (langchain_jockey/web/)
    return parser


def _pair(text: str) -> tuple[str, str]:
    """`KEY=VALUE` → `(KEY, VALUE)`; argparse reports a bad one (exit 2)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        msg = f"{text!r} is not KEY=VALUE"
        raise argparse.ArgumentTypeError(msg)
    return key, value


def _json_file(path: Path, what: str) -> Any:
    """The JSON value in the file at `path`.

    Raises:
        JockeyInputError: it cannot be read, or is not JSON; naming the file.
    """
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_JSON + 1)
    except OSError as exc:
        msg = f"{path}: the {what} cannot be read ({exc.strerror})."
        raise JockeyInputError(msg) from None
    if len(data) > _MAX_JSON:
        msg = f"{path}: the {what} is over {_MAX_JSON:,} bytes."
        raise JockeyInputError(msg)
    try:
        return json.loads(data.decode())
    except UnicodeDecodeError:
        msg = f"{path}: the {what} is not UTF-8 text."
        raise JockeyInputError(msg) from None
    except json.JSONDecodeError as exc:
        msg = (
            f"{path}: the {what} is not valid JSON ({exc.msg}, line {exc.lineno} "
            f"column {exc.colno})."
        )
        raise JockeyInputError(msg) from None


def _metadata(pairs: list[tuple[str, str]], sources: list[Source]) -> dict[str, Any]:
    """Each source's item metadata by name: `--metadata`, then its sidecar's.

    Raises:
        JockeyInputError: a sidecar that is no flat JSON object, or metadata
            the API refuses; before anything is sent.
    """
    given = dict(pairs)
    found: dict[str, Any] = {}
    for source in sources:
        metadata = dict(given)
        sidecar = source.path.with_suffix(".json") if source.path else None
        if sidecar is not None and sidecar.is_file():
            value = _json_file(sidecar, "sidecar")
            if not isinstance(value, dict):
                msg = (
                    f"{sidecar}: a sidecar holds one flat JSON object of metadata, "
                    f"not {type(value).__name__}."
                )
                raise JockeyInputError(msg)
            metadata |= item_metadata(str(sidecar), value)
        found[source.name] = item_metadata(source.name, metadata)
    return found


def _enrichment(args: argparse.Namespace) -> str | dict[str, Any] | None:
    """`--enrich` or `--enrich-schema`, as the store takes it.

    Raises:
        JockeyInputError: either one without `--create`, a schema file that is
            not JSON, or a schema the platform would refuse; naming it.
    """
    if args.enrich is None and args.enrich_schema is None:
        return None
    if not args.create:
        msg = (
            "--enrich and --enrich-schema set up a new store: use them with "
            "--create NAME (a store's enrichment cannot change once it is made)."
        )
        raise JockeyInputError(msg)
    if args.enrich is not None:
        return enrichment_of(args.enrich)
    path = Path(args.enrich_schema)
    schema = _json_file(path, "schema")
    try:
        return enrichment_of(schema)
    except JockeyInputError as exc:
        raise JockeyInputError(f"{path}: {exc}") from None


def _store(
    args: argparse.Namespace,
    enrichment: str | dict[str, Any] | None,
    settings: dict[str, Any],
) -> KnowledgeStore:
    """The store to add to: `--store`, or the one named `--create` (made if none).

    Raises:
        JockeyInputError: several stores have that name (listed), or the one
            that has it was made with another enrichment.
    """
    if not args.create:
        return KnowledgeStore(knowledge_store_id=args.store, **settings)
    name = args.create
    found = KnowledgeStore.find(name, **settings)
    if len(found) > 1:
        msg = (
            f"{len(found)} knowledge stores are named {name!r}: "
            f"{', '.join(found)}. Choose one with --store ks_…, or another name."
        )
        raise JockeyInputError(msg)
    if found:
        store = KnowledgeStore(knowledge_store_id=found[0], **settings)
        if enrichment is not None and store.info().enrichment != enrichment:
            msg = (
                f"Knowledge store {found[0]} is named {name!r} and was made with "
                "another enrichment, which cannot change. Add to it as it is with "
                f"--store {found[0]} (without --enrich), or use another name."
            )
            raise JockeyInputError(msg)
        _say(f"Using knowledge store {found[0]}, the one named {name!r}.")
        return store
    made = KnowledgeStore.create(name, enrichment=enrichment, **settings)
    _say(f"Created knowledge store {made.knowledge_store_id}.")
    return made


def _say(text: str, file: TextIO | None = None) -> None:
    """Print `text` with control characters escaped and URL credentials hidden."""
    print(shown(text), file=file or sys.stdout)


@dataclass(frozen=True)
class _Target:
    """Where a command sends its requests.

    Attributes:
        settings: `base_url` and `api_key` for an emulator; `{}` for the live
            API (its key and URL come from the environment).
        emulator: The emulator's URL, or `None` for the live API.
        started: The library whose emulator this command started (`None`
            when it joined one, or uses no library).
    """

    settings: dict[str, Any]
    emulator: str | None = None
    started: Path | None = None


def _target() -> _Target:
    """The live API when a key is set, else an emulator, said aloud.

    Without a key and without `TWELVE_LABS_BASE_URL`, the emulator is the one
    serving the local library: joined when it runs, else started in the
    background (it outlives the command).

    Raises:
        JockeyInputError: no key, and a base URL on another machine: the demo
            key and the files would go to a server that is no local emulator.
        JockeyConnectionError: the library's emulator could not be started or
            does not answer.
    """
    configured = KnowledgeStore()  # the key and URL from the environment, as everywhere
    if configured.api_key is not None:
        return _Target({})
    from langchain_jockey.emulator import (  # noqa: PLC0415 - only without a key
        DEMO_API_KEY,
        library_dir,
        serve_library,
    )

    url = configured.base_url
    if url != DEFAULT_BASE_URL:
        host = httpx.URL(url).host  # checked when the store was made
        if not is_loopback(host):
            msg = (
                f"No TWELVE_LABS_API_KEY, and TWELVE_LABS_BASE_URL names {host}, "
                "another machine. Without a key, files go only to a Jockey emulator "
                "on this one (127.0.0.1, localhost or ::1). Set TWELVE_LABS_API_KEY "
                "to use that server, or point TWELVE_LABS_BASE_URL at a local "
                "emulator (python -m langchain_jockey.emulator)."
            )
            raise JockeyInputError(msg)
        _say(f"No TWELVE_LABS_API_KEY: using the Jockey emulator at {url}.")
        return _Target({"base_url": url, "api_key": DEMO_API_KEY}, url)
    root = library_dir()
    try:
        served = serve_library(root)
    except RuntimeError as exc:  # EmulatorBusyError among them
        raise JockeyConnectionError(str(exc)) from None
    how = "started now, in the background" if served.started else "already running"
    _say(
        f"No TWELVE_LABS_API_KEY: using the local library's Jockey emulator at "
        f"{served.url} ({how}; the library is in {root}). Set "
        "TWELVE_LABS_API_KEY for the live API."
    )
    return _Target(
        {"base_url": served.url, "api_key": DEMO_API_KEY},
        served.url,
        root if served.started else None,
    )


def _next_steps(store_id: str, target: _Target) -> list[str]:
    """What to do with the store now: lines that work as printed."""
    ask = (
        f'python -m langchain_jockey ask --store {store_id} "What happens in '
        'these videos?"'
    )
    lines = ["", f"Knowledge store: {store_id}", f"Ask it: {ask}"]
    if target.emulator is None:
        lines.append(f'ChatJockey(knowledge_store_id="{store_id}")')
    else:
        key = target.settings["api_key"]
        lines += [
            "In Python, while the emulator runs:",
            (
                f'ChatJockey(base_url="{target.emulator}", api_key="{key}", '
                f'knowledge_store_id="{store_id}")'
            ),
        ]
    return lines


def _bars() -> bool:
    """Whether tqdm is installed (the `progress` extra) to draw progress bars."""
    try:
        import tqdm.auto  # noqa: F401, PLC0415 - only whether it imports
    except ImportError:
        print(
            "(No progress bars: pip install 'langchain-jockey[progress]' for them, "
            "or pip install tqdm; printing each video as it finishes.)"
        )
        return False
    return True


@dataclass
class _Steps:
    """Each source's latest step, to say what a Ctrl-C left where.

    Attributes:
        sources: The sources of the command.
        lines: Print a line per finished source (when there are no bars).
        last: Each source's latest event kind, by name.
    """

    sources: list[Source]
    lines: bool
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
        if result.replaced_item_id:
            note = f" (replaced {result.replaced_item_id}, which had other metadata)"
        elif result.previous_metadata is not None and result.ok:
            note = (
                " (already in the store with other metadata, kept; --replace "
                "replaces it)"
            )
        why = f": {result.error}" if result.error else ""
        _say(
            f"{mark} {result.source} -> {result.item_id or '-'} "
            f"{result.status}{note}{why}"
        )


def _ingest(args: argparse.Namespace) -> int:
    """`ingest`: the exit status."""
    bars = not args.no_progress and _bars()
    store: KnowledgeStore | None = None
    steps = _Steps([], lines=not bars and not args.no_progress)
    try:
        # A bad source, sidecar or schema: an error before a store is made.
        steps.sources = sources_of(args.sources)
        metadata = _metadata(args.metadata, steps.sources)
        enrichment = _enrichment(args)
        target = _target()
        settings = target.settings
        if target.emulator is not None:
            settings = {**settings, **_EMULATED}
        store = _store(args, enrichment, settings)
        add = _add(
            store,
            args.sources,
            steps,
            metadata=metadata.get,
            wait=not args.no_wait,
            show_progress=bars,
            replace=args.replace,
            verify=args.verify,
        )
        try:
            with warnings.catch_warnings():  # `_report` notes each source
                warnings.filterwarnings("ignore", "The store already held", UserWarning)
                results = _interruptible(add)
        except JockeyIngestError as err:
            _report(err.results)
            print(f"{len(err.failures)} source(s) failed.", file=sys.stderr)
            return 1
        _report(results)
    except KeyboardInterrupt:
        for line in steps.interrupted(store):
            _say(line, sys.stderr)
        return INTERRUPTED
    for line in _next_steps(str(store.knowledge_store_id), target):
        _say(line)
    return 0


def _ask(args: argparse.Namespace) -> int:
    """`ask`: stream the answer, then its citations; the exit status.

    Without a store, the emulator's demo store is asked (as `web` does); with
    a key, a store is required, and its absence refused before any request.
    """
    store_id = KnowledgeStore(knowledge_store_id=args.store).knowledge_store_id
    if store_id is None and KnowledgeStore().api_key is not None:
        msg = "ask needs a store: --store ks_… or TWELVE_LABS_KNOWLEDGE_STORE_ID."
        raise JockeyInputError(msg)
    target = _target()
    if store_id is None:  # no key: the emulator's demo store
        from langchain_jockey.emulator import DEMO_STORE_ID  # noqa: PLC0415

        store_id = DEMO_STORE_ID
        _say(f"No store given: asking the emulator's demo store ({store_id}).")
    store = KnowledgeStore(knowledge_store_id=store_id, **target.settings)
    answer: BaseMessageChunk | None = None
    try:
        with store.as_chat_model() as llm:
            for chunk in llm.stream(" ".join(args.question)):
                print(_answer_text(chunk.text), end="", flush=True)
                answer = chunk if answer is None else answer + chunk
    except KeyboardInterrupt:
        print()
        _say("Interrupted (Ctrl-C).", sys.stderr)
        return INTERRUPTED
    print()
    for line in _citations(answer):
        _say(line)
    return 0


def _answer_text(text: str) -> str:
    """An answer's text, safe to print: its lines kept, other controls escaped."""
    return "\n".join(shown(line) for line in text.split("\n"))


def _citations(answer: BaseMessageChunk | None) -> list[str]:
    """A line per cited moment: its marker, title, time range and item."""
    lines = []
    for block in answer.content_blocks if answer is not None else ():
        text, notes = block.get("text"), block.get("annotations")
        if not isinstance(text, str) or not isinstance(notes, list):
            continue
        for note in notes:
            cited = note.get("extras") or {}
            start, end = note.get("start_index"), note.get("end_index")
            marker = text[start:end] if isinstance(start, int) else "-"
            span = time_range(cited.get("start_sec"), cited.get("end_sec"))
            where = cited.get("item_id") or cited.get("collection_id") or ""
            lines.append(f"{marker} {cited.get('title', '')} {span} {where}".strip())
    return ([""] if lines else []) + lines


def _web(args: argparse.Namespace) -> int:
    """`web`: serve the page; an emulator it started stops with it."""
    target = _target()
    try:
        return web.run(args, target.settings)
    finally:
        if target.started is not None:
            from langchain_jockey.emulator import stop_library  # noqa: PLC0415

            stop_library(target.started)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "ingest" and args.replace and args.no_wait:
        parser.error("--replace waits for each new item before removing the old one")
    try:
        if args.command == "web":
            return _web(args)
        return _ask(args) if args.command == "ask" else _ingest(args)
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
