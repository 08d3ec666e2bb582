"""``contactcenter field ...``: the field package's commands (to be added to the main group).

Each prints JSON: ``technician EMAIL`` saves a technician's skills, areas and
calendar; ``suggest VISIT`` ranks technicians for a visit; ``sweep`` runs one
deadline sweep now; ``report`` prints the field figures (costs included: the
command line is an operator's tool, like the database itself).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click


def _context() -> tuple[Any, Any]:
    from contactcenter.cli import _db, _settings

    settings = _settings()
    return settings, _db(settings)


@click.group("field")
def cli() -> None:
    """Field service: technicians, suggestions, the deadline sweep and the report."""


@cli.command("technician")
@click.argument("email")
@click.option("--skills", default="", help="comma separated")
@click.option("--areas", default="", help="comma separated")
@click.option("--calendar-id", type=int, default=None)
@click.option("--hourly-rate", default="0")
@click.option("--max-visits", type=click.IntRange(1, 30), default=6)
def technician_cmd(email: str, skills: str, areas: str, calendar_id: int | None,
                   hourly_rate: str, max_visits: int) -> None:
    """Save the field profile of a user who holds the technician role."""
    from sqlalchemy import select

    from contactcenter.accounts.models import User
    from contactcenter.field.service import FieldError, save_technician

    _settings, db = _context()
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None or "technician" not in user.role_names:
            raise click.ClickException(f"{email}: no user with the technician role")
        try:
            save_technician(session, user.id, skills=skills, areas=areas,
                            calendar_id=calendar_id, hourly_rate=hourly_rate,
                            max_visits_per_day=max_visits)
        except (FieldError, ArithmeticError, ValueError) as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(json.dumps({"user_id": user.id, "saved": True}))


@cli.command("suggest")
@click.argument("visit_id", type=int)
def suggest_cmd(visit_id: int) -> None:
    """Rank the technicians for a visit."""
    from contactcenter.field.dispatch import suggest
    from contactcenter.field.models import Visit

    _settings, db = _context()
    with db.session() as session:
        visit = session.get(Visit, visit_id)
        if visit is None:
            raise click.ClickException(f"no visit {visit_id}")
        click.echo(json.dumps({"visit_id": visit_id, "items": [
            {"technician_id": s.user_id, "name": s.name, "score": s.score,
             "reasons": list(s.reasons)} for s in suggest(session, visit)]}))


@cli.command("sweep")
def sweep_cmd() -> None:
    """Warn about and breach the on-site deadlines that are due now."""
    from contactcenter.db import utcnow
    from contactcenter.field.sweep import run_sweep

    settings, db = _context()
    with db.session() as session:
        result = run_sweep(session, settings, utcnow())
    click.echo(json.dumps({"warned": result.warned, "breached": result.breached}))


@cli.command("report")
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True)
def report_cmd(days: int) -> None:
    """Print first-time fix, ticket-to-visit time, on-time arrival, costs and satisfaction."""
    from contactcenter.db import utcnow
    from contactcenter.field.report import field_report

    _settings, db = _context()
    now = utcnow()
    with db.session() as session:
        click.echo(json.dumps(field_report(session, now - dt.timedelta(days=days), now,
                                           with_costs=True)))
