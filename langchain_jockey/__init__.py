"""LangChain integration for TwelveLabs Jockey (`POST /v1.3/responses`).

Every public module, and each name taken from one, is loaded on first use,
all the same way (`_MODULE_OF`, `__getattr__`): `import langchain_jockey`
imports none of them (only `_blocks`, the content-block translator), and
`ChatJockey` alone loads neither the ingestion layer nor the tool (which
imports LangGraph when it is installed). Type checkers read the imports below.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from langchain_jockey import _blocks
from langchain_jockey._version import __version__

if TYPE_CHECKING:
    from langchain_jockey.chat_models import ChatJockey
    from langchain_jockey.errors import (
        JockeyAuthenticationError,
        JockeyBadRequestError,
        JockeyConnectionError,
        JockeyError,
        JockeyIngestError,
        JockeyInputError,
        JockeyNotFoundError,
        JockeyPermissionDeniedError,
        JockeyRateLimitError,
        JockeyServerError,
        JockeyStreamInterruptedError,
        JockeyTimeoutError,
    )
    from langchain_jockey.knowledge_stores import KnowledgeStore
    from langchain_jockey.retrievers import KnowledgeStoreRetriever
    from langchain_jockey.tools import JockeyTool

__all__ = [
    "ChatJockey",
    "JockeyAuthenticationError",
    "JockeyBadRequestError",
    "JockeyConnectionError",
    "JockeyError",
    "JockeyIngestError",
    "JockeyInputError",
    "JockeyNotFoundError",
    "JockeyPermissionDeniedError",
    "JockeyRateLimitError",
    "JockeyServerError",
    "JockeyStreamInterruptedError",
    "JockeyTimeoutError",
    "JockeyTool",
    "KnowledgeStore",
    "KnowledgeStoreRetriever",
    "__version__",
]

# Each public name → its module (LangChain's own packages load names this
# way): the four classes, and every other name of `__all__` is an error class.
_MODULE_OF = {
    **{name: "errors" for name in __all__ if name != "__version__"},
    "ChatJockey": "chat_models",
    "JockeyTool": "tools",
    "KnowledgeStore": "knowledge_stores",
    "KnowledgeStoreRetriever": "retrievers",
}
_MODULES = frozenset(_MODULE_OF.values())

# Jockey messages' `content_blocks` (citations, steps) read right once the
# package is imported, as when it loaded `chat_models` at once.
_blocks.register()


def __getattr__(name: str) -> Any:
    """A public module, or a name of one, imported on first use."""
    if name in _MODULES:
        return import_module(f"{__name__}.{name}")
    if name in _MODULE_OF:
        value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value  # found directly from now on
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    """The module's attributes and every public name, loaded or not."""
    return sorted({*globals(), *_MODULES, *__all__})
