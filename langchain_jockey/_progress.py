"""Progress bars for `KnowledgeStore.add`: bytes uploaded, and items indexed.

`tqdm` draws them (the bar LangChain's document loaders use); it is an
optional extra, `pip install "langchain-jockey[progress]"`. The items bar
shows where each source is (`uploaded 1, processing 2, ready 3`: an item's
status never goes backwards, `Progress` sees to it) and refreshes its clock
every second while indexing, so a long wait never looks frozen. Each bar stops
when its work does: the upload bar once every source is past its upload, the
items bar once every source is done.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

from langchain_jockey._ingest import IngestEvent, Progress
from langchain_jockey._terminal import shown
from langchain_jockey.errors import JockeyInputError

__all__ = ["progress_bar"]

_REFRESH = 1.0  # seconds between redraws of an idle bar


@contextlib.contextmanager
def progress_bar(progress: Progress, show: bool) -> Iterator[None]:
    """With `show`, draw `progress` as two tqdm bars while the block runs."""
    if not show:
        yield
        return
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 - an optional extra
    except ImportError:
        msg = (
            "show_progress=True needs tqdm: pip install 'langchain-jockey[progress]' "
            "(or pip install tqdm), or pass on_progress=… to get the events."
        )
        raise JockeyInputError(msg) from None
    sent = tqdm(total=progress.bytes_total, unit="B", unit_scale=True, desc="upload")
    items = tqdm(total=progress.items_total, unit="video", desc="index ")
    statuses: dict[str, str] = {}
    lock, stop = threading.Lock(), threading.Event()

    def show_event(event: IngestEvent) -> None:
        with lock:
            if event.kind in _PAST_UPLOAD:  # a server's word: shown, never obeyed
                statuses[event.source] = shown(_shown_status(event))
            if not sent.disable:  # closed once nothing is left to upload
                sent.n = event.bytes_sent
                if len(statuses) == progress.items_total:
                    sent.close()
                elif event.kind in _BYTES:
                    sent.refresh()
            items.n = event.items_done
            counts = Counter(statuses.values())
            items.set_postfix_str(", ".join(f"{k} {v}" for k, v in counts.items()))
            if event.items_done == progress.items_total:
                stop.set()
                items.close()

    def tick() -> None:
        while not stop.wait(_REFRESH):
            with lock:
                items.refresh()

    unsubscribe = progress.subscribe(show_event)
    clock = threading.Thread(target=tick, name="jockey-progress", daemon=True)
    clock.start()
    try:
        yield
    finally:
        stop.set()
        clock.join()
        unsubscribe()
        sent.close()
        items.close()


_BYTES = ("uploading", "uploaded", "skipped")  # events that move the upload bar
_PAST_UPLOAD = ("uploaded", "skipped", "indexing", "done", "failed")


def _shown_status(event: IngestEvent) -> str:
    """What the items bar counts a source as: its status, or `uploaded`.

    `uploaded` while its asset processes: that status is the asset's, and
    an item's `queued` after an asset's `processing` would look backwards.
    """
    if event.kind == "uploaded":
        return "uploaded"
    return event.status or event.kind
