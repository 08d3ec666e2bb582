"""``contactcenter sales ...``: the sales package's commands (added to the main group)."""

from __future__ import annotations

import click


@click.group("sales")
def cli() -> None:
    """Customer value, offer rules and outcomes."""
