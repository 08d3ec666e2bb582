"""``contactcenter sla ...``: the sla package's commands (added to the main group).

Each prints JSON: ``load FILE`` loads calendars and policies (see
``config/sla.example.json``), ``calendars`` and ``policies`` list them, ``sweep``
runs one sweep now, ``alerts`` sends the contract alerts that are due, ``notify``
delivers waiting notification e-mails, ``clocks NUMBER`` shows a ticket's clocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _context() -> tuple[Any, Any]:
    from contactcenter.cli import _db, _settings

    settings = _settings()
    return settings, _db(settings)


@click.group("sla")
def cli() -> None:
    """SLA calendars, policies, contracts and the sweep."""


@cli.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_cmd(file: Path) -> None:
    """Load (create or update by name) calendars and policies from a JSON file."""
    from contactcenter.sla.loader import SlaConfigError, load_config

    if file.stat().st_size > 2_000_000:
        raise click.ClickException("the file is larger than 2 MB")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: not JSON: {exc}") from exc
    _settings, db = _context()
    with db.session() as session:
        try:
            counts = load_config(session, data)
        except SlaConfigError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(json.dumps(counts))


@cli.command("calendars")
def calendars_cmd() -> None:
    """List the business calendars."""
    from sqlalchemy import select

    from contactcenter.sla.models import SlaCalendar

    _settings, db = _context()
    with db.session() as session:
        rows = [{"name": c.name, "timezone": c.timezone, "hours": c.hours,
                 "holiday_country": c.holiday_country}
                for c in session.scalars(select(SlaCalendar).order_by(SlaCalendar.name))]
    click.echo(json.dumps({"calendars": rows}))


@cli.command("policies")
def policies_cmd() -> None:
    """List the SLA policies in the order they are tried, with their targets."""
    from sqlalchemy import select

    from contactcenter.sla.models import SlaPolicy
    from contactcenter.sla.service import targets_of

    _settings, db = _context()
    with db.session() as session:
        rows = [{"name": p.name, "position": p.position, "active": p.active,
                 "targets": [t.__dict__ for t in targets_of(session, p.id)]}
                for p in session.scalars(select(SlaPolicy).order_by(SlaPolicy.position))]
    click.echo(json.dumps({"policies": rows}))


@cli.command("sweep")
def sweep_cmd() -> None:
    """Report the warnings and breaches that are due, once, now."""
    from contactcenter.db import utcnow
    from contactcenter.sla.sweep import run_sweep

    settings, db = _context()
    with db.session() as session:
        result = run_sweep(session, settings, utcnow())
    click.echo(json.dumps(result.to_json()))


@cli.command("alerts")
def alerts_cmd() -> None:
    """Send the contract expiry and allowance alerts that are due."""
    from contactcenter.db import utcnow
    from contactcenter.sla.contracts import send_contract_alerts

    settings, db = _context()
    with db.session() as session:
        sent = send_contract_alerts(session, settings, utcnow())
        session.commit()
    click.echo(json.dumps({"sent": sent}))


@cli.command("notify")
def notify_cmd() -> None:
    """Deliver the SLA notification e-mails that are due."""
    from contactcenter.db import utcnow
    from contactcenter.sla.notify import deliver_notifications

    settings, db = _context()
    with db.session() as session:
        counts = deliver_notifications(session, settings, utcnow())
    click.echo(json.dumps(counts))


@cli.command("clocks")
@click.argument("number", type=int)
def clocks_cmd(number: int) -> None:
    """Show a ticket's SLA clocks and its customer's entitlement."""
    from contactcenter.sla.service import entitlement_of, ticket_clocks
    from contactcenter.tickets.errors import TicketNotFoundError
    from contactcenter.tickets.service import get_ticket

    _settings, db = _context()
    with db.session() as session:
        try:
            ticket = get_ticket(session, number)
        except TicketNotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"number": number, "clocks": ticket_clocks(session, ticket),
                               "entitlement": entitlement_of(session, ticket)}))
