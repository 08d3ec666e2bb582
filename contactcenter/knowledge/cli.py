"""``contactcenter kb ...``: the knowledge package's commands (added to the main group)."""

from __future__ import annotations

import click


@click.group("kb")
def cli() -> None:
    """The knowledge base: search, suggestions and the index."""
