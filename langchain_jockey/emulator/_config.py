"""The emulator's server-wide settings, `EmulatorConfig`.

Apart from `_server.py` so that the modules it hands them to (`_connections`,
`_exchange`, `_library`) can name their type without importing the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_jockey.emulator._faults import Fault
from langchain_jockey.emulator._persist import DEFAULT_MAX_DISK

__all__ = ["DEMO_API_KEY", "EmulatorConfig"]

DEMO_API_KEY = "tlk_emulator_demo_key"


@dataclass(frozen=True)
class EmulatorConfig:
    """Server-wide settings. Durations are in seconds.

    Attributes:
        api_keys: Keys accepted in `x-api-key`; any other gets 401.
        first_token_delay: Wait before the first output item (Jockey thinks for
            30 s to 3 min), sending `keepalive` every `keepalive_interval`.
        delta_delay: Wait before each answer delta.
        keepalive_interval: Seconds between keepalives while nothing else is sent.
        rate_limit: Requests allowed per key per `rate_window`; more get 429
            with `Retry-After`. `None`: unlimited.
        rate_window: The rate-limit window.
        faults: Faults applied to every request.
        max_stall: The longest a stall fault holds a connection.
        max_body: The largest request body, in bytes; a larger one gets 413 and
            the connection closes.
        request_timeout: A request's head and body must arrive within this
            long of its first byte; else 408 and the connection closes. An
            upload (a direct upload's form, a part) has a second more for each
            MB its content-length declares.
        idle_timeout: A connection with no request under way (new, or kept
            alive between requests) closes after this long without a byte.
        max_connections: The most connections open at once, kept below the
            process's open-file limit. Past it, a new connection takes the
            place of the one that has waited longest for a request; when all
            are busy answering, it gets 503 and closes.
        request_log: How many requests `EmulatorServer.requests` keeps, newest
            last (0: none). It holds a body only once its key was accepted, so
            it never holds more than `request_log * max_body` bytes of bodies.
        asset_time: How long a new asset is `processing` before `ready`.
        index_time: How long a new store item takes from `queued` to `ready`.
        chunk_size: The part size of multipart uploads, in bytes (the API's
            own is not documented).
        fail_processing: File-name patterns (`fnmatch`, e.g. `"corrupt*"`):
            an item made from a matching file ends `failed` (fault injection).
        session_ttl: Seconds a session lives after its last use; a later
            request with it gets the API's "invalid session" 400. `None`: no
            expiry (sessions still go, least recently used first, past 10,000).
        data_dir: A directory where stores, items, assets, upload sessions and
            uploaded files are kept across restarts (`_persist.py`); one
            emulator serves it at a time (`_home.py`). `None`: all in memory,
            uploaded files not kept, gone when the emulator stops.
        max_disk: With `data_dir`, the most bytes of uploaded files it holds;
            an upload past it gets the API's 413 (default 20 GB).
        media_dir: Where the demo videos' stand-in media are made and kept
            (`_clips.py`). `None`: `data_dir/media`, or without a data
            directory a temporary one, removed when the emulator stops.
    """

    api_keys: tuple[str, ...] = (DEMO_API_KEY,)
    first_token_delay: float = 0.0
    delta_delay: float = 0.0
    keepalive_interval: float = 10.0
    rate_limit: int | None = None
    rate_window: float = 60.0
    faults: tuple[Fault, ...] = ()
    max_stall: float = 300.0
    max_body: int = 1 << 20
    request_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_connections: int = 1024
    request_log: int = 1000
    asset_time: float = 1.0
    index_time: float = 3.0
    chunk_size: int = 8 << 20
    fail_processing: tuple[str, ...] = ()
    session_ttl: float | None = None
    data_dir: Path | None = None
    max_disk: int = DEFAULT_MAX_DISK
    media_dir: Path | None = None
