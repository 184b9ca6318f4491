"""Testing tools: a client that sends messages through the dispatch core."""

from .client import Client

__all__ = ["Client"]
