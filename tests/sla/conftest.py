"""Shared SLA test data: a business calendar and policies, loaded the way the CLI loads them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contactcenter.sla.loader import load_config

CONFIG: dict[str, Any] = {
    "calendars": [
        {"name": "Office Berlin", "timezone": "Europe/Berlin", "hours": "mon-fri 09:00-17:00",
         "holiday_country": "DE"},
    ],
    "policies": [
        {"name": "Gold", "position": 10, "calendar": "Office Berlin", "warn_percent": 50,
         "match": {"contract_level": "Gold"},
         "targets": {"first_response": {"urgent": 15, "*": 60}, "next_response": 120,
                     "resolution": 480}},
        {"name": "Standard", "position": 100, "pause_on_hold": False,
         "targets": {"first_response": 240, "next_response": 480, "resolution": 2880}},
    ],
}

# Monday 2026-03-02 10:00 Berlin (09:00 UTC): inside office hours.
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sla_config(session: Any) -> dict[str, Any]:
    """Load the test calendars and policies."""
    load_config(session, CONFIG)
    session.commit()
    return CONFIG


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
