"""A transport in front of the emulator: its answers, held or rewritten by the test.

`KnowledgeStore` talks to the emulator through `Tamper`, so a test can answer
one request badly (a plan with a wrong part count, a part URL with a NUL)
while the rest of the exchange is the emulator's own, or hold one answer until
something else happened (another `add` finished).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from langchain_jockey import KnowledgeStore
from langchain_jockey.emulator import Emulator
from tests.ingest.conftest import connect

Rewrite = Callable[[httpx.Request, Any], Any]
_DROPPED = {"content-length", "transfer-encoding", "content-encoding"}


class Tamper(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Requests go to the emulator; each JSON answer goes through `rewrite`.

    Args:
        rewrite: `(request, answer) → answer`: the JSON to send instead.
        hold: Called with each request once its answer arrived (sync clients).
        ahold: Its async twin, awaited (async clients).
    """

    def __init__(
        self,
        rewrite: Rewrite | None = None,
        hold: Callable[[httpx.Request], None] | None = None,
        ahold: Callable[[httpx.Request], Awaitable[None]] | None = None,
    ) -> None:
        self.rewrite, self.hold, self.ahold = rewrite, hold, ahold
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """The emulator's answer, rewritten, after `hold`."""
        response = self._sync.handle_request(request)
        body = response.read()
        if self.hold is not None:
            self.hold(request)
        return self._rewritten(request, response, body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Async twin of `handle_request`."""
        response = await self._async.handle_async_request(request)
        body = await response.aread()
        if self.ahold is not None:
            await self.ahold(request)
        return self._rewritten(request, response, body)

    def _rewritten(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> httpx.Response:
        headers = {k: v for k, v in response.headers.items() if k not in _DROPPED}
        if self.rewrite is not None and "json" in headers.get("content-type", ""):
            answer = self.rewrite(request, json.loads(body))
            return httpx.Response(response.status_code, headers=headers, json=answer)
        return httpx.Response(response.status_code, headers=headers, content=body)


def tampered(
    emu: Emulator, store_id: str, tmp: Path, tamper: Tamper, **kwargs: Any
) -> KnowledgeStore:
    """The store `store_id` of `emu`, opened through `tamper`."""
    return KnowledgeStore(
        knowledge_store_id=store_id,
        http_client=httpx.Client(transport=tamper),
        http_async_client=httpx.AsyncClient(transport=tamper),
        **connect(emu, tmp, **kwargs),
    )


def route(request: httpx.Request) -> tuple[str, str]:
    """`(method, path)` of a request, the path without `/v1.3/`."""
    return request.method, request.url.path.removeprefix("/v1.3/")
