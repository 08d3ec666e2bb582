"""Errors of the sales package."""

from __future__ import annotations


class SalesError(ValueError):
    """A request the sales package refuses (bad outcome, channel, quantity...)."""


class OfferNotFoundError(LookupError):
    """An offer (impression), rule, relation or customer that does not exist."""
