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


class IdentityConflictError(MergeError):
    """An address that already belongs to another customer (merge them instead).

    ``other_customer_id`` names that customer for callers allowed to merge; the
    message itself never does, so it can be shown to anyone.
    """

    def __init__(self, kind: str, other_customer_id: int) -> None:
        super().__init__(f"this {kind} address already belongs to another customer; "
                         "merge the two customers instead")
        self.kind = kind
        self.other_customer_id = other_customer_id


class LastIdentityError(CustomerError):
    """Removing the only address left would make a customer unreachable and unrecognisable."""
