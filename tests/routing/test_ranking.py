"""Agent ranking: sticky, least busy, longest idle, skill level, then id; configurable order."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.routing.eligibility import AgentSnapshot, ItemSnapshot
from contactcenter.routing.ranking import rank_agents, rank_key

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def agent(user_id: int, **kw: Any) -> AgentSnapshot:
    base: dict[str, Any] = {"user_id": user_id, "presence": "available", "languages": frozenset(),
                            "skills": {}, "queue_ids": frozenset({1}),
                            "capacity": {"chat": 4, "ticket": 10}, "load": {}}
    base.update(kw)
    return AgentSnapshot(**base)


ITEM = ItemSnapshot(item_id=1, kind="chat", queue_id=1, enqueued_at=NOW, rules_since=NOW,
                    skills={"billing": 1}, preferred_agent_id=None)


def ranked(agents: list[AgentSnapshot], item: ItemSnapshot = ITEM,
           order: tuple[str, ...] = ("sticky", "load", "idle", "level")) -> list[int]:
    shuffled = list(agents)
    random.Random(7).shuffle(shuffled)
    return [a.user_id for a in rank_agents(shuffled, item, order)]


def test_the_sticky_agent_comes_first() -> None:
    item = ItemSnapshot(item_id=1, kind="chat", queue_id=1, enqueued_at=NOW, rules_since=NOW,
                        preferred_agent_id=3)
    agents = [agent(1), agent(2), agent(3, load={"chat": 3})]
    assert ranked(agents, item) == [3, 1, 2]


def test_exclusive_work_goes_first_to_agents_already_holding_its_kind() -> None:
    # A chat shuts its agent out of calls: agent 2 already holds one, so giving it
    # to them keeps idler agent 1 free for calls. Without exclusions, idle wins.
    agents = [agent(1), agent(2, load={"chat": 1}, last_assigned_at=NOW)]
    order = ("sticky", "blocking", "idle", "load", "level")
    assert [a.user_id for a in rank_agents(agents, ITEM, order, frozenset({"call"}))] == [2, 1]
    assert [a.user_id for a in rank_agents(agents, ITEM, order)] == [1, 2]


def test_least_busy_share_of_the_kind_then_total_load() -> None:
    agents = [agent(1, load={"chat": 2}), agent(2, load={"chat": 1}, capacity={"chat": 1}),
              agent(3, load={"chat": 1}), agent(4, load={"chat": 1, "ticket": 5})]
    assert ranked(agents) == [3, 4, 1, 2]


def test_longest_idle_first_never_assigned_idlest() -> None:
    agents = [agent(1, last_assigned_at=NOW), agent(2, last_assigned_at=NOW - dt.timedelta(1)),
              agent(3)]
    assert ranked(agents) == [3, 2, 1]


def test_skill_level_then_id() -> None:
    agents = [agent(1, skills={"billing": 2}), agent(2, skills={"billing": 5}), agent(3),
              agent(4, skills={"billing": 5})]
    assert ranked(agents) == [2, 4, 1, 3]


def test_the_order_of_criteria_is_configurable() -> None:
    agents = [agent(1, load={"chat": 1}, skills={"billing": 5}),
              agent(2, load={}, skills={"billing": 1})]
    assert ranked(agents) == [2, 1]
    assert ranked(agents, order=("level", "load")) == [1, 2]


def test_the_queue_skill_counts_when_the_item_names_none() -> None:
    item = ItemSnapshot(item_id=1, kind="chat", queue_id=1, enqueued_at=NOW, rules_since=NOW,
                        queue_skill="tech")
    assert ranked([agent(1), agent(2, skills={"tech": 1})], item, ("level",)) == [2, 1]


def test_unknown_criteria_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown ranking"):
        rank_key(agent(1), ITEM, ("charm",))


snapshots = st.lists(st.builds(
    agent, st.integers(1, 50), load=st.fixed_dictionaries({"chat": st.integers(0, 4)}),
    skills=st.dictionaries(st.just("billing"), st.integers(1, 5)),
    last_assigned_at=st.one_of(st.none(), st.integers(0, 100).map(
        lambda m: NOW - dt.timedelta(minutes=m)))), unique_by=lambda a: a.user_id)


@settings(max_examples=150, deadline=None)
@given(snapshots, st.permutations(["sticky", "load", "idle", "level"]))
def test_ranking_is_a_deterministic_total_order(agents: list[AgentSnapshot],
                                                order: list[str]) -> None:
    first = rank_agents(agents, ITEM, order)
    assert rank_agents(list(reversed(agents)), ITEM, order) == first
    keys = [rank_key(a, ITEM, order) for a in first]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
