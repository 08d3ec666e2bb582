"""Errors of the chat channel."""

from __future__ import annotations


class ChatError(Exception):
    """A chat operation refused (with a message the visitor or agent may read)."""


class ChatNotFoundError(ChatError):
    """No such chat for this visitor or agent."""


class ChatClosedError(ChatError):
    """The chat has ended and takes no more messages."""
