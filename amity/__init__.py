"""Amity: a federated network for schools to find partner schools abroad."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amity")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
