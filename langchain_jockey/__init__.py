"""LangChain integration for TwelveLabs Jockey (`POST /v1.3/responses`)."""

from typing import TYPE_CHECKING, Any

from langchain_jockey import errors
from langchain_jockey._version import __version__
from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import *  # noqa: F403 - the error classes, as errors.__all__
from langchain_jockey.knowledge_stores import KnowledgeStore

if TYPE_CHECKING:
    from langchain_jockey.retrievers import KnowledgeStoreRetriever
    from langchain_jockey.tools import JockeyTool

__all__ = [
    "ChatJockey",
    "JockeyTool",
    "KnowledgeStore",
    "KnowledgeStoreRetriever",
    "__version__",
]
__all__ += errors.__all__


def __getattr__(name: str) -> Any:
    # JockeyTool and KnowledgeStoreRetriever are loaded on first use: the tool
    # imports LangGraph when it is installed, and neither is needed to chat.
    if name == "JockeyTool":
        from langchain_jockey.tools import JockeyTool  # noqa: PLC0415

        return JockeyTool
    if name == "KnowledgeStoreRetriever":
        from langchain_jockey.retrievers import KnowledgeStoreRetriever  # noqa: PLC0415

        return KnowledgeStoreRetriever
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
