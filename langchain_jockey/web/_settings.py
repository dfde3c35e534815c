"""The page server's settings and the rules that keep it a closed door. No I/O.

- A request is answered only when its `Host` names the page itself
  (`127.0.0.1`, `localhost`, `[::1]` or an `allowed_hosts` name, on the
  server's port): that defeats DNS rebinding.
- A request that carries an `Origin` must carry the page's own: that defeats
  cross-site requests (a form or `fetch` from another site).
- With a `token`, every request must also carry it (the cookie the first visit
  sets, or `?token=`).
- Media URLs from answers reach the page only when they are `https` and not on
  a `.invalid` host (never resolvable: the emulator's stand-ins), so the page
  loads nothing it was not meant to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK_NAMES",
    "WebSettings",
    "is_loopback",
    "media_url",
    "own_host",
    "own_origin",
]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names that always count as the page's own."""

GIB = 1 << 30


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


def is_loopback(host: str) -> bool:
    """Whether `host` (an interface to listen on) is a loopback one."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def media_url(value: Any) -> str | None:
    """A citation's media URL as the page may load it, else `None`.

    Only `https` URLs pass (the real API's signed URLs), and none on a
    `.invalid` host: the emulator's made-up ones would make the browser look
    names up off this machine for nothing.
    """
    if not isinstance(value, str) or len(value) > 4096:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host or host.endswith(".invalid"):
        return None
    if host == "invalid" or any(c.isspace() for c in value):
        return None
    return value
