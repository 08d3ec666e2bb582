"""The life of one SLA clock: start, pause, resume, meet, and what the sweep reports.

Every function takes the clock row, its calendar and the instant, and changes
only the row (no session, no I/O), so the rules are unit-tested as plain data.

Rules:
- A running clock's ``due_at`` is the remaining business time added to
  ``running_since``; its ``warn_at`` is where ``warn_percent`` of the target is
  used up. Both are recomputed at every resume from the stored UTC instants and
  the calendar, so a DST change or a holiday between pause and resume is counted
  right.
- A clock is breached when the instant passes ``due_at`` while it runs (met
  exactly at ``due_at`` is on time). ``breached_at`` is always that true instant,
  even when the breach is noticed later (a pause, a reply or a sweep after an
  outage).
- ``next_check_at`` is the next instant the sweep must act on: the warning if not
  yet reported, else the breach if not yet reported; NULL once nothing is left.
  A breach that happened unseen before a pause or a reply is still reported once.
  A warning whose moment passed while the clock was stopped is dropped: only the
  breach matters then.
"""

from __future__ import annotations

import datetime as dt

from contactcenter.sla.calendar import Calendar, add_business_time, business_time_between
from contactcenter.sla.models import ClockState, SlaClock

WARNING = "warning"
BREACH = "breach"


def _target(clock: SlaClock) -> dt.timedelta:
    return dt.timedelta(minutes=clock.target_minutes)


def used(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> dt.timedelta:
    """Return the business time the clock has used by ``now``."""
    total = dt.timedelta(seconds=clock.elapsed_seconds)
    if clock.state == ClockState.RUNNING and clock.running_since is not None:
        total += business_time_between(calendar, clock.running_since, now)
    return total


def refresh_next_check(clock: SlaClock) -> None:
    """Set ``next_check_at`` from what is still unreported (see the module docstring)."""
    candidates: list[dt.datetime] = []
    if clock.breach_reported_at is None:
        if clock.state == ClockState.RUNNING:
            if clock.warned_at is None and clock.warn_at is not None:
                candidates.append(clock.warn_at)
            if clock.due_at is not None:
                candidates.append(clock.due_at)
        if clock.breached_at is not None:
            candidates.append(clock.breached_at)
    clock.next_check_at = min(candidates) if candidates else None


def schedule(clock: SlaClock, calendar: Calendar) -> None:
    """Compute a running clock's warning and due instants from its remaining time."""
    assert clock.running_since is not None
    target = _target(clock)
    elapsed = dt.timedelta(seconds=clock.elapsed_seconds)
    clock.due_at = add_business_time(calendar, clock.running_since,
                                     max(target - elapsed, dt.timedelta(0)))
    if 0 < clock.warn_percent < 100 and clock.warned_at is None:
        warn_after = target * clock.warn_percent / 100
        clock.warn_at = add_business_time(calendar, clock.running_since,
                                          max(warn_after - elapsed, dt.timedelta(0)))
    else:
        clock.warn_at = None
    refresh_next_check(clock)


def start(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> SlaClock:
    """Start a new clock at ``now``."""
    clock.state = ClockState.RUNNING
    clock.started_at = now
    clock.running_since = now
    clock.elapsed_seconds = 0
    schedule(clock, calendar)
    return clock


def _note_breach(clock: SlaClock, now: dt.datetime) -> None:
    if clock.breached_at is None and clock.due_at is not None and now > clock.due_at:
        clock.breached_at = clock.due_at


def _fold(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> None:
    """Fold the running time into ``elapsed_seconds`` and stop running."""
    _note_breach(clock, now)
    clock.elapsed_seconds = int(used(clock, calendar, now).total_seconds())
    clock.running_since = None
    clock.due_at = None
    clock.warn_at = None


def pause(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> bool:
    """Stop a running clock, keeping the business time used; return whether it changed."""
    if clock.state != ClockState.RUNNING:
        return False
    _fold(clock, calendar, now)
    clock.state = ClockState.PAUSED
    refresh_next_check(clock)
    return True


def resume(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> bool:
    """Run a paused clock again with the remaining time; return whether it changed."""
    if clock.state != ClockState.PAUSED:
        return False
    clock.state = ClockState.RUNNING
    clock.running_since = now
    schedule(clock, calendar)
    return True


def reopen(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> bool:
    """Run a met clock again (a solved ticket reopened): the time while solved is not counted."""
    if clock.state != ClockState.MET:
        return False
    clock.state = ClockState.RUNNING
    clock.met_at = None
    clock.business_seconds = None
    clock.running_since = now
    schedule(clock, calendar)
    return True


def meet(clock: SlaClock, calendar: Calendar, now: dt.datetime) -> bool:
    """Mark the target met at ``now`` (late if it ran past ``due_at``); return whether it changed."""
    if clock.state == ClockState.MET:
        return False
    if clock.state == ClockState.RUNNING:
        _fold(clock, calendar, now)
    clock.state = ClockState.MET
    clock.met_at = now
    clock.business_seconds = clock.elapsed_seconds
    refresh_next_check(clock)
    return True


def sweep_step(clock: SlaClock, now: dt.datetime) -> str | None:
    """Decide what the sweep reports for a clock at ``now`` and record it on the row.

    Returns ``"breach"``, ``"warning"`` or None. A breach found together with an
    unreported warning (the sweep was down) is reported alone, with its true time.
    """
    action: str | None = None
    if clock.breach_reported_at is None:
        if clock.state == ClockState.RUNNING:
            _note_breach(clock, now)
        if clock.breached_at is not None:
            clock.breach_reported_at = now
            if clock.warned_at is None:
                clock.warned_at = now
            action = BREACH
        elif (clock.state == ClockState.RUNNING and clock.warned_at is None
              and clock.warn_at is not None and clock.warn_at <= now):
            clock.warned_at = now
            action = WARNING
    refresh_next_check(clock)
    return action
