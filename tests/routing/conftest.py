"""Routing test fixtures: a policy and an audited session on the in-memory database."""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.config import Settings
from contactcenter.routing.policy import RoutingPolicy, parse_policy
from tests.routing.helpers import DecisionAudit


@pytest.fixture
def policy() -> RoutingPolicy:
    return parse_policy({}, Settings())


@pytest.fixture
def audit(session: Any, policy: RoutingPolicy) -> DecisionAudit:
    """Every decision made in ``session`` is checked against the pure policy."""
    checker = DecisionAudit(policy)
    checker.install(session)
    return checker
