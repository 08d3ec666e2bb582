"""Business-time arithmetic: table-driven cases across DST, holidays, split and night shifts."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.sla.calendar import (
    TWENTY_FOUR_SEVEN,
    CalendarError,
    add_business_minutes,
    build_calendar,
    business_minutes_between,
    format_hours,
    is_open,
    parse_hours,
)


def local(tz: str, *args: int, fold: int = 0) -> dt.datetime:
    """An aware instant from wall-clock parts in a zone."""
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo(tz), fold=fold).astimezone(dt.UTC)


MOSCOW_NIGHTS = build_calendar("Europe/Moscow", "mon-sun 00:00-06:00")
NY_NIGHTS = build_calendar("America/New_York", "mon-sun 00:00-06:00")
BERLIN_NIGHTS = build_calendar("Europe/Berlin", "mon-sun 00:00-06:00")

# (calendar, day start (local), hours of business time that day): a shift spanning a DST
# change lasts as long as it really does.
DST_NIGHTS = [
    ("Moscow spring 2010 (+3 -> +4)", MOSCOW_NIGHTS, "Europe/Moscow", (2010, 3, 28), 5),
    ("Moscow autumn 2010 (+4 -> +3)", MOSCOW_NIGHTS, "Europe/Moscow", (2010, 10, 31), 7),
    ("Moscow 2011 last spring change (+3 -> +4, kept)", MOSCOW_NIGHTS, "Europe/Moscow",
     (2011, 3, 27), 5),
    ("Moscow 2011 autumn: no change any more", MOSCOW_NIGHTS, "Europe/Moscow",
     (2011, 10, 30), 6),
    ("Moscow 2014 back to +3 (01:00 repeated)", MOSCOW_NIGHTS, "Europe/Moscow",
     (2014, 10, 26), 7),
    ("New York spring 2024", NY_NIGHTS, "America/New_York", (2024, 3, 10), 5),
    ("New York autumn 2024", NY_NIGHTS, "America/New_York", (2024, 11, 3), 7),
    ("Berlin spring 2024", BERLIN_NIGHTS, "Europe/Berlin", (2024, 3, 31), 5),
    ("Berlin autumn 2024", BERLIN_NIGHTS, "Europe/Berlin", (2024, 10, 27), 7),
    ("Berlin ordinary night", BERLIN_NIGHTS, "Europe/Berlin", (2024, 6, 9), 6),
]


@pytest.mark.parametrize(("name", "cal", "tz", "day", "hours"), DST_NIGHTS,
                         ids=[c[0] for c in DST_NIGHTS])
def test_a_shift_across_a_dst_change_lasts_as_long_as_it_really_does(name, cal, tz, day, hours):
    start = local(tz, *day)
    end = local(tz, *day, 12)
    assert business_minutes_between(cal, start, end) == hours * 60
    # Adding the whole shift ends exactly when it closes (06:00 local).
    assert add_business_minutes(cal, start, hours * 60) == local(tz, *day, 6)


def test_the_2014_moscow_change_is_one_hour_and_2014_wall_clock_is_respected():
    # 2014-10-26 02:00 MSK (+4) became 01:00 MSK (+3).
    cal = build_calendar("Europe/Moscow", "mon-sun 09:00-18:00")
    before = local("Europe/Moscow", 2014, 10, 24, 17)  # Friday 17:00 +4
    due = add_business_minutes(cal, before, 120)       # 1 h Friday, 1 h Saturday
    assert due == local("Europe/Moscow", 2014, 10, 25, 10)
    due = add_business_minutes(cal, local("Europe/Moscow", 2014, 10, 25, 17), 120)
    assert due == local("Europe/Moscow", 2014, 10, 26, 10)
    assert due.hour == 7  # 10:00 at +3


OFFICE_NY = build_calendar("America/New_York", "mon-fri 09:00-17:00", holiday_country="US")
OFFICE_RU = build_calendar("Europe/Moscow", "mon-fri 09:00-18:00", holiday_country="RU")
SPLIT_BERLIN = build_calendar("Europe/Berlin", "mon-fri 08:00-12:00,13:00-17:00; sat 10:00-14:00")
NIGHT_DESK = build_calendar("Europe/Berlin", "mon-fri 22:00-06:00")
WEEKEND_NIGHT = build_calendar("Europe/Berlin", "sat 22:00-06:00")

# (name, calendar, tz, start wall-clock, minutes, expected due wall-clock)
ADDS = [
    ("inside one day", OFFICE_NY, "America/New_York", (2024, 6, 5, 10, 0), 60,
     (2024, 6, 5, 11, 0)),
    ("across the evening", OFFICE_NY, "America/New_York", (2024, 6, 5, 16, 30), 60,
     (2024, 6, 6, 9, 30)),
    ("over a weekend", OFFICE_NY, "America/New_York", (2024, 6, 7, 16, 0), 120,
     (2024, 6, 10, 10, 0)),
    ("skips Independence Day", OFFICE_NY, "America/New_York", (2024, 7, 3, 16, 0), 120,
     (2024, 7, 5, 10, 0)),
    ("skips Thanksgiving", OFFICE_NY, "America/New_York", (2024, 11, 27, 16, 0), 120,
     (2024, 11, 29, 10, 0)),
    ("year end: Christmas and New Year", OFFICE_NY, "America/New_York",
     (2024, 12, 24, 16, 0), 8 * 60, (2024, 12, 26, 16, 0)),
    ("over New Year's Day into 2025", OFFICE_NY, "America/New_York", (2024, 12, 31, 16, 0),
     120, (2025, 1, 2, 10, 0)),
    ("started at night counts from the opening", OFFICE_NY, "America/New_York",
     (2024, 6, 5, 3, 0), 30, (2024, 6, 5, 9, 30)),
    ("ends exactly at closing", OFFICE_NY, "America/New_York", (2024, 6, 5, 16, 0), 60,
     (2024, 6, 5, 17, 0)),
    ("Russian New Year holidays (30 Dec - 8 Jan)", OFFICE_RU, "Europe/Moscow",
     (2024, 12, 27, 17, 0), 120, (2025, 1, 9, 10, 0)),
    ("Russia Day 12 June and the bridge day 13 June 2025", OFFICE_RU, "Europe/Moscow",
     (2025, 6, 11, 17, 0), 120, (2025, 6, 16, 10, 0)),
    ("Victory Day 9 May and the transferred 8 May 2025", OFFICE_RU, "Europe/Moscow",
     (2025, 5, 7, 17, 30), 60, (2025, 5, 12, 9, 30)),
    ("split shift skips lunch", SPLIT_BERLIN, "Europe/Berlin", (2024, 6, 5, 11, 30), 60,
     (2024, 6, 5, 13, 30)),
    ("split shift into Saturday", SPLIT_BERLIN, "Europe/Berlin", (2024, 6, 7, 16, 30), 60,
     (2024, 6, 8, 10, 30)),
    ("night desk across midnight", NIGHT_DESK, "Europe/Berlin", (2024, 6, 5, 23, 0), 120,
     (2024, 6, 6, 1, 0)),
    ("night desk: Friday's shift runs on into Saturday morning", NIGHT_DESK, "Europe/Berlin",
     (2024, 6, 8, 1, 0), 240, (2024, 6, 8, 5, 0)),
    ("night desk: Saturday 05:00 on, next shift is Monday night", NIGHT_DESK, "Europe/Berlin",
     (2024, 6, 8, 5, 0), 120, (2024, 6, 10, 23, 0)),
    ("night shift across the spring change lasts 7 h", WEEKEND_NIGHT, "Europe/Berlin",
     (2024, 3, 30, 22, 0), 7 * 60, (2024, 3, 31, 6, 0)),
    ("night shift across the autumn change lasts 9 h", WEEKEND_NIGHT, "Europe/Berlin",
     (2024, 10, 26, 22, 0), 9 * 60, (2024, 10, 27, 6, 0)),
]


@pytest.mark.parametrize(("name", "cal", "tz", "start", "minutes", "due"), ADDS,
                         ids=[c[0] for c in ADDS])
def test_adding_business_minutes(name, cal, tz, start, minutes, due):
    start_at = local(tz, *start)
    due_at = add_business_minutes(cal, start_at, minutes)
    assert due_at == local(tz, *due)
    assert business_minutes_between(cal, start_at, due_at) == minutes


def test_night_desk_spring_change_measures_seven_hours():
    # Berlin 2024-03-31 02:00 -> 03:00: the Saturday 22:00 shift is not worked (sat is
    # not in mon-fri); the Friday night shift ends on Saturday 06:00 (8 h); Sunday none.
    fri = local("Europe/Berlin", 2024, 3, 29, 22)
    assert business_minutes_between(NIGHT_DESK, fri, local("Europe/Berlin", 2024, 3, 30, 12)) \
        == 8 * 60
    # A Sunday-night desk on the change: 22:00 Sat is closed, Sunday 00:00-06:00 shift only
    # exists if a Saturday shift ran into it; so add a calendar with sat night.
    weekend = build_calendar("Europe/Berlin", "sat 22:00-06:00")
    sat = local("Europe/Berlin", 2024, 3, 30, 22)
    assert business_minutes_between(weekend, sat, sat + dt.timedelta(hours=12)) == 7 * 60


def test_holiday_closes_the_shift_that_starts_on_it_but_not_last_nights_tail():
    cal = build_calendar("America/New_York", "mon-sun 22:00-02:00", holiday_country="US")
    # 3 July 22:00 -> 4 July 02:00 is worked; 4 July 22:00 (holiday) is not.
    start = local("America/New_York", 2024, 7, 3, 12)
    end = local("America/New_York", 2024, 7, 5, 12)
    assert business_minutes_between(cal, start, end) == 4 * 60


def test_custom_closed_days_and_special_hours():
    cal = build_calendar("Europe/Berlin", "mon-fri 09:00-17:00",
                         closed_days={dt.date(2024, 6, 5)},
                         special_hours={dt.date(2024, 6, 6): "10:00-12:00",
                                        dt.date(2024, 6, 8): "09:00-10:00"})
    start = local("Europe/Berlin", 2024, 6, 4, 16)
    assert add_business_minutes(cal, start, 60 + 120 + 30) == local("Europe/Berlin", 2024, 6, 7,
                                                                   9, 30)
    # Special hours open a Saturday.
    assert is_open(cal, local("Europe/Berlin", 2024, 6, 8, 9, 30))
    assert not is_open(cal, local("Europe/Berlin", 2024, 6, 5, 10))


def test_pauses_are_measured_out():
    # A clock that ran 09:00-10:00, paused until 15:00, then ran: 2 h target due at 16:00.
    cal = OFFICE_NY
    used = business_minutes_between(cal, local("America/New_York", 2024, 6, 5, 9),
                                    local("America/New_York", 2024, 6, 5, 10))
    due = add_business_minutes(cal, local("America/New_York", 2024, 6, 5, 15), 120 - used)
    assert due == local("America/New_York", 2024, 6, 5, 16)


def test_24x7_is_plain_time_even_across_dst():
    start = local("America/New_York", 2024, 3, 10, 0)
    assert add_business_minutes(TWENTY_FOUR_SEVEN, start, 180) == start + dt.timedelta(hours=3)
    always = build_calendar("America/New_York", "mon-sun 00:00-24:00")
    assert business_minutes_between(always, start, start + dt.timedelta(days=1)) == 24 * 60


@pytest.mark.parametrize("bad", ["", "mon 09:00", "xyz 09:00-10:00", "mon 25:00-26:00",
                                 "mon 09:00-12:00,11:00-13:00", "mon 09:60-10:00"])
def test_bad_hours_are_refused(bad):
    with pytest.raises(CalendarError):
        parse_hours(bad)


def test_unknown_timezone_and_country_are_refused():
    with pytest.raises(CalendarError):
        build_calendar("Mars/Olympus", "mon 09:00-10:00")
    with pytest.raises(CalendarError):
        build_calendar("UTC", "mon 09:00-10:00", holiday_country="XX")


def test_hours_round_trip_through_text():
    week, always = parse_hours("mon-fri 09:00-13:00,14:00-18:00; sat 10:00-14:00; fri 22:00-02:00")
    assert not always
    assert parse_hours(format_hours(week)) == (week, False)
    assert week[4] == ((540, 780), (840, 1080), (1320, 1560))


CALENDARS = [OFFICE_NY, OFFICE_RU, SPLIT_BERLIN, NIGHT_DESK, MOSCOW_NIGHTS, NY_NIGHTS,
             TWENTY_FOUR_SEVEN]


@settings(max_examples=150, deadline=None)
@given(cal=st.sampled_from(CALENDARS),
       start=st.datetimes(min_value=dt.datetime(2008, 1, 1), max_value=dt.datetime(2027, 12, 31),
                          timezones=st.just(dt.UTC)),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 20),
       seconds=st.integers(min_value=0, max_value=59))
def test_adding_then_measuring_round_trips(cal, start, minutes, seconds):
    amount = dt.timedelta(minutes=minutes, seconds=seconds)
    from contactcenter.sla.calendar import add_business_time, business_time_between

    due = add_business_time(cal, start, amount)
    assert due >= start
    assert business_time_between(cal, start, due) == amount
    # Splitting the addition anywhere gives the same instant (pauses of zero length).
    half = amount / 2
    mid = add_business_time(cal, start, half)
    assert add_business_time(cal, mid, amount - half) == due or amount == dt.timedelta(0)
