"""Errors of the tickets capability."""

from __future__ import annotations


class TicketError(Exception):
    """Base of ticket errors."""


class TicketNotFoundError(TicketError, LookupError):
    """No such ticket."""


class InvalidTransitionError(TicketError, ValueError):
    """A status change the ticket's life does not allow."""


class IntakeError(TicketError):
    """A contact that intake cannot turn into state."""
