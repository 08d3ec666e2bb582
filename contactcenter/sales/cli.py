"""``contactcenter sales ...``: the sales package's commands (added to the main group).

Each prints one JSON object: ``recompute`` rescores customer value now,
``mine`` mines association rules now, ``offers`` shows the offers a customer
would get (amounts masked: the CLI has no signed-in user; nothing recorded),
``rules`` lists mined rules.
"""

from __future__ import annotations

import json
from typing import Any

import click


def _context() -> tuple[Any, Any]:
    from contactcenter.cli import _db, _settings

    settings = _settings()
    return settings, _db(settings)


@click.group("sales")
def cli() -> None:
    """Customer value, offer rules and outcomes."""


@cli.command("recompute")
def recompute_cmd() -> None:
    """Recompute every customer's value and tier now."""
    from contactcenter.customers.value import ValueConfig, recompute_values
    from contactcenter.db import utcnow

    settings, db = _context()
    with db.session() as session:
        result = recompute_values(session, utcnow(), ValueConfig.from_settings(settings))
        session.commit()
    click.echo(json.dumps({"customers": result.customers, "tiers": result.tiers}))


@cli.command("mine")
@click.option("--method", type=click.Choice(["sql", "python"]), default="sql",
              help="Count product pairs in the database (default) or in Python.")
def mine_cmd(method: str) -> None:
    """Mine association rules now (new ones are proposed for marketing's approval)."""
    from contactcenter.db import utcnow
    from contactcenter.sales.config import SalesConfig
    from contactcenter.sales.mining import mine_rules

    settings, db = _context()
    with db.session() as session:
        result = mine_rules(session, utcnow(), SalesConfig.from_settings(settings), method)
        session.commit()
    click.echo(json.dumps(result.__dict__))


@cli.command("offers")
@click.argument("customer_id", type=int)
@click.option("--limit", type=click.IntRange(1, 20), default=3)
def offers_cmd(customer_id: int, limit: int) -> None:
    """Show the offers a customer would get now, with scripts and reasons."""
    from contactcenter.db import utcnow
    from contactcenter.sales.config import SalesConfig
    from contactcenter.sales.service import rank_for_customer, resolve_customer

    settings, db = _context()
    with db.session() as session:
        customer = resolve_customer(session, customer_id)
        if customer is None:
            raise click.ClickException(f"no customer {customer_id}")
        ranking = rank_for_customer(session, customer, utcnow(),
                                    SalesConfig.from_settings(settings), limit)
        out = {"customer_id": customer.id, "blocked": ranking.blocked,
               "offers": [{"product": o.candidate.product_name, "source": o.candidate.source,
                           "probability": round(o.probability, 4),
                           "script": o.candidate.script, "reason": o.candidate.reason}
                          for o in ranking.offers]}
    click.echo(json.dumps(out, ensure_ascii=False))


@cli.command("rules")
@click.option("--state", type=click.Choice(["proposed", "approved", "rejected"]))
@click.option("--limit", type=click.IntRange(1, 1000), default=50)
def rules_cmd(state: str | None, limit: int) -> None:
    """List mined rules, best lift first."""
    from contactcenter.sales.marketing import list_rules

    _settings, db = _context()
    with db.session() as session:
        click.echo(json.dumps({"items": list_rules(session, state, limit)}, ensure_ascii=False))
