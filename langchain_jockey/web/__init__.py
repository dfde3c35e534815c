"""The chat page: Jockey's answer, its steps and the cited moments, in a browser.

`python -m langchain_jockey web` serves it (the `web` extra: Starlette, uvicorn,
sse-starlette). `create_app(WebSettings(...))` is the same page as an ASGI app,
for another ASGI server. The server is a thin layer over the public API
(`ChatJockey.astream`, `KnowledgeStore.aadd`), so its code is also a reference
for your own UI; `docs/web.md` documents its endpoints, events and security.

Importing this package needs nothing beyond the base install: the server's
modules load on first use.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_jockey.web._app import create_app
    from langchain_jockey.web._settings import WebSettings

__all__ = ["WebSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Starlette is imported only when the server is built (the `web` extra).
    if name == "create_app":
        from langchain_jockey.web._app import create_app  # noqa: PLC0415

        return create_app
    if name == "WebSettings":
        from langchain_jockey.web._settings import WebSettings  # noqa: PLC0415

        return WebSettings
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
