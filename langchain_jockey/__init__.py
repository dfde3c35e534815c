"""LangChain integration for TwelveLabs Jockey (`POST /v1.3/responses`)."""

from langchain_jockey import errors
from langchain_jockey._version import __version__
from langchain_jockey.chat_models import ChatJockey
from langchain_jockey.errors import *  # noqa: F403 - the error classes, as errors.__all__

__all__ = ["ChatJockey", "__version__", *errors.__all__]  # noqa: PLE0604
