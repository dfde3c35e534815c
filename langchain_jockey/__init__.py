"""LangChain integration for TwelveLabs Jockey (`POST /v1.3/responses`)."""

from langchain_jockey._version import __version__
from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import (
    JockeyAuthenticationError,
    JockeyBadRequestError,
    JockeyConnectionError,
    JockeyError,
    JockeyInputError,
    JockeyNotFoundError,
    JockeyPermissionDeniedError,
    JockeyRateLimitError,
    JockeyServerError,
    JockeyStreamInterruptedError,
    JockeyTimeoutError,
)

__all__ = [
    "ChatJockey",
    "JockeyAuthenticationError",
    "JockeyBadRequestError",
    "JockeyConnectionError",
    "JockeyError",
    "JockeyInputError",
    "JockeyNotFoundError",
    "JockeyPermissionDeniedError",
    "JockeyRateLimitError",
    "JockeyServerError",
    "JockeyStreamInterruptedError",
    "JockeyTimeoutError",
    "__version__",
]
