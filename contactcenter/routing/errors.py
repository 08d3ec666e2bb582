"""Errors of the routing engine."""

from __future__ import annotations


class RoutingError(Exception):
    """Base of routing errors."""


class RoutingConfigError(RoutingError, ValueError):
    """The routing rules file or a routing setting cannot be understood."""


class ItemNotFoundError(RoutingError, LookupError):
    """No routing item with that id."""


class AgentNotFoundError(RoutingError, LookupError):
    """No agent (user) with that id."""


class OfferNotFoundError(RoutingError, LookupError):
    """No offer with that id for that agent."""


class InvalidStateError(RoutingError):
    """The item or offer is not in a state that allows the action (e.g. offer expired)."""


class NotEligibleError(RoutingError):
    """The agent may not take the item; ``reasons`` says why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons) or "not eligible")
        self.reasons = reasons
