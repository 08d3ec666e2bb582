"""``contactcenter staffing ...``: Erlang C staffing for a queue, JSON out.

Either evaluate a staffing level (``--agents K``) or find the fewest agents for
a target (``--service-level P``, a fraction such as 0.8 or a percentage such
as 80), then the scheduled headcount after ``--shrinkage`` (0.3 or 30).
"""

from __future__ import annotations

import json

import click

from contactcenter.reports.erlang import ErlangInputError
from contactcenter.reports.staffing import StaffingRequest, plan_staffing


def _fraction(value: float | None) -> float | None:
    """Accept 0.8 or 80 for eighty percent."""
    if value is None:
        return None
    return value / 100 if value > 1 else value


@click.command("staffing")
@click.option("--calls", type=float, required=True, help="Contacts forecast per interval.")
@click.option("--interval-seconds", type=int, default=1800, show_default=True,
              help="Length of the interval.")
@click.option("--aht-seconds", type=float, required=True, help="Average handle time.")
@click.option("--target-seconds", type=float, required=True, help="Target answer time.")
@click.option("--agents", type=int, default=None, help="Evaluate this many agents.")
@click.option("--service-level", type=float, default=None,
              help="Find agents for this service level (0.8 or 80).")
@click.option("--shrinkage", type=float, default=0.0, show_default=True,
              help="Share of paid time off the phones (0.3 or 30).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def staffing(calls: float, interval_seconds: int, aht_seconds: float, target_seconds: float,
             agents: int | None, service_level: float | None, shrinkage: float,
             as_json: bool) -> None:
    """Erlang C staffing for a queue: agents, waiting probability, SL, ASA, occupancy."""
    try:
        plan = plan_staffing(StaffingRequest(
            calls=calls, interval_seconds=interval_seconds, aht_seconds=aht_seconds,
            target_seconds=target_seconds, agents=agents,
            service_level=_fraction(service_level), shrinkage=_fraction(shrinkage) or 0.0))
    except ErlangInputError as exc:
        raise click.UsageError(str(exc)) from exc
    data = plan.to_json()
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    asa = data["asa_seconds"]
    click.echo(f"traffic {data['traffic_erlangs']:.2f} Erlangs; agents {data['agents']} "
               f"(schedule {data['scheduled_headcount']}); waiting probability "
               f"{data['wait_probability']:.2%}; service level {data['service_level']:.2%}; "
               f"ASA {'unbounded' if asa is None else f'{asa:.1f} s'}; "
               f"occupancy {data['occupancy']:.2%}")
