"""Errors a node operator can act on; the CLI prints their message as one line."""

from __future__ import annotations


class NodeError(Exception):
    """Something about this node's data or command line that the operator must fix."""
