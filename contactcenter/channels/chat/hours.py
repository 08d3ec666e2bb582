"""Opening hours of live chat: "mon-fri 09:00-17:00; sat 10:00-14:00" (pure).

Outside them the widget offers a message form instead of a live chat. The
hours are read in the configured IANA timezone, so a DST change moves them with
the wall clock.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PART_RE = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*"
                     r"(\d{1,2}):(\d{2})\s*$")

Hours = dict[int, list[tuple[dt.time, dt.time]]]


class HoursError(ValueError):
    """An opening-hours text that cannot be read."""


def parse_hours(text: str) -> Hours:
    """Parse opening hours into weekday -> [(open, close)]; empty text means always open."""
    hours: Hours = {}
    for part in filter(None, (p.strip() for p in text.lower().split(";"))):
        match = PART_RE.match(part)
        if match is None:
            raise HoursError(f"cannot read opening hours {part!r} (e.g. 'mon-fri 09:00-17:00')")
        first, last, h1, m1, h2, m2 = match.groups()
        if first not in DAYS or (last is not None and last not in DAYS):
            raise HoursError(f"unknown day in {part!r}")
        try:
            start, end = dt.time(int(h1), int(m1)), dt.time(int(h2) % 24, int(m2))
        except ValueError as exc:
            raise HoursError(f"bad time in {part!r}") from exc
        a, b = DAYS.index(first), DAYS.index(last or first)
        days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        for day in days:
            hours.setdefault(day, []).append((start, end))
    return hours


def is_open(hours: Hours, timezone: str, now: dt.datetime) -> bool:
    """Whether chat is open at ``now`` (aware); no hours at all means always open."""
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(timezone or "UTC"))
    for start, end in hours.get(local.weekday(), []):
        closes = end if end != dt.time(0, 0) else dt.time.max
        if start <= local.time() < closes:
            return True
    return False
