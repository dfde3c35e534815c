"""The emulator's HTTP server: asyncio for I/O, h11 for HTTP/1.1 framing.

h11 (already installed: httpx depends on it through httpcore) handles request
parsing, keep-alive and chunked encoding correctly; writing the bytes
ourselves keeps wire-level faults exact (a connection closed mid-chunk, a
half-written event, a silent stall). This module routes, authenticates,
rate-limits, injects `status` faults and keeps sessions; `_connections.py`
accepts connections and reads each request whole, within limits;
`_exchange.py` writes each response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.parse
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11

from langchain_jockey.emulator._answers import Session, Turn
from langchain_jockey.emulator._assets import PART_PATH
from langchain_jockey.emulator._clips import PATH as MEDIA_PATH
from langchain_jockey.emulator._clips import Clips
from langchain_jockey.emulator._config import EmulatorConfig
from langchain_jockey.emulator._connections import Body, Buffer, Connections
from langchain_jockey.emulator._exchange import Exchange
from langchain_jockey.emulator._faults import FAULT_HEADER, Fault
from langchain_jockey.emulator._home import DirLock
from langchain_jockey.emulator._library import Library
from langchain_jockey.emulator._persist import DataDir
from langchain_jockey.emulator._requests import (
    ApiError,
    ParsedRequest,
    parse_request,
)
from langchain_jockey.emulator._responses import Plan, new_id, plan_response
from langchain_jockey.emulator._uploads import FormBody, PartBody

__all__ = ["LENGTH_HEADER", "EmulatorServer", "ReceivedRequest"]

LENGTH_HEADER = "x-emulator-length"
"""Request header: answer with exactly this many deltas (a load knob)."""
PATH = "/v1.3/responses"
EXPIRE_PATH = "/emulator/sessions/expire"
"""`POST` (an accepted key; body `{}` or `{"session_id": …}`): expire sessions."""
STORES_PATH = "/v1.3/knowledge-stores"
ASSETS_PATH = "/v1.3/assets"
_MAX_SESSIONS = 10_000
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the emulator saw it (the API key is not kept).

    Attributes:
        method: The HTTP method.
        path: The path, without the query.
        headers: The headers, names in lower case, the key `<redacted>`.
        raw: The body's bytes; `None` when the key was refused (not kept).
        key_accepted: Whether `x-api-key` held an accepted key.
    """

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes | None
    key_accepted: bool

    @property
    def body(self) -> Any:
        """The body as JSON, else as text; `None` when it was not kept."""
        return None if self.raw is None else _json_or_text(self.raw)


@dataclass
class EmulatorServer(Connections):
    """The Jockey emulator: sessions, rate limits and faults over one asyncio server.

    Attributes:
        config: Its settings.
        requests: The latest `config.request_log` requests, oldest first.
        sessions: The sessions kept, least recently used first.
        session_used: When each kept session was last used (`time.monotonic`).
    """

    config: EmulatorConfig = field(default_factory=EmulatorConfig)
    requests: deque[ReceivedRequest] = field(init=False)
    sessions: OrderedDict[str, Session] = field(default_factory=OrderedDict)
    session_used: dict[str, float] = field(default_factory=dict)
    library: Library = field(init=False)
    clips: Clips = field(init=False)
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _fault_counts: dict[tuple[str, Fault], int] = field(default_factory=dict)
    _lock: DirLock | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.requests = deque(maxlen=self.config.request_log)
        self.library = Library(self.config)
        config = self.config
        root = config.media_dir
        if root is None and config.data_dir is not None:
            root = Path(config.data_dir) / "media"
        self.clips = Clips(self.library.media_source, root)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on `host:port` (port 0: a free one); return the bound address.

        With a `data_dir`, first take its lock and read what it holds.

        Raises:
            EmulatorBusyError: another emulator serves the data directory.
        """
        if self.config.data_dir is None:
            return await super().start(host, port)
        root = Path(self.config.data_dir)
        lock = DirLock(root)
        lock.acquire()
        try:
            self.library.attach(DataDir(root, self.config.max_disk))
            host, port = await super().start(host, port)
        except BaseException:
            self._detach()
            lock.release()
            raise
        self._lock = lock
        lock.publish(f"http://{_url_host(host)}:{port}/v1.3")
        return host, port

    async def aclose(self) -> None:
        """Stop listening, end every connection, and let the data directory go."""
        await super().aclose()
        self._detach()
        self.clips.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _detach(self) -> None:
        if self.library.disk is not None:
            self.library.disk.close()
            self.library.disk = None

    # -- one request -----------------------------------------------------------

    def _body_for(self, request: h11.Request) -> Body:
        """Uploads stream through to their file (or nowhere); the rest is kept whole."""
        path, query, headers = _head(request)
        if request.method == b"POST" and path.rstrip("/") == ASSETS_PATH:
            key = headers.get("x-api-key")
            if key not in self.config.api_keys:  # before 200 MB arrive
                self._authenticate(key, headers)
            declared = int(headers.get("content-length") or 0)  # h11 checked it
            return self.library.form_body(headers.get("content-type", ""), declared)
        if request.method == b"PUT" and path.startswith(PART_PATH):
            upload_id, _, index = path[len(PART_PATH) :].partition("/")
            token = dict(urllib.parse.parse_qsl(query)).get("token", "")
            return self.library.part_body(upload_id, index, token)
        return super()._body_for(request)

    async def _handle(self, ex: Exchange, request: h11.Request, body: Body) -> bool:
        path, query, headers = _head(request)
        raw = bytes(body.data) if isinstance(body, Buffer) else b""
        key = headers.get("x-api-key")
        accepted = key in self.config.api_keys
        self.requests.append(
            ReceivedRequest(
                request.method.decode(),
                path,
                {
                    k: ("<redacted>" if k == "x-api-key" else v)
                    for k, v in headers.items()
                },
                raw if accepted else None,
                accepted,
            )
        )
        now = time.monotonic()
        try:
            if isinstance(body, PartBody):
                etag = self.library.store_part(body)
                await ex.send_json(200, {}, {"etag": f'"{etag}"'})
                return True
            if path.startswith(MEDIA_PATH):  # no key: the path's token
                await self._send_media(ex, request.method, path)
                return True
            if any(
                path == p or path.startswith(p + "/")
                for p in (STORES_PATH, ASSETS_PATH)
            ):
                self._authenticate(key, headers)
                if isinstance(body, FormBody):
                    found = self.library.create_asset(body, now)
                    await ex.send_json(200, found)
                    return True
                status, found = self.library.route(
                    request.method.decode(),
                    path[len("/v1.3") :],
                    query=query,
                    raw=raw,
                    now=now,
                    origin=_origin(headers),
                )
                await ex.send_json(status, found)
                return True
            if path == EXPIRE_PATH:
                await ex.send_json(200, self._expire_request(request.method, key, raw))
                return True
            fault, req, session, plan = self._admit(
                request.method, path, key, headers, raw
            )
        except ApiError as err:
            await ex.send_json(err.status, err.body(), err.headers)
            return True
        self._keep_session(session)
        if not req.stream:
            await asyncio.sleep(self.config.first_token_delay)
            self._record(session, plan, req.question)
            await ex.send_json(200, plan.final)
            return True
        return await ex.stream(
            plan, fault, done=lambda: self._record(session, plan, req.question)
        )

    async def _send_media(self, ex: Exchange, method: bytes, path: str) -> None:
        """A thumbnail, playlist or segment of a citation's media (`_clips.py`)."""
        if method != b"GET":
            raise ApiError(405, "method_not_allowed", "Media are read with GET.")
        found, kind = await self.clips.file(path[len(MEDIA_PATH) :], time.time())
        await ex.send_file(found, kind)

    def _admit(
        self,
        method: bytes,
        path: str,
        key: str | None,
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[Fault, ParsedRequest, Session, Plan]:
        """Route, authenticate, rate-limit, validate and plan; or raise ApiError."""
        if path != PATH:
            msg = f"No route for {path}; the endpoint is POST {PATH}."
            raise ApiError(404, "not_found", msg)
        if method != b"POST":
            raise ApiError(405, "method_not_allowed", f"{PATH} accepts POST only.")
        fault = self._authenticate(key, headers)
        req = parse_request(raw)
        store = self.library.knowledge_store(req.store_id, time.monotonic())
        if store is None:
            msg = f"Knowledge store {req.store_id} does not exist."
            raise ApiError(404, "resource_not_exist", msg)
        session = self._session(req.session_id, store.store_id)
        origin, now = _origin(headers), time.time()
        plan = plan_response(
            req,
            store,
            session,
            truncate_after=fault.truncate_after,
            length=_length(headers.get(LENGTH_HEADER)),
            media=lambda item_id, start: self.clips.links(origin, item_id, start, now),
        )
        return fault, req, session, plan

    def _authenticate(self, key: str | None, headers: dict[str, str]) -> Fault:
        """Key, `status` faults and the rate limit, for every endpoint."""
        if not key:
            raise ApiError(401, "unauthorized", "The x-api-key header is required.")
        if key not in self.config.api_keys:
            msg = "API Key is either invalid or expired. Check it in the dashboard."
            raise ApiError(401, "api_key_invalid", msg)
        fault = self._fault(key, headers.get(FAULT_HEADER))
        self._rate_limit(key)
        return fault

    def _fault(self, key: str, header: str | None) -> Fault:
        """The fault for this request; raises the HTTP error of a `status` fault."""
        found = [(f"server:{i}", f) for i, f in enumerate(self.config.faults)]
        if header:
            try:
                found.append((f"key:{key}:{header}", Fault.parse(header)))
            except ValueError as exc:
                raise ApiError(
                    400, "emulator_fault_invalid", f"{FAULT_HEADER}: {exc}"
                ) from None
        merged: dict[str, Any] = {}
        for scope, fault in found:
            if fault.status is not None:
                count = self._fault_counts.get((scope, fault), 0)
                if count < fault.times:
                    self._fault_counts[(scope, fault)] = count + 1
                    extra = (
                        {"retry-after": fault.retry_after} if fault.retry_after else {}
                    )
                    raise ApiError(
                        fault.status,
                        fault.error_code,
                        f"Injected fault: HTTP {fault.status}.",
                        extra,
                    )
            merged.update(
                {k: v for k, v in vars(fault).items() if v not in (None, False)}
            )
        merged.pop("status", None)
        return Fault(**merged)

    def _rate_limit(self, key: str) -> None:
        limit = self.config.rate_limit
        if limit is None:
            return
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.config.rate_window:
            hits.popleft()
        if len(hits) >= limit:
            wait = max(1, math.ceil(hits[0] + self.config.rate_window - now))
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + wait))
            raise ApiError(
                429,
                "too_many_requests",
                f"You have exceeded the rate limit ({limit}/"
                f"{self.config.rate_window:g}s). Please try again later after {reset}.",
                {"retry-after": str(wait)},
            )
        hits.append(now)

    def _session(self, session_id: str | None, store_id: str) -> Session:
        if session_id is None:
            return Session(new_id("sess"), store_id)
        ttl = self.config.session_ttl
        used = self.session_used.get(session_id)
        if ttl is not None and used is not None and time.monotonic() - used > ttl:
            self.expire_sessions(session_id)
        session = self.sessions.get(session_id)
        if session is None:
            # The guides list "invalid session" among 400 causes (docs/protocol.md).
            raise ApiError(
                400,
                "parameter_invalid",
                f"Invalid session: {session_id} does not exist or has expired. "
                "Start a new session by omitting session_id.",
            )
        if session.store_id != store_id:
            raise ApiError(
                400,
                "parameter_invalid",
                f"Session {session_id} was created with knowledge store "
                f"{session.store_id}; knowledge_store_id must match it, "
                f"not {store_id}.",
            )
        return session

    def _keep_session(self, session: Session) -> None:
        self.sessions[session.session_id] = session
        self.sessions.move_to_end(session.session_id)
        self.session_used[session.session_id] = time.monotonic()
        while len(self.sessions) > _MAX_SESSIONS:
            gone, _ = self.sessions.popitem(last=False)
            self.session_used.pop(gone, None)

    def expire_sessions(self, session_id: str | None = None) -> int:
        """Forget one session (or all): later requests with it get "invalid session".

        Call it on the server's event loop (`Emulator.expire_sessions` does),
        or over HTTP: `POST /emulator/sessions/expire` with an accepted key.

        Returns:
            How many sessions were forgotten.
        """
        gone = list(self.sessions) if session_id is None else [session_id]
        count = 0
        for ident in gone:
            count += self.sessions.pop(ident, None) is not None
            self.session_used.pop(ident, None)
        return count

    def _expire_request(
        self, method: bytes, key: str | None, raw: bytes
    ) -> dict[str, int]:
        """`POST /emulator/sessions/expire`: `{"expired": n}`, or an ApiError."""
        if method != b"POST":
            raise ApiError(405, "method_not_allowed", f"{EXPIRE_PATH} accepts POST.")
        if key not in self.config.api_keys:
            self._authenticate(key, {})  # 401, as everywhere
        body = _json_or_text(raw) if raw else {}
        session_id = body.get("session_id") if isinstance(body, dict) else 0
        if session_id is not None and not isinstance(session_id, str):
            msg = 'The body must be {} (every session) or {"session_id": "sess_…"}.'
            raise ApiError(400, "parameter_invalid", msg)
        return {"expired": self.expire_sessions(session_id)}

    @staticmethod
    def _record(session: Session, plan: Plan, question: str) -> None:
        session.turns.append(Turn(question, plan.answer_text, plan.cited))


def _url_host(host: str) -> str:
    """`host` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _head(request: h11.Request) -> tuple[str, str, dict[str, str]]:
    """A request's path, query and headers (names in lower case)."""
    path, _, query = request.target.decode("latin-1").partition("?")
    headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
    return path, query, headers


def _origin(headers: dict[str, str]) -> str:
    """The emulator's origin as the client named it: the URLs it hands out use it."""
    return f"http://{headers.get('host', '127.0.0.1')}"


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.isascii() and value.isdigit() and len(value) <= 7
    if not digits or not 1 <= int(value) <= 1_000_000:
        msg = f"{LENGTH_HEADER} must be a whole number from 1 to 1,000,000"
        raise ApiError(400, "emulator_length_invalid", msg)
    return int(value)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")
