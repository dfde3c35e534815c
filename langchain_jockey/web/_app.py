"""The page server: a Starlette app over `ChatJockey.astream` and `KnowledgeStore`.

Routes (docs/web.md has their bodies and events):

- `GET /` the page; `GET /static/…` its script, style and hls.js.
- `GET /api/store` the knowledge store's name and item count; with a key and
  no store, `GET /api/stores` lists the account's, `PUT /api/store` picks one,
  `POST /api/stores` creates one.
- `POST /api/ask` one answer as Server-Sent Events; `DELETE
  /api/conversations/{id}` forgets a conversation.
- `POST /api/uploads` videos (multipart), `GET /api/uploads/{id}/events` their
  progress as Server-Sent Events.

`Guard` wraps every request: the `Host`, `Origin` and token rules of
`_settings`, and the security headers (a strict Content-Security-Policy among
them) on every response.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import JockeyError, JockeyInputError
from langchain_jockey.knowledge_stores import KnowledgeStore
from langchain_jockey.web._chat import Conversations, answer_events, failure_message
from langchain_jockey.web._settings import WebSettings, own_host, own_origin
from langchain_jockey.web._uploads import Batches, UploadRefused, receive_files

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
COOKIE = "jockey_token"
_JSON_BYTES = 64 << 10
_PING = 10  # seconds between SSE comments while nothing else is sent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' https:; media-src 'self' https: blob:; "
    "connect-src 'self' https:; font-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware: the page's Host, Origin and token rules, and its headers."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        """Wrap `app` with the rules of `settings`."""
        self.app = app
        self.settings = settings
        self.names = settings.host_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse with 403 what is not the page's own; add the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(scope, request)
        if refusal is not None:
            response: Response = JSONResponse({"message": refusal}, 403)
            await response(scope, receive, _with_headers(send))
            return
        token = self.settings.token
        given = request.query_params.get("token")
        if token and given and scope["path"] in ("/", "/index.html"):
            # The printed URL: the token becomes a cookie, and leaves the address.
            query = urlencode(
                [
                    (k, v)
                    for k, v in parse_qsl(scope["query_string"].decode())
                    if k != "token"
                ]
            )
            response = RedirectResponse(f"/?{query}" if query else "/", 303)
            response.set_cookie(
                COOKIE, token, httponly=True, samesite="strict", path="/"
            )
            await response(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))

    def _refusal(self, scope: Scope, request: Request) -> str | None:
        """Why the request is refused; `None` when it is the page's own."""
        server = scope.get("server")
        port = server[1] if server and len(server) > 1 and server[1] else None
        if port is None or not own_host(request.headers.get("host"), port, self.names):
            return "Not this page's address: open it by the URL the server printed."
        origin = request.headers.get("origin")
        if origin is not None and not own_origin(origin, port, self.names):
            return "Requests from other sites are refused."
        token = self.settings.token
        if token:
            given = request.cookies.get(COOKIE) or request.query_params.get("token")
            if not given or not secrets.compare_digest(given, token):
                return (
                    "This page needs its token: open the URL with ?token=… "
                    "that the server printed."
                )
        return None


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return wrapped


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


class _Refused(Exception):  # noqa: N818 - an HTTP answer
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, message)


async def _json(request: Request) -> dict[str, Any]:
    """A small JSON object body (64 KiB at most)."""
    size = 0
    raw = bytearray()
    async for chunk in request.stream():
        size += len(chunk)
        if size > _JSON_BYTES:
            raise _Refused(413, "The request is too large.")
        raw += chunk
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Refused(400, "The request must be a JSON object.")
    return body


class Page:
    """The server's state: its settings, store, conversations and uploads."""

    def __init__(self, settings: WebSettings) -> None:
        """Nothing is contacted until a request needs it."""
        self.settings = settings
        self.store_id = settings.knowledge_store_id
        self.conversations = Conversations(settings.max_conversations)
        self.batches = Batches()
        self.upload_dir = settings.upload_dir
        self._temp: str | None = None
        self._llms: dict[str, ChatJockey] = {}

    def store(self, store_id: str | None = None) -> KnowledgeStore:
        """The (current) knowledge store, on the configured connection."""
        return KnowledgeStore(
            **self.settings.connection,
            knowledge_store_id=store_id or self.store_id,
        )

    def llm(self) -> ChatJockey:
        """The chat model of the current store, with Jockey's steps."""
        store = self.store_id or ""
        if store not in self._llms:
            self._llms[store] = ChatJockey(
                **self.settings.connection,
                knowledge_store_id=store,
                include=["intermediate_outputs"],
            )
        return self._llms[store]

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """Make the upload directory; on the way out, stop adding and clean up."""
        if self.upload_dir is None:
            self._temp = tempfile.mkdtemp(prefix="jockey-web-")
            self.upload_dir = Path(self._temp)
        try:
            yield
        finally:
            await self.batches.aclose()
            if self._temp is not None:
                shutil.rmtree(self._temp, ignore_errors=True)

    # -- routes ---------------------------------------------------------------------

    async def index(self, _: Request) -> Response:
        """The page."""
        html = (STATIC / "index.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8")

    async def store_info(self, _: Request) -> Response:
        """The store's name and item counts, and the upload limits."""
        limits = {
            "max_file_bytes": self.settings.max_file_bytes,
            "max_files": self.settings.max_files,
        }
        pickable = self.settings.knowledge_store_id is None
        if self.store_id is None:
            return JSONResponse({"store": None, "pickable": pickable, **limits})
        info = await self.store().ainfo()
        store = {
            "id": info.knowledge_store_id,
            "name": info.name,
            "item_count": info.item_count,
            "counts": info.counts,
        }
        return JSONResponse({"store": store, "pickable": pickable, **limits})

    async def stores(self, _: Request) -> Response:
        """The account's stores, to pick from."""
        found = await KnowledgeStore.astores(**self.settings.connection)
        rows = [{"id": s.knowledge_store_id, "name": s.name} for s in found]
        return JSONResponse({"stores": rows})

    async def pick_store(self, request: Request) -> Response:
        """Use an existing store (`PUT`, `{"id"}`) or a new one (`POST`, `{"name"}`)."""
        if self.settings.knowledge_store_id is not None:
            return _error(409, "The server was started with --store: restart it.")
        body = await _json(request)
        if request.method == "POST":
            name = body.get("name")
            if not isinstance(name, str):
                return _error(400, "A new store needs a name.")
            try:
                made = await KnowledgeStore.acreate(name, **self.settings.connection)
            except JockeyInputError as err:
                return _error(400, str(err))
            self.store_id = made.knowledge_store_id
        else:
            store_id = body.get("id")
            if not isinstance(store_id, str):
                return _error(400, "Pick a store by its id.")
            await self.store(store_id).ainfo()  # it exists, and the key may read it
            self.store_id = store_id
        return await self.store_info(request)

    async def ask(self, request: Request) -> Response:
        """One answer, streamed as Server-Sent Events."""
        body = await _json(request)
        question, conversation_id = body.get("question"), body.get("conversation_id")
        if not isinstance(question, str):
            return _error(400, "Send a question as text.")
        if self.store_id is None:
            return _error(409, "Pick a knowledge store first.")
        if conversation_id is None:
            conversation = self.conversations.new()
        elif isinstance(conversation_id, str):
            found = self.conversations.get(conversation_id)
            if found is None:
                msg = "This conversation is over (the server forgot it): New chat."
                return _error(404, msg)
            conversation = found
        else:
            return _error(400, "conversation_id must be a string or null.")
        if conversation.busy:
            return _error(409, "An answer is already streaming in this conversation.")
        conversation.busy = True  # before the response: a second ask gets 409
        llm = self.llm()

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                data = {"conversation_id": conversation.conversation_id}
                yield {"event": "conversation", "data": json.dumps(data)}
                async for name, payload in answer_events(llm, conversation, question):
                    yield {"event": name, "data": json.dumps(payload)}
            finally:
                conversation.busy = False

        async def unbusy() -> None:  # when the stream never started
            conversation.busy = False

        return _stream(events(), unbusy)

    async def forget(self, request: Request) -> Response:
        """Forget a conversation ("New chat")."""
        self.conversations.drop(request.path_params["conversation_id"])
        return Response(status_code=204)

    async def upload(self, request: Request) -> Response:
        """Receive videos, then add them to the store in the background."""
        if self.store_id is None or self.upload_dir is None:
            return _error(409, "Pick a knowledge store first.")
        limit = self.settings.max_files * (self.settings.max_file_bytes + (64 << 10))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _error(413, "The upload is over the server's limits.")
        try:
            received = await receive_files(
                request.stream(),
                request.headers.get("content-type", ""),
                self.upload_dir,
                self.settings.max_files,
                self.settings.max_file_bytes,
            )
        except UploadRefused as refused:
            return _error(refused.status, refused.message)
        batch = self.batches.start(self.store(), received)
        files = [s.public() for s in batch.files.values()]
        return JSONResponse({"batch_id": batch.batch_id, "files": files}, 202)

    async def upload_events(self, request: Request) -> Response:
        """The progress of one upload's files, as Server-Sent Events."""
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such upload (the server forgot it).")

        async def events() -> AsyncIterator[dict[str, str]]:
            async for state in batch.follow():
                yield {"event": "file", "data": json.dumps(state)}
            yield {"event": "end", "data": "{}"}

        return _stream(events())


def _stream(
    events: AsyncIterator[dict[str, str]],
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> Response:
    return EventSourceResponse(
        events, ping=_PING, sep="\n", client_close_handler_callable=_closer(on_close)
    )


def _closer(
    on_close: Callable[[], Awaitable[None]] | None,
) -> Callable[[Message], Awaitable[None]] | None:
    if on_close is None:
        return None

    async def close(_: Message) -> None:
        await on_close()

    return close


def _handled(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint whose Jockey errors are a JSON message, never a traceback."""

    async def handle(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _Refused as refused:
            return refused.response
        except JockeyError as err:
            return _error(502, failure_message(err))

    return handle


def create_app(settings: WebSettings | None = None) -> Any:
    """The page as an ASGI app (Starlette, wrapped in `Guard`).

    Args:
        settings: What it talks to and its limits; default: the environment's
            connection and store, loopback names only, no token.

    Returns:
        An ASGI application, for uvicorn or another ASGI server.
    """
    if settings is None:
        store = KnowledgeStore().knowledge_store_id  # the environment's, if any
        settings = WebSettings(knowledge_store_id=store)
    page = Page(settings)
    routes = [
        Route("/", page.index),
        Route("/index.html", page.index),
        Route("/api/store", _handled(page.store_info), methods=["GET"]),
        Route("/api/store", _handled(page.pick_store), methods=["PUT"]),
        Route("/api/stores", _handled(page.stores), methods=["GET"]),
        Route("/api/stores", _handled(page.pick_store), methods=["POST"]),
        Route("/api/ask", _handled(page.ask), methods=["POST"]),
        Route("/api/conversations/{conversation_id}", page.forget, methods=["DELETE"]),
        Route("/api/uploads", _handled(page.upload), methods=["POST"]),
        Route("/api/uploads/{batch_id}/events", _handled(page.upload_events)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=page.lifespan)
    app.state.page = page
    return Guard(app, settings)
