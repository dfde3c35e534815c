"""The package version, kept in one place."""

from importlib import metadata

try:
    __version__ = metadata.version("langchain-jockey")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
