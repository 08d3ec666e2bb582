"""Erlang C against published worked examples, and at sizes where factorials overflow."""

from __future__ import annotations

from fractions import Fraction

import pytest

from contactcenter.reports.erlang import (
    ErlangInputError,
    agents_for_service_level,
    erlang_c,
    evaluate,
    scheduled_headcount,
    traffic_intensity,
)
from contactcenter.reports.staffing import StaffingRequest, plan_staffing


def exact_erlang_c(traffic: int, agents: int) -> Fraction:
    """Erlang C by the textbook formula in exact rational arithmetic (slow, never overflows)."""
    term = Fraction(1)
    total = Fraction(0)
    for k in range(agents):
        total += term
        term = term * traffic / (k + 1)
    top = term * Fraction(agents, agents - traffic)
    return top / (total + top)


def test_call_centre_helper_example_100_calls_per_half_hour() -> None:
    # Call Centre Helper's worked example: 100 calls in 30 minutes, 180 s handle time,
    # 80% answered in 20 s: 10 Erlangs, 14 agents, Pw 17.41%, SL 88.84%, ASA 7.8 s,
    # occupancy 71.43%, and 20 agents to schedule with 30% shrinkage.
    plan = plan_staffing(StaffingRequest(calls=100, interval_seconds=1800, aht_seconds=180,
                                         target_seconds=20, service_level=0.8, shrinkage=0.3))
    result = plan.result
    assert result.traffic == pytest.approx(10.0)
    assert result.agents == 14
    assert round(result.wait_probability, 4) == 0.1741
    assert round(result.service_level, 4) == 0.8884
    assert result.asa_seconds is not None and round(result.asa_seconds, 1) == 7.8
    assert round(result.occupancy, 4) == 0.7143
    assert plan.scheduled == 20


@pytest.mark.parametrize(("agents", "pw", "sl"), [
    (11, 0.6821, 0.3896), (12, 0.4494, 0.6402), (13, 0.2853, 0.7956), (15, 0.1020, 0.9415),
])
def test_same_example_around_the_answer(agents: int, pw: float, sl: float) -> None:
    # 13 agents fall just short of 80/20, which is why the example needs 14.
    result = evaluate(10.0, agents, 180, 20)
    assert round(result.wait_probability, 4) == pw
    assert round(result.service_level, 4) == sl


def test_360_calls_per_half_hour_with_55_agents() -> None:
    # The step-by-step example: 360 calls per half hour, 4 minute calls, 55 agents,
    # 15 s target: 48 Erlangs, occupancy 87.27%, Pw 23.87%, ASA 8.18 s, SL 84.59%.
    traffic = traffic_intensity(360, 1800, 240)
    result = evaluate(traffic, 55, 240, 15)
    assert traffic == pytest.approx(48.0)
    assert round(result.occupancy, 4) == 0.8727
    assert round(result.wait_probability, 4) == 0.2387
    assert result.asa_seconds is not None and round(result.asa_seconds, 2) == 8.18
    assert round(result.service_level, 4) == 0.8459


def test_koole_example_one_call_a_minute_five_minutes_each() -> None:
    # Koole's Call Center Mathematics (chapter 4): 1 arrival a minute, 5 minute service,
    # 80% within 20 seconds needs 8 agents.
    result = agents_for_service_level(traffic_intensity(1, 60, 300), 300, 20, 0.8)
    assert result.agents == 8
    assert evaluate(5.0, 7, 300, 20).service_level < 0.8


@pytest.mark.parametrize(("traffic", "agents"), [(10, 14), (48, 55), (170, 180), (1900, 2000)])
def test_matches_exact_rational_formula(traffic: int, agents: int) -> None:
    assert erlang_c(float(traffic), agents) == pytest.approx(
        float(exact_erlang_c(traffic, agents)), rel=1e-9)


def test_thousands_of_agents_never_overflow() -> None:
    # 1,000 calls a minute of 2 minutes each: 2,000 Erlangs; a naive A**N / N! overflows.
    with pytest.raises(OverflowError):
        float(2000.0 ** 2000)
    result = agents_for_service_level(traffic_intensity(60_000, 3600, 120), 120, 20, 0.9)
    assert 2000 < result.agents < 2100
    assert result.service_level >= 0.9
    assert evaluate(2000.0, result.agents - 1, 120, 20).service_level < 0.9
    big = evaluate(19_000.0, 20_000, 60, 10)
    assert 0 <= big.wait_probability < 1e-6 and big.service_level > 0.999999


def test_understaffed_queue_has_no_finite_wait() -> None:
    result = evaluate(10.0, 10, 180, 20)
    assert result.wait_probability == 1.0
    assert result.service_level == 0.0
    assert result.asa_seconds is None


def test_no_traffic_needs_no_agents() -> None:
    result = agents_for_service_level(0.0, 180, 20, 0.8)
    assert result.agents == 0 and result.service_level == 1.0


@pytest.mark.parametrize("kwargs", [
    {"calls": -1}, {"interval_seconds": 0}, {"aht_seconds": 0}, {"shrinkage": 1.0},
    {"agents": 5, "service_level": 0.8}, {"service_level": None}, {"service_level": 1.0},
])
def test_bad_inputs_are_refused(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"calls": 100, "interval_seconds": 1800, "aht_seconds": 180,
                               "target_seconds": 20, "service_level": 0.8}
    with pytest.raises(ErlangInputError):
        plan_staffing(StaffingRequest(**{**base, **kwargs}))  # type: ignore[arg-type]


def test_shrinkage_rounds_up() -> None:
    assert scheduled_headcount(14, 0.3) == 20
    assert scheduled_headcount(14, 0.0) == 14
    assert scheduled_headcount(15, 0.3) == 22
