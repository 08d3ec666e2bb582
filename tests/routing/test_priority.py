"""The priority function: each factor, the explanation, the next change, determinism."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.routing.priority import (
    PriorityInputs,
    PriorityWeights,
    age_points,
    effective_due,
    lifetime_value_points,
    priority_score,
    sla_points,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
W = PriorityWeights()


def inputs(**kw: object) -> PriorityInputs:
    base: dict[str, object] = {"kind": "ticket", "channel": "email", "enqueued_at": NOW}
    base.update(kw)
    return PriorityInputs(**base)  # type: ignore[arg-type]


def test_a_plain_new_email_scores_zero_and_reads_standard() -> None:
    score = priority_score(inputs(), W, NOW)
    assert (score.score, score.reason, score.components) == (0, "standard", ())
    assert score.changes_at == NOW + dt.timedelta(minutes=5)


def test_the_issue_example_reads_like_the_desktop_shows_it() -> None:
    score = priority_score(inputs(value_tier="A", contract_level="gold",
                                  due_at=NOW + dt.timedelta(minutes=12)), W, NOW)
    assert score.reason == "VIP tier A, contract Gold, SLA due in 12 min"
    assert score.score == 400 + 300 + 400


@pytest.mark.parametrize(("tier", "points", "label"), [
    ("A", 400, "VIP tier A"), ("b", 200, "tier B"), ("C", 50, "tier C"), ("Z", 0, None),
    (None, 0, None), ("", 0, None)])
def test_value_tiers(tier: str | None, points: int, label: str | None) -> None:
    score = priority_score(inputs(value_tier=tier), W, NOW)
    assert score.score == points
    assert (label in score.reason) if label else score.reason == "standard"


@pytest.mark.parametrize(("value", "points"), [
    (None, 0), (0, 0), (-5, 0), (9_999, 0), (10_000, 10), (Decimal("25000.50"), 20),
    (10_000_000, 100)])
def test_lifetime_value_is_stepped_and_capped(value: object, points: int) -> None:
    assert lifetime_value_points(value, W) == points  # type: ignore[arg-type]


@pytest.mark.parametrize(("level", "minutes", "points"), [
    ("Gold", None, 300), ("PLATINUM", None, 400), ("bronze", None, 60), ("custom", None, 100),
    ("gold", 1440, 300), ("gold", 720, 375), ("gold", 0, 300), ("gold", 5000, 300)])
def test_contract_level_and_response_commitment(level: str, minutes: int | None,
                                               points: int) -> None:
    score = priority_score(inputs(contract_level=level, response_minutes=minutes), W, NOW)
    contract = [p for label, p in score.components if label.startswith("contract")]
    assert contract == [points]


def test_a_response_commitment_is_also_a_deadline() -> None:
    due = effective_due(inputs(response_minutes=30, due_at=NOW + dt.timedelta(hours=2)))
    assert due == NOW + dt.timedelta(minutes=30)
    assert effective_due(inputs(response_minutes=30, due_at=NOW)) == NOW
    assert effective_due(inputs()) is None
    score = priority_score(inputs(contract_level="gold", response_minutes=30), W, NOW)
    assert "SLA due in 30 min" in score.reason


@pytest.mark.parametrize(("left_min", "points", "text", "next_change_min"), [
    (300, 0, "SLA due in 5 h", 60), (240, 40, "SLA due in 4 h", 180), (61, 40, "61 min", 1),
    (60, 120, "60 min", 30), (12, 400, "SLA due in 12 min", 7), (5, 550, "5 min", 5),
    (0.5, 550, "SLA due in 1 min", 0.5), (0, 700, "SLA due now", None),
    (-4, 700, "SLA overdue by 4 min", None)])
def test_sla_bands(left_min: float, points: int, text: str, next_change_min: float | None) -> None:
    due = NOW + dt.timedelta(minutes=left_min)
    got, reason, change = sla_points(due, NOW, W)
    assert got == points and text in reason
    expected = None if next_change_min is None else NOW + dt.timedelta(minutes=next_change_min)
    assert change == expected


@pytest.mark.parametrize(("channel", "kind", "points"), [
    ("voice", "call", 600), ("chat", "chat", 350), ("sms", "ticket", 80),
    ("email", "ticket", 0), ("whatsapp", "chat", 350), ("api", "ticket", 0)])
def test_a_caller_on_the_line_outranks_an_email(channel: str, kind: str, points: int) -> None:
    assert priority_score(inputs(channel=channel, kind=kind), W, NOW).score == points


@pytest.mark.parametrize(("waited_min", "points", "next_min"), [
    (0, 0, 5), (4.9, 0, 5), (5, 10, 10), (29, 50, 30), (149, 290, 150), (150, 300, None),
    (600, 300, None), (-3, 0, 5)])
def test_age_is_stepped_and_capped(waited_min: float, points: int, next_min: int | None) -> None:
    enqueued = NOW - dt.timedelta(minutes=waited_min)
    got, change = age_points(enqueued, NOW, W)
    assert got == points
    assert change == (None if next_min is None else enqueued + dt.timedelta(minutes=next_min))


@pytest.mark.parametrize(("manual", "points"), [
    ("urgent", 600), ("high", 250), ("normal", 0), ("low", -100), ("odd", 0)])
def test_manual_priority(manual: str, points: int) -> None:
    assert priority_score(inputs(manual_priority=manual), W, NOW).score == points


def test_negative_parts_count_but_are_not_shown() -> None:
    score = priority_score(inputs(manual_priority="low", value_tier="C"), W, NOW)
    assert score.score == -50 and score.reason == "tier C"


def test_weights_come_from_configuration() -> None:
    weights = PriorityWeights(tiers={"A": 1}, channels={"call": 2}, age_points=0)
    score = priority_score(inputs(value_tier="A", kind="call", channel="call",
                                  enqueued_at=NOW - dt.timedelta(hours=5)), weights, NOW)
    assert score.score == 3 and score.changes_at is None


def test_changes_at_is_the_nearest_of_age_and_sla() -> None:
    score = priority_score(inputs(due_at=NOW + dt.timedelta(minutes=62)), W, NOW)
    assert score.changes_at == NOW + dt.timedelta(minutes=2)  # the 60-minute band
    score = priority_score(inputs(due_at=NOW + dt.timedelta(minutes=300),
                                  enqueued_at=NOW - dt.timedelta(minutes=3)), W, NOW)
    assert score.changes_at == NOW + dt.timedelta(minutes=2)  # the next age step


moments = st.integers(min_value=-10_000, max_value=10_000).map(
    lambda s: NOW + dt.timedelta(seconds=s))
priority_inputs = st.builds(
    PriorityInputs, kind=st.sampled_from(["ticket", "call", "chat"]),
    channel=st.sampled_from(["email", "voice", "chat", "sms"]), enqueued_at=moments,
    value_tier=st.sampled_from([None, "A", "B", "C"]),
    lifetime_value=st.one_of(st.none(), st.integers(0, 10**7)),
    contract_level=st.sampled_from([None, "gold", "silver"]),
    response_minutes=st.one_of(st.none(), st.integers(1, 3000)),
    due_at=st.one_of(st.none(), moments),
    manual_priority=st.sampled_from(["low", "normal", "high", "urgent"]))


@settings(max_examples=200, deadline=None)
@given(priority_inputs, moments, st.integers(0, 100_000))
def test_the_score_only_changes_at_changes_at(item: PriorityInputs, now: dt.datetime,
                                              step: int) -> None:
    first = priority_score(item, W, now)
    assert first == priority_score(item, W, now)  # deterministic
    assert first.score == sum(p for _label, p in first.components)
    assert first.changes_at is None or first.changes_at > now
    before = now + dt.timedelta(seconds=step)
    if first.changes_at is None or before < first.changes_at:
        assert priority_score(item, W, before).score == first.score


@settings(max_examples=200, deadline=None)
@given(priority_inputs, moments, st.integers(1, 100_000))
def test_the_score_never_falls_as_time_passes(item: PriorityInputs, now: dt.datetime,
                                              step: int) -> None:
    later = now + dt.timedelta(seconds=step)
    assert priority_score(item, W, later).score >= priority_score(item, W, now).score
