"""``contactcenter staffing ...``: Erlang C staffing for a queue, JSON out."""

from __future__ import annotations

import click


@click.command("staffing")
def staffing() -> None:
    """Erlang C staffing for a queue (not built yet)."""
    raise click.ClickException("staffing is not built yet")
