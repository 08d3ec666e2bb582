"""Who may take an item: presence, queue, language, skills, capacity, refusals and steps."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.config import Settings
from contactcenter.routing.eligibility import (
    AgentSnapshot,
    ItemSnapshot,
    free_kinds,
    has_capacity,
    ineligibility,
    is_eligible,
    qualifies_for_step,
)
from contactcenter.routing.policy import RoutingPolicy, parse_policy

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
POLICY = parse_policy({"default": {"steps": [
    {"name": "sticky", "preferred": True, "timeout": 30},
    {"name": "experts", "min_level": 3, "timeout": 60},
    {"name": "tier2", "team": "tier2", "timeout": 60},
    {"name": "anyone"}]}}, Settings())
OPEN = parse_policy({"default": {"steps": [{"name": "anyone"}]}}, Settings())


def agent(**kw: Any) -> AgentSnapshot:
    base: dict[str, Any] = {"user_id": 1, "presence": "available", "languages": frozenset({"en"}),
                            "skills": {"billing": 3}, "queue_ids": frozenset({10}),
                            "capacity": {"call": 1, "chat": 3, "ticket": 10},
                            "load": {"call": 0, "chat": 0, "ticket": 0}}
    base.update(kw)
    return AgentSnapshot(**base)


def item(**kw: Any) -> ItemSnapshot:
    base: dict[str, Any] = {"item_id": 5, "kind": "call", "queue_id": 10, "enqueued_at": NOW,
                            "rules_since": NOW - dt.timedelta(hours=1)}
    base.update(kw)
    return ItemSnapshot(**base)


def test_an_able_available_agent_may_take_it() -> None:
    assert ineligibility(agent(), item(), POLICY, NOW) == []
    assert is_eligible(agent(), item(), POLICY, NOW)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"presence": "away"}, "agent is away"),
    ({"presence": "busy"}, "agent is busy"),
    ({"presence": "wrap_up"}, "agent is wrap_up"),
    ({"presence": "offline"}, "agent is offline"),
    ({"queue_ids": frozenset({11})}, "does not serve the queue"),
    ({"languages": frozenset({"ru"})}, "does not speak en"),
    ({"skills": {}}, "needs billing level 2"),
    ({"skills": {"billing": 1}}, "needs billing level 2"),
    ({"load": {"call": 1}}, "no free call capacity"),
    ({"capacity": {"call": 0}}, "no free call capacity"),
    ({"capacity": {}}, "no free call capacity"),
    ({"load": {"chat": 1}}, "no free call capacity"),
])
def test_each_reason_alone_makes_an_agent_ineligible(changes: dict[str, Any], reason: str) -> None:
    subject = item(language="en", skills={"billing": 2})
    reasons = ineligibility(agent(**changes), subject, POLICY, NOW)
    assert len(reasons) == 1 and reason in reasons[0]
    assert not is_eligible(agent(**changes), subject, POLICY, NOW)


def test_refusal_within_the_cooldown() -> None:
    assert ineligibility(agent(), item(refused_by=frozenset({1})), POLICY, NOW) == [
        "agent refused it recently"]
    assert is_eligible(agent(), item(refused_by=frozenset({2})), POLICY, NOW)


def test_items_without_language_or_skills_suit_anyone() -> None:
    assert is_eligible(agent(languages=frozenset(), skills={}), item(), POLICY, NOW)


def test_exclusive_kinds_block_each_other_both_ways() -> None:
    assert not has_capacity(agent(load={"chat": 1}), "call", POLICY)
    assert not has_capacity(agent(load={"call": 1}), "chat", POLICY)
    assert has_capacity(agent(load={"call": 1}), "ticket", POLICY)
    assert free_kinds(agent(load={"chat": 2}), POLICY) == {"chat", "ticket"}
    relaxed = dataclasses.replace(POLICY, exclusive=frozenset())
    assert has_capacity(agent(load={"chat": 3}), "call", relaxed)


@pytest.mark.parametrize(("waited", "skills", "team", "preferred", "ok"), [
    (0, {"billing": 5}, None, None, True),      # no preferred agent: sticky step skipped
    (0, {"billing": 2}, None, None, False),     # experts only for a minute
    (59, {"billing": 2}, "tier2", None, False),
    (60, {"billing": 2}, "tier2", None, True),  # then tier 2
    (60, {"billing": 2}, None, None, False),
    (119, {"billing": 2}, None, None, False),
    (120, {"billing": 2}, None, None, True),    # then anyone
    (120, {}, None, None, True),
])
def test_steps_widen_with_time(waited: int, skills: dict[str, int], team: str | None,
                               preferred: int | None, ok: bool) -> None:
    # Without a preferred agent the rule clock starts 30 s (the sticky step) earlier.
    since = NOW - dt.timedelta(seconds=30 + waited)
    subject = item(rules_since=since, queue_skill="billing", preferred_agent_id=preferred)
    assert qualifies_for_step(agent(skills=skills, team=team), subject, POLICY, NOW) is ok


def test_the_preferred_agent_may_take_it_at_once_and_others_wait() -> None:
    subject = item(rules_since=NOW, queue_skill="billing", preferred_agent_id=1)
    assert is_eligible(agent(skills={}), subject, POLICY, NOW)
    other = agent(user_id=2, skills={"billing": 5})
    assert not is_eligible(other, subject, POLICY, NOW)
    assert is_eligible(other, subject, POLICY, NOW + dt.timedelta(seconds=30))


def test_checks_can_be_relaxed_for_manual_assignment() -> None:
    subject = item(rules_since=NOW, queue_skill="billing", preferred_agent_id=9)
    full = agent(skills={}, load={"call": 1})
    assert set(ineligibility(full, subject, POLICY, NOW)) == {
        "no free call capacity", "the queue's rules have not reached this agent yet"}
    assert ineligibility(full, subject, POLICY, NOW, check_steps=False,
                         check_capacity=False) == []
    assert ineligibility(agent(presence="away"), item(), POLICY, NOW,
                         check_presence=False) == []


agents = st.builds(
    AgentSnapshot, user_id=st.integers(1, 4),
    presence=st.sampled_from(["available", "busy", "away", "wrap_up", "offline"]),
    languages=st.frozensets(st.sampled_from(["en", "ru"])),
    skills=st.dictionaries(st.sampled_from(["billing", "tech"]), st.integers(1, 5)),
    queue_ids=st.frozensets(st.sampled_from([10, 11])),
    capacity=st.fixed_dictionaries({"call": st.integers(0, 1), "chat": st.integers(0, 3)}),
    load=st.fixed_dictionaries({"call": st.integers(0, 1), "chat": st.integers(0, 3)}),
    team=st.sampled_from([None, "tier2"]))
items = st.builds(
    ItemSnapshot, item_id=st.just(1), kind=st.sampled_from(["call", "chat"]),
    queue_id=st.sampled_from([10, 11]), enqueued_at=st.just(NOW),
    rules_since=st.integers(0, 400).map(lambda s: NOW - dt.timedelta(seconds=s)),
    queue_skill=st.sampled_from([None, "billing"]),
    language=st.sampled_from([None, "en", "ru"]),
    skills=st.dictionaries(st.sampled_from(["billing", "tech"]), st.integers(1, 5), max_size=1),
    preferred_agent_id=st.sampled_from([None, 1, 2]),
    refused_by=st.frozensets(st.integers(1, 4), max_size=1))


@settings(max_examples=300, deadline=None)
@given(agents, items, st.sampled_from([POLICY, OPEN]))
def test_eligibility_is_the_conjunction_of_its_checks(a: AgentSnapshot, i: ItemSnapshot,
                                                     policy: RoutingPolicy) -> None:
    expected = (a.presence == "available" and i.queue_id in a.queue_ids
                and (i.language is None or i.language in a.languages)
                and all(a.skills.get(s, 0) >= lvl for s, lvl in i.skills.items())
                and has_capacity(a, i.kind, policy) and a.user_id not in i.refused_by
                and qualifies_for_step(a, i, policy, NOW))
    assert is_eligible(a, i, policy, NOW) is expected
    # Time only widens: eligible now means eligible a minute later.
    if expected:
        assert is_eligible(a, i, policy, NOW + dt.timedelta(minutes=1))
