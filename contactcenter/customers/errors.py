"""Errors of the customers capability."""

from __future__ import annotations


class CustomerError(Exception):
    """Base of customer errors."""


class InvalidIdentityError(CustomerError, ValueError):
    """An address that cannot be normalised."""


class CustomerNotFoundError(CustomerError, LookupError):
    """No such customer."""


class MergeError(CustomerError):
    """A merge or an undo that cannot be done."""
