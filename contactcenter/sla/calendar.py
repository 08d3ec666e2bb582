"""Business time: add N business minutes to an instant, measure business time between two.

A ``Calendar`` is pure data: a timezone, the weekly working hours (several
intervals a day; an interval whose end is not after its start runs past
midnight into the next day), public holidays of a country from the
``holidays`` library, custom closed days and days with special hours.

How the maths stays right where helpdesks got it wrong (zammad#5177, #3140,
#5624; chatwoot#6467, #14009):

- Working hours are wall-clock times in the calendar's zone; each interval is
  turned into UTC instants on its own day, so a DST change moves the UTC
  instants and never the wall-clock hours, and a shift that spans the change
  is as long as it really is (00:00-06:00 on a spring-forward night is 5 hours).
- Business time is real elapsed time inside those UTC intervals; adding and
  measuring walk the same intervals, so measuring what was added gives it back
  exactly (a property test checks it).
- A shift belongs to the day it starts: a holiday or closed day removes the
  shifts that start on it, including the part after midnight, and leaves the
  tail of the previous night's shift alone.
- Wall-clock times inside a spring-forward gap take the offset in force before
  the change (Python's ``fold=0``), so 02:30 on such a night is 03:30 summer
  time; times in the repeated autumn hour are their first occurrence.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Interval = tuple[int, int]  # minutes after the local midnight of the day it starts on
Week = tuple[tuple[Interval, ...], ...]  # seven days, Monday first

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
ALWAYS = "24x7"
MAX_SCAN_DAYS = 5 * 366
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


class CalendarError(ValueError):
    """A calendar that cannot be parsed, or that has no working time to give."""


@dataclass(frozen=True, eq=False)
class Calendar:
    """A business calendar; ``always_open`` means 24x7 (no hours, no holidays)."""

    timezone: str = "UTC"
    weekly: Week = ((),) * 7
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closed_days: frozenset[dt.date] = frozenset()
    special_hours: Mapping[dt.date, tuple[Interval, ...]] = field(default_factory=dict)
    always_open: bool = False

    @property
    def zone(self) -> ZoneInfo:
        """Return the calendar's timezone."""
        return zone(self.timezone)


TWENTY_FOUR_SEVEN = Calendar(always_open=True)


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """Return a timezone by IANA name, or raise ``CalendarError``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown timezone {name!r}") from exc


def _minute(text: str, *, end: bool = False) -> int:
    match = TIME_RE.match(text.strip())
    if not match:
        raise CalendarError(f"time {text!r} is not HH:MM")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise CalendarError(f"time {text!r} is out of range")
    return hours * 60 + minutes


def parse_intervals(text: str) -> tuple[Interval, ...]:
    """Parse ``"09:00-13:00,14:00-18:00"``; ``"22:00-06:00"`` runs past midnight.

    Intervals of one day must not overlap; an empty text is a closed day.
    """
    out: list[Interval] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.count("-") != 1:
            raise CalendarError(f"interval {part!r} is not HH:MM-HH:MM")
        left, right = part.split("-")
        start, stop = _minute(left), _minute(right, end=True)
        if start >= DAY_MINUTES:
            raise CalendarError(f"interval {part!r} starts at 24:00")
        if stop <= start:
            stop += DAY_MINUTES  # runs past midnight into the next day
        out.append((start, stop))
    out.sort()
    for (_s1, e1), (s2, _e2) in zip(out, out[1:], strict=False):
        if s2 < e1:
            raise CalendarError(f"intervals overlap in {text!r}")
    return tuple(out)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if "-" in part:
            first, last = (x.strip()[:3] for x in part.split("-", 1))
            if first not in DAY_NAMES or last not in DAY_NAMES:
                raise CalendarError(f"unknown day range {part!r}")
            i, j = DAY_NAMES.index(first), DAY_NAMES.index(last)
            days.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
        else:
            if part[:3] not in DAY_NAMES:
                raise CalendarError(f"unknown day {part!r}")
            days.append(DAY_NAMES.index(part[:3]))
    return days


def parse_hours(text: str) -> tuple[Week, bool]:
    """Parse a weekly schedule; return it and whether it is 24x7.

    ``"mon-fri 09:00-13:00,14:00-18:00; sat 10:00-14:00; fri 22:00-02:00"``:
    clauses separated by ``;``, each a day list or range and its intervals. A
    day named twice gets both clauses' intervals. ``"24x7"`` is always open.
    """
    text = text.strip()
    if len(text) > 1000:
        raise CalendarError("the hours are longer than 1000 characters")
    if text.lower() == ALWAYS:
        return ((),) * 7, True
    week: list[list[Interval]] = [[] for _ in range(7)]
    for clause in (c.strip() for c in text.split(";")):
        if not clause:
            continue
        days_text, _, intervals_text = clause.partition(" ")
        intervals = parse_intervals(intervals_text)
        for day in _days(days_text):
            week[day].extend(intervals)
    result = tuple(parse_intervals(",".join(_format(i) for i in sorted(d))) for d in week)
    if not any(result):
        raise CalendarError("the hours have no working time")
    return result, False


def _format(interval: Interval) -> str:
    start, stop = interval
    stop %= DAY_MINUTES
    return f"{start // 60:02d}:{start % 60:02d}-{stop // 60:02d}:{stop % 60:02d}"


def format_hours(week: Week, always_open: bool = False) -> str:
    """Return the text form of a weekly schedule (``parse_hours`` reads it back)."""
    if always_open:
        return ALWAYS
    clauses = [f"{DAY_NAMES[d]} {','.join(_format(i) for i in week[d])}"
               for d in range(7) if week[d]]
    return "; ".join(clauses)


def build_calendar(timezone: str = "UTC", hours: str = ALWAYS, *,
                   holiday_country: str | None = None, holiday_subdivision: str | None = None,
                   closed_days: frozenset[dt.date] | set[dt.date] = frozenset(),
                   special_hours: Mapping[dt.date, str] | None = None) -> Calendar:
    """Build and validate a calendar from its text parts."""
    zone(timezone)
    week, always = parse_hours(hours)
    if holiday_country:
        check_country(holiday_country, holiday_subdivision)
    special = {day: parse_intervals(text) for day, text in (special_hours or {}).items()}
    return Calendar(timezone=timezone, weekly=week, holiday_country=holiday_country or None,
                    holiday_subdivision=holiday_subdivision or None,
                    closed_days=frozenset(closed_days), special_hours=special,
                    always_open=always)


def check_country(country: str, subdivision: str | None = None) -> None:
    """Raise ``CalendarError`` unless the holidays library knows the country (and subdivision)."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise CalendarError(f"no public holidays known for country {country!r}")
    if subdivision and subdivision not in supported[country]:
        raise CalendarError(f"no subdivision {subdivision!r} in {country}")


@functools.lru_cache(maxsize=512)
def holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    """Return a country's public holidays in one year (cached: the library is slow to expand)."""
    table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(table.keys())


def is_holiday(calendar: Calendar, day: dt.date) -> bool:
    """Whether a local day is a public holiday of the calendar's country."""
    if not calendar.holiday_country:
        return False
    return day in holiday_dates(calendar.holiday_country, calendar.holiday_subdivision, day.year)


def shifts_on(calendar: Calendar, day: dt.date) -> tuple[Interval, ...]:
    """Return the working intervals that start on a local day.

    Special hours win over everything; then closed days and holidays; then the week.
    """
    if day in calendar.special_hours:
        return calendar.special_hours[day]
    if day in calendar.closed_days or is_holiday(calendar, day):
        return ()
    return calendar.weekly[day.weekday()]


def _instant(tz: ZoneInfo, day: dt.date, minute: int) -> dt.datetime:
    day = day + dt.timedelta(days=minute // DAY_MINUTES)
    minute %= DAY_MINUTES
    local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    return local.astimezone(dt.UTC)


def open_intervals(calendar: Calendar, since: dt.datetime
                   ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Yield the calendar's working periods as merged UTC intervals, from the one around ``since``.

    Intervals that touch or overlap (a night shift running into the next
    morning's) are merged. Stops after ``MAX_SCAN_DAYS`` days.
    """
    tz = calendar.zone
    first = since.astimezone(tz).date() - dt.timedelta(days=1)  # last night's shift may run on
    current: tuple[dt.datetime, dt.datetime] | None = None
    for offset in range(MAX_SCAN_DAYS):
        day = first + dt.timedelta(days=offset)
        spans = sorted((_instant(tz, day, s), _instant(tz, day, e)) for s, e in shifts_on(
            calendar, day))
        for start, stop in spans:
            if stop <= start:
                continue
            if current is not None and start <= current[1]:
                current = (min(current[0], start), max(current[1], stop))
                continue
            if current is not None and current[1] > since:
                yield current
            current = (start, stop)
    if current is not None and current[1] > since:
        yield current


def _aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise CalendarError("naive datetime given to business-time arithmetic")
    return instant.astimezone(dt.UTC)


def add_business_time(calendar: Calendar, start: dt.datetime, amount: dt.timedelta
                      ) -> dt.datetime:
    """Return the instant ``amount`` of business time after ``start``.

    Zero returns ``start`` itself; a target that ends exactly when a working
    period closes is due at that closing instant, not at the next opening.
    """
    start = _aware(start)
    if amount < dt.timedelta(0):
        raise CalendarError("cannot add negative business time")
    if calendar.always_open or not amount:
        return start + amount
    remaining = amount
    for opens, closes in open_intervals(calendar, start):
        opens = max(opens, start)
        available = closes - opens
        if remaining <= available:
            return opens + remaining
        remaining -= available
    raise CalendarError(f"no working time within {MAX_SCAN_DAYS} days")


def add_business_minutes(calendar: Calendar, start: dt.datetime, minutes: float) -> dt.datetime:
    """Return the instant ``minutes`` business minutes after ``start``."""
    return add_business_time(calendar, start, dt.timedelta(minutes=minutes))


def business_time_between(calendar: Calendar, start: dt.datetime, end: dt.datetime
                          ) -> dt.timedelta:
    """Return the business time inside ``[start, end)``; zero when ``end`` is not later."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return dt.timedelta(0)
    if calendar.always_open:
        return end - start
    total = dt.timedelta(0)
    for opens, closes in open_intervals(calendar, start):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total


def business_minutes_between(calendar: Calendar, start: dt.datetime, end: dt.datetime
                             ) -> float:
    """Return the business minutes inside ``[start, end)``."""
    return business_time_between(calendar, start, end).total_seconds() / 60


def is_open(calendar: Calendar, instant: dt.datetime) -> bool:
    """Whether the instant falls inside working time."""
    instant = _aware(instant)
    if calendar.always_open:
        return True
    for opens, closes in open_intervals(calendar, instant):
        return opens <= instant < closes
    return False
