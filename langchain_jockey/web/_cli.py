"""`python -m langchain_jockey web`: serve the chat page (the `web` extra).

`langchain_jockey.__main__` adds the arguments (`add_parser`) and calls `run`
with the settings of the Jockey it chose as it does for `ingest` (the API with
a key, else an emulator, said aloud: the local library's).

Prints `Serving on http://HOST:PORT` once the page answers; SIGINT (Ctrl-C) or
SIGTERM stops it, and the command line then stops the library's emulator if it
started it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from langchain_jockey.knowledge_stores import KnowledgeStore
from langchain_jockey.web._settings import GIB, WebSettings, is_loopback

if TYPE_CHECKING:
    import uvicorn

__all__ = ["add_parser", "run"]

_EXTRA = (
    "The page needs the web extra: pip install 'langchain-jockey[web]' "
    "(in a checkout: pip install -e '.[web]')"
)


def add_parser(commands: Any) -> None:
    """Add `web` and its arguments to the command line's subcommands."""
    web = commands.add_parser(
        "web",
        help="serve the chat page",
        description=(
            "Serve a chat page for Jockey: streamed answers, their steps and the "
            "cited moments. Without TWELVE_LABS_API_KEY it uses the local emulator."
        ),
    )
    web.add_argument(
        "--host", default="127.0.0.1", help="interface (default: loopback)"
    )
    web.add_argument(
        "--port", type=int, default=8700, help="port (default 8700; 0: any free)"
    )
    web.add_argument(
        "--store",
        metavar="ks_…",
        help="the knowledge store (default: the environment's)",
    )
    web.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name the page is reached by, off loopback (repeatable)",
    )
    web.add_argument(
        "--token", help="the token off loopback (default: a new random one)"
    )
    web.add_argument(
        "--max-file-size",
        type=int,
        default=2 * GIB,
        metavar="BYTES",
        help="the largest uploaded file (default 2 GiB)",
    )
    web.add_argument(
        "--max-files",
        type=int,
        default=50,
        metavar="N",
        help="the most files in one upload (default 50)",
    )


def _settings(
    args: argparse.Namespace, connection: Mapping[str, Any]
) -> WebSettings | str:
    """The server's settings, or why the arguments cannot be served."""
    if args.max_file_size < 1 or args.max_files < 1:
        return "--max-file-size and --max-files must be at least 1."
    token = args.token
    if not is_loopback(args.host):
        if not args.allowed_host:
            return (
                f"Listening on {args.host} needs --allowed-host NAME for each name "
                "the page is reached by (its Host header)."
            )
        token = token or secrets.token_urlsafe(24)
    store = args.store or KnowledgeStore(**connection).knowledge_store_id
    if store is None and connection:  # the emulator: its demo store
        from langchain_jockey.emulator import DEMO_STORE_ID  # noqa: PLC0415

        store = DEMO_STORE_ID
    return WebSettings(
        connection=dict(connection),
        knowledge_store_id=store,
        allowed_hosts=tuple(args.allowed_host),
        token=token,
        max_file_bytes=args.max_file_size,
        max_files=args.max_files,
    )


def run(args: argparse.Namespace, connection: Mapping[str, Any]) -> int:
    """Serve the page until SIGINT or SIGTERM; the exit status.

    `connection`: the settings of the Jockey the command line chose (empty:
    the environment's).
    """
    try:
        import uvicorn  # noqa: PLC0415, F401 - the extra's packages, checked first

        from langchain_jockey.web._app import create_app  # noqa: PLC0415
    except ImportError as err:
        print(f"{_EXTRA} ({err}).", file=sys.stderr)
        return 2
    settings = _settings(args, connection)
    if isinstance(settings, str):
        print(settings, file=sys.stderr)
        return 2
    try:
        sock = _listen(args.host, args.port)
    except OSError as err:
        print(
            f"Cannot listen on {args.host}:{args.port} ({err.strerror or err}): "
            "pass another --port (0: any free).",
            file=sys.stderr,
        )
        return 1
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    lines = [f"Serving on http://{host}:{port}"]
    if settings.token:
        lines += [
            f"Open http://{name}:{port}/?token={settings.token}"
            for name in settings.allowed_hosts or (host,)
        ]
    server = _server(create_app(settings))
    asyncio.run(_serve(server, sock, lines))
    print("Stopped.", flush=True)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family, backlog=128)


def _server(app: Any) -> uvicorn.Server:
    import uvicorn  # noqa: PLC0415

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # SIGINT and SIGTERM stop the server and this process then ends
            # normally, stopping what it started (uvicorn's own handler raises
            # the signal again once it has stopped).
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            stops = (signal.SIGINT, signal.SIGTERM)
            previous = {s: signal.signal(s, self.handle_exit) for s in stops}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # the page's own Host and client, never a header's
        server_header=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    return Server(config)


async def _serve(server: uvicorn.Server, sock: socket.socket, lines: list[str]) -> None:
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - no event
        await asyncio.sleep(0.02)
    if server.started:
        print("\n".join(lines), flush=True)
    await serving
