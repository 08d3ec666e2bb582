"""``contactcenter sla ...``: the sla package's commands (added to the main group)."""

from __future__ import annotations

import click


@click.group("sla")
def cli() -> None:
    """SLA calendars, policies, contracts and the sweep."""
