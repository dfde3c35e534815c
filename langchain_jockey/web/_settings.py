"""The page server's settings and the rules that keep it a closed door. No I/O.

- A request is answered only when its `Host` names the page itself
  (`127.0.0.1`, `localhost`, `[::1]` or an `allowed_hosts` name, on the
  server's port): that defeats DNS rebinding.
- A request that carries an `Origin` must carry the page's own: that defeats
  cross-site requests (a form or `fetch` from another site).
- With a `token`, every request must also carry it (the cookie the first visit
  sets, or `?token=`).
- Media URLs from answers reach the page only when they are `https` and not on
  a `.invalid` host (the real API's signed URLs, loaded directly), or when they
  are the emulator's (on the configured Jockey's origin, under its media path):
  those become the page's own `/media/…` route, which fetches them from there
  and nowhere else (`emulator_media`), so the Host, Origin and token rules
  cover them and a browser on another machine can play them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from langchain_jockey._failures import is_loopback
from langchain_jockey.emulator import MEDIA_PATH

__all__ = [
    "LOOPBACK_NAMES",
    "MEDIA_ROUTE",
    "WebSettings",
    "emulator_media",
    "is_loopback",
    "media_url",
    "own_host",
    "own_origin",
]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names that always count as the page's own."""

GIB = 1 << 30
MEDIA_ROUTE = "/media/"
"""The page's route to the emulator's media: `/media/TOKEN/ITEM/NAME`."""
# What follows MEDIA_PATH in an emulator media URL: token, item, file name;
# no segment starts with a dot, so none is `.` or `..`.
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}"
_MEDIA_REST = re.compile(rf"{_SEGMENT}/{_SEGMENT}/{_SEGMENT}")


@dataclass(frozen=True)
class WebSettings:
    """What the page server talks to, and its limits.

    Attributes:
        connection: `ChatJockey`/`KnowledgeStore` settings (`base_url`,
            `api_key`); empty: the environment's, as everywhere. Never shown.
        knowledge_store_id: The store to ask about; `None`: the page lists the
            account's stores to pick from (or create one).
        allowed_hosts: Names besides loopback the page is reached by (the
            `Host` header's name; one per `--allowed-host`).
        token: When set, every request must carry it (the printed URL's
            `?token=`, then an `HttpOnly`, `SameSite=Strict` cookie).
        max_file_bytes: The largest uploaded file (default 2 GiB); larger: 413.
        max_files: The most files in one upload request (default 50); more: 413.
        upload_dir: Where uploads wait while they are added to the store;
            `None`: a temporary directory for the server's lifetime.
        max_conversations: Conversations kept; past it, the least recently used
            one is forgotten (its next question gets 404: "New chat").
    """

    connection: Mapping[str, Any] = field(default_factory=dict, repr=False)
    knowledge_store_id: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)
    max_file_bytes: int = 2 * GIB
    max_files: int = 50
    upload_dir: Path | None = None
    max_conversations: int = 1000

    def host_names(self) -> frozenset[str]:
        """Every name the page answers to, lower case."""
        return frozenset(n.lower() for n in (*LOOPBACK_NAMES, *self.allowed_hosts))


def _name_and_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    """`name:port` (or `[v6]:port`) split, lower case; `None` if malformed."""
    try:
        parts = urlsplit(f"//{netloc}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.password is not None:
        return None
    if ":" in name:
        name = f"[{name}]"
    return name.lower(), default_port if port is None else port


def own_host(host: str | None, port: int, names: frozenset[str]) -> bool:
    """Whether a `Host` header names the page: one of `names`, on `port`."""
    if not host:
        return False
    found = _name_and_port(host, 80)
    return found is not None and found[0] in names and found[1] == port


def own_origin(origin: str, port: int, names: frozenset[str]) -> bool:
    """Whether an `Origin` header is the page's own (`http(s)://NAME:PORT`)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query:
        return False
    found = _name_and_port(parts.netloc, 80 if parts.scheme == "http" else 443)
    return found is not None and found[0] in names and found[1] == port


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    """`(scheme, host, port)` of a URL, lower case; `None` if it has none."""
    if parts.scheme not in ("http", "https"):
        return None
    found = _name_and_port(parts.netloc, 80 if parts.scheme == "http" else 443)
    return None if found is None else (parts.scheme, *found)


def emulator_media(base_url: str, rest: str) -> str | None:
    """The URL of the emulator's medium `rest` (`TOKEN/ITEM/NAME`), else `None`.

    Only on the origin of `base_url` (the configured Jockey), only under its
    media path, and only for a `rest` of three plain segments: the page's
    `/media/…` route fetches what this returns, so it can reach nothing else.
    """
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if _origin(parts) is None or not _MEDIA_REST.fullmatch(rest):
        return None
    return f"{parts.scheme}://{parts.netloc}{MEDIA_PATH}{rest}"


def media_url(value: Any, base_url: str | None = None) -> str | None:
    """A citation's media URL as the page may load it, else `None`.

    The emulator's, on the origin of `base_url` (the configured Jockey) and
    under its media path, become the page's `/media/…` route. Others pass only
    when `https` (the real API's signed URLs), and none on a `.invalid` host:
    a name that never resolves would make the browser look it up off this
    machine for nothing.
    """
    if not isinstance(value, str) or len(value) > 4096:
        return None
    if any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
        upstream = urlsplit(base_url) if base_url is not None else None
    except ValueError:
        return None
    here = _origin(parts)
    if here is not None and upstream is not None and here == _origin(upstream):
        rest = parts.path[len(MEDIA_PATH) :]
        mine = parts.path.startswith(MEDIA_PATH) and not parts.query
        if mine and not parts.fragment and _MEDIA_REST.fullmatch(rest):
            return MEDIA_ROUTE + rest
        return None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host or host.endswith(".invalid"):
        return None
    if host == "invalid":
        return None
    return value
