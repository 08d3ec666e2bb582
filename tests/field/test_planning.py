"""Pure rules: commitments, offered windows, technician ranking, travel and work time."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.field.planning import (
    TechnicianFacts,
    VisitFacts,
    offer_windows,
    onsite_due,
    onsite_minutes_for,
    parse_commitments,
    rank_technicians,
    travel_and_work,
)
from contactcenter.sla.calendar import TWENTY_FOUR_SEVEN, build_calendar

UTC = dt.UTC
OFFICE = build_calendar("UTC", "mon-fri 09:00-17:00")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)  # 2 March 2026 is a Monday


def test_commitments_parse_case_insensitively_and_reject_garbage() -> None:
    table = parse_commitments("Premium=480, standard=960")
    assert table == {"premium": 480, "standard": 960}
    assert onsite_minutes_for("PREMIUM", table, 0) == 480
    assert onsite_minutes_for("gold", table, 0) is None
    assert onsite_minutes_for(None, table, 1440) == 1440
    with pytest.raises(ValueError):
        parse_commitments("premium:480")


def test_eight_business_hours_from_friday_afternoon_is_monday_afternoon() -> None:
    assert onsite_due(OFFICE, at(6, 15), 480) == at(9, 15)
    assert onsite_due(OFFICE, at(6, 15), None) is None


def test_windows_stay_in_working_time_skip_busy_and_spread_over_days() -> None:
    busy = [(at(2, 11), at(2, 13))]
    windows = offer_windows(OFFICE, at(2, 8, 10), 120, 5, busy, per_day=2)
    assert windows[0] == (at(2, 9), at(2, 11))
    assert (at(2, 11), at(2, 13)) not in windows
    assert windows[1] == (at(2, 13), at(2, 15))
    assert windows[2][0].date() == dt.date(2026, 3, 3)
    assert all(9 <= s.hour and e.hour <= 17 for s, e in windows)
    assert len(windows) == 5


def test_windows_skip_the_weekend_and_daytime_only_on_24x7() -> None:
    assert offer_windows(OFFICE, at(6, 16), 120, 1)[0][0] == at(9, 9)
    first = offer_windows(TWENTY_FOUR_SEVEN, at(2, 1, 5), 60, 1)[0]
    assert first == (at(2, 8), at(2, 9))


def tech(uid: int, skills: str, areas: str, booked: int = 0, **kw: object) -> TechnicianFacts:
    slots = tuple((at(2, 9 + 2 * i), at(2, 10 + 2 * i)) for i in range(booked))
    return TechnicianFacts(uid, f"T{uid}", frozenset(skills.split(",")),
                           frozenset(areas.split(",")), 480, slots, **kw)  # type: ignore[arg-type]


def test_suggestions_need_skills_prefer_area_then_free_time_then_load() -> None:
    visit = VisitFacts(frozenset({"fiber"}), "north", 60)
    ranked = rank_technicians(visit, [
        tech(1, "router", "north"),              # lacks the skill
        tech(2, "fiber,router", "south"),        # out of area
        tech(3, "fiber", "north", booked=2),     # in area, busier
        tech(4, "fiber", "north"),               # in area, free
    ])
    assert [s.user_id for s in ranked] == [4, 3, 2]
    assert ranked[0].in_area and "covers the area" in ranked[0].reasons
    assert not ranked[2].in_area


def test_suggestions_leave_out_full_days_and_clashing_windows() -> None:
    window = (at(2, 9, 30), at(2, 10, 30))
    visit = VisitFacts(frozenset(), "north", 60, window)
    ranked = rank_technicians(visit, [
        tech(1, "x", "north", booked=1),                    # booked 09:00-10:00: clash
        tech(2, "x", "north", booked=1, max_visits=1),      # at their maximum
        tech(3, "x", "north", open_in_window=False),        # off shift
        tech(4, "x", "east"),
    ])
    assert [s.user_id for s in ranked] == [4]


def test_travel_and_work_minutes() -> None:
    assert travel_and_work(at(2, 9), at(2, 9, 40), at(2, 11)) == (40, 80)
    assert travel_and_work(None, at(2, 9), at(2, 9, 30)) == (None, 30)


@given(start_minutes=st.integers(0, 14 * 24 * 60), slot=st.sampled_from([30, 60, 120, 240]),
       count=st.integers(1, 8),
       busy_starts=st.lists(st.integers(0, 14 * 24 * 60), max_size=6))
@settings(max_examples=60, deadline=None)
def test_offered_windows_are_working_time_free_and_ordered(
        start_minutes: int, slot: int, count: int, busy_starts: list[int]) -> None:
    after = at(2, 0) + dt.timedelta(minutes=start_minutes)
    busy = [(at(2, 0) + dt.timedelta(minutes=b), at(2, 0) + dt.timedelta(minutes=b + 90))
            for b in busy_starts]
    windows = offer_windows(OFFICE, after, slot, count, busy)
    assert 0 < len(windows) <= count
    assert windows == sorted(windows)
    for start, end in windows:
        assert start >= after and end - start == dt.timedelta(minutes=slot)
        assert start.weekday() < 5 and 9 <= start.hour and (end.hour, end.minute) <= (17, 0)
        assert not any(b0 < end and start < b1 for b0, b1 in busy)
    for (_, end_a), (start_b, _) in itertools.pairwise(windows):
        assert end_a <= start_b


def test_a_contracts_own_commitment_wins_over_its_level_and_the_default() -> None:
    table = parse_commitments("Premium=480")
    assert onsite_minutes_for("Premium", table, 1440, own=90) == 90
    assert onsite_minutes_for(None, table, 1440, own=90) == 90
    assert onsite_minutes_for("Premium", table, 1440, own=None) == 480
