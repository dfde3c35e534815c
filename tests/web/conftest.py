"""The page in a real browser: Playwright driving Debian's Chromium, on loopback only.

- `browser`: one headless Chromium per test module (`/usr/bin/chromium`, or
  `JOCKEY_CHROMIUM`). Without it the tests FAIL and say how to install it
  (`bash tests/provision.sh`): browser downloads are not available here.
- `jockey`: an emulator paced so that an answer streams in several steps, with
  a key of its own (tests check that the key never reaches the page).
- `site`: the page server (`create_app`, served as the command line serves it)
  over that emulator and its demo store; `serve` serves any app.
- `page`: a new browser context and tab on it. Every request the browser makes
  is recorded; one that would leave loopback is aborted and fails the test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from langchain_jockey.emulator import DEMO_STORE_ID, Emulator
from langchain_jockey.web import WebSettings, create_app
from langchain_jockey.web._cli import _server

CHROMIUM = os.environ.get("JOCKEY_CHROMIUM", "/usr/bin/chromium")
# No request of the browser's own (updates, sync, field trials, QUIC probes).
ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
KEY = "tlk_web_test_secret_key_5f1c2a9e"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port, as the command line does."""
    server = _server(app)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module: while Playwright's sync API is open, the main thread counts as
    # running an event loop, and `asyncio.run` in a later test would fail.
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: the page's tests need one. Install it with "
            "`bash tests/provision.sh` (on Debian: apt-get install -y chromium), or "
            "point JOCKEY_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def jockey() -> Iterator[Emulator]:
    """Answers that stream over about a second, progress first."""
    with Emulator(delta_delay=0.01, keepalive_interval=0.05, api_keys=(KEY,)) as emu:
        yield emu


def settings_for(emu: Emulator, **kwargs: Any) -> WebSettings:
    connection = {"base_url": emu.base_url, "api_key": emu.api_key}
    kwargs.setdefault("knowledge_store_id", DEMO_STORE_ID)
    return WebSettings(connection=connection, **kwargs)


@dataclass
class Site:
    url: str
    app: Any

    @property
    def page_state(self) -> Any:
        return self.app.app.state.page


@pytest.fixture
def site(jockey: Emulator) -> Iterator[Site]:
    app = create_app(settings_for(jockey))
    with serve(app) as url:
        yield Site(url, app)


@dataclass
class Traffic:
    """What the browser asked for, and what it was answered."""

    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def bodies(self) -> list[bytes]:
        """Every response body that arrived whole (read after the page is done)."""
        found = []
        for response in self.responses:
            with contextlib.suppress(Exception):  # one the page aborted has none
                found.append(response.body())
        return found


def watch(context: Any) -> Traffic:
    """Record every request of `context`; abort (and note) any off loopback."""
    traffic = Traffic()

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            traffic.outside.append(url)
            route.abort()

    context.route("**/*", route)
    context.on("request", lambda r: traffic.requests.append(r.url))
    # A bound method would do, were it not for Playwright (it sets an attribute).
    context.on("response", lambda r: traffic.responses.append(r))  # noqa: PLW0108
    return traffic


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1100, "height": 900}, ignore_https_errors=True
    )
    context.set_default_timeout(15_000)
    recorded = watch(context)
    request.node.traffic = recorded
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
    assert recorded.outside == [], f"requests off loopback: {recorded.outside}"
    seen = [u for u in recorded.requests if not u.startswith(("data:", "blob:"))]
    assert all(urlsplit(u).hostname in LOOPBACK for u in seen), seen
