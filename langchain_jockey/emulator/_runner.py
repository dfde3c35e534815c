"""Running the emulator in-process, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from typing_extensions import Self

from langchain_jockey.emulator._config import EmulatorConfig
from langchain_jockey.emulator._faults import Fault
from langchain_jockey.emulator._server import EmulatorServer, ReceivedRequest
from langchain_jockey.emulator._store import DEMO_STORE_ID

__all__ = ["Emulator", "spawn"]

_URL_LINE = re.compile(r"(http://[^\s]+/v1\.3)")
_START_TIMEOUT = 60.0  # seconds for a spawned emulator to say where it serves


def spawn(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m langchain_jockey.emulator` in a separate process.

    For when the emulator must not share the caller's process (CPU
    measurements, blocking-call detection). Listens on a free loopback port
    unless `flags` say otherwise; terminate the returned process when done.
    Its output goes to a temporary file, read here for the URL and then
    removed: no pipe is left open, and the process may print what it likes.

    Args:
        *flags: Command-line flags, e.g. `"--delta-delay", "0.01"`.

    Returns:
        The process and the base URL it serves.

    Raises:
        RuntimeError: when the emulator does not say it is serving (it exited,
            or said nothing within a minute); the process is killed.
    """
    fd, name = tempfile.mkstemp(prefix="jockey-emulator-", suffix=".log")
    log = Path(name)
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own module, this interpreter
            [sys.executable, "-m", "langchain_jockey.emulator", "--port", "0", *flags],
            stdout=fd,
            text=True,
        )
    finally:
        os.close(fd)  # the child has its own
    try:
        first = _first_line(proc, log)
    finally:
        with contextlib.suppress(OSError):  # Windows: not while the child has it
            log.unlink()
    match = _URL_LINE.search(first)
    if match is None:
        proc.kill()
        proc.wait()
        msg = f"the emulator did not start: {first!r}"
        raise RuntimeError(msg)
    return proc, match.group(1)


def _first_line(proc: subprocess.Popen[str], log: Path) -> str:
    """The first line `proc` writes to `log`: '' if it exits or a minute passes."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        head = log.read_bytes()[:4096]
        if b"\n" in head:
            return head.split(b"\n", 1)[0].decode(errors="replace")
        if proc.poll() is not None or time.monotonic() > deadline:
            return head.decode(errors="replace")
        time.sleep(0.01)


class Emulator:
    """A Jockey emulator on a free loopback port, for as long as the `with` lasts.

    ```python
    with Emulator() as emu:
        llm = ChatJockey(**emu.chat_kwargs())
        llm.invoke("When do the fishing boats leave?")
    ```

    Works with sync and async clients alike (it runs its own event loop on a
    background thread). `requests` lists the latest requests it received
    (`request_log` of them, 1,000 by default).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: list[Fault | str] | None = None,
        **settings: Any,
    ) -> None:
        """Configure the emulator (nothing starts until `start()` / `with`).

        Args:
            config: Server settings; `settings` override its fields.
            host: Interface to listen on (loopback by default).
            port: Port to listen on; 0 picks a free one.
            faults: Server-wide faults, as `Fault`s or specs like `"drop_after=3"`.
            **settings: Any `EmulatorConfig` field, e.g. `delta_delay=0.02`.
        """
        config = config or EmulatorConfig()
        if faults is not None:
            settings["faults"] = tuple(
                Fault.parse(f) if isinstance(f, str) else f for f in faults
            )
        self.config = replace(config, **settings)
        self.host = host
        self.port = port
        self.server = EmulatorServer(self.config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The `base_url` to give ChatJockey or the TwelveLabs SDK."""
        return f"http://{self.host}:{self.port}/v1.3"

    @property
    def api_key(self) -> str:
        """A key the emulator accepts."""
        return self.config.api_keys[0]

    @property
    def knowledge_store_id(self) -> str:
        """The demo knowledge store."""
        return DEMO_STORE_ID

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests received so far, oldest first."""
        return list(self.server.requests)

    def expire_sessions(self, session_id: str | None = None) -> int:
        """Forget one Jockey session, or every one, as a server restart would.

        A later request with a forgotten session gets the API's "invalid
        session" 400, so tests can end a session under a conversation without
        restarting the emulator (`session_ttl` expires them on a timer; a
        spawned one takes `POST /emulator/sessions/expire`).

        Args:
            session_id: The `sess_…` to forget; `None`: all of them.

        Returns:
            How many sessions were forgotten.
        """
        if self._loop is None:  # not serving: no other thread touches them
            return self.server.expire_sessions(session_id)

        async def expire() -> int:
            return self.server.expire_sessions(session_id)

        return asyncio.run_coroutine_threadsafe(expire(), self._loop).result(10)

    def chat_kwargs(self) -> dict[str, str]:
        """`base_url`, `api_key` and `knowledge_store_id` for `ChatJockey(**…)`."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "knowledge_store_id": self.knowledge_store_id,
        }

    def start(self) -> Self:
        """Start serving; return once the port is bound."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self.host, self.port = loop.run_until_complete(
                    self.server.start(self.host, self.port)
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.server.aclose())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="jockey-emulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
