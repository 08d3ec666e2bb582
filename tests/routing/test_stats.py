"""Queue statistics: waiting, longest and estimated wait, positions, agents, service level
and abandonment over 15 minutes and today."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.config import Settings
from contactcenter.routing import engine
from contactcenter.routing.models import Offer
from contactcenter.routing.policy import RoutingPolicy, parse_policy
from contactcenter.routing.stats import (
    estimated_wait,
    item_estimated_wait,
    item_position,
    queue_stats,
)
from tests.routing.helpers import T0, make_agent, make_queue


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(("ahead", "free", "staffed", "handle", "expected"), [
    (0, 1, 1, 300, 0), (2, 3, 3, 300, 0), (0, 0, 1, 300, 300), (3, 1, 2, 100, 150),
    (5, 0, 0, 300, None), (0, 0, 4, 60, 15)])
def test_estimated_wait(ahead: int, free: int, staffed: int, handle: int,
                        expected: int | None) -> None:
    assert estimated_wait(ahead, free, staffed, handle) == expected


def test_live_figures_per_queue_and_kind(session: Any) -> None:
    policy = parse_policy({"queues": {"phones": {"targets": {"call": 15}}}},
                          Settings(routing_wrap_up_seconds="call=0"))
    queue = make_queue(session, "phones")
    other = make_queue(session, "other")
    agent = make_agent(session, policy, queue, now=at(0))
    make_agent(session, policy, queue, presence="away")
    engine.set_presence(session, make_agent(session, policy, other).id, "busy", at(0), policy)

    def call(now: dt.datetime, **kw: Any) -> Any:
        return engine.enqueue_item(session, kind="call", channel="voice", queue_id=queue.id,
                                   now=now, policy=policy, **kw).item

    answered = call(at(0))  # offered at once to the available agent
    offer = session.scalars(select(Offer).where(Offer.item_id == answered.id)).one()
    engine.accept_offer(session, offer.id, agent.id, at(10), policy)
    engine.complete_item(session, answered.id, at(130), policy)  # 120 s handled, wait 10 s
    slow = call(at(200))
    offer = session.scalars(select(Offer).where(Offer.item_id == slow.id)).one()
    engine.accept_offer(session, offer.id, agent.id, at(219), policy)  # agent now busy
    gone = call(at(220))
    engine.abandon_item(session, gone.id, at(230), policy)
    first = call(at(300), manual_priority="high")
    second = call(at(310))
    third = call(at(320), manual_priority="high")
    earlier = call(T0 - dt.timedelta(hours=20))  # yesterday's: not in today's figures
    engine.abandon_item(session, earlier.id, T0 - dt.timedelta(hours=19), policy)
    now = at(20 * 60)
    stats = {(s.queue_slug, s.kind): s for s in queue_stats(session, now, policy)}
    calls = stats[("phones", "call")]
    assert (calls.waiting, calls.offered, calls.assigned) == (3, 0, 1)
    assert calls.longest_wait_seconds == 20 * 60 - 300
    assert calls.target_seconds == 15 and stats[("phones", "chat")].target_seconds == 60
    assert calls.agents == {"available": 1, "busy": 0, "away": 1, "wrap_up": 0, "offline": 0}
    assert stats[("other", "call")].agents["busy"] == 1
    assert calls.average_handle_seconds == 120
    assert (calls.free_slots, calls.staffed_slots) == (0, 1)
    assert calls.estimated_wait_seconds == 4 * 120
    assert calls.today.to_json() == {"answered": 2, "within_target": 1, "abandoned": 1,
                                     "service_level": round(1 / 3, 4),
                                     "abandonment": round(1 / 3, 4)}
    assert (calls.last_15_min.answered, calls.last_15_min.abandoned) == (0, 0)
    assert calls.last_15_min.service_level is None
    recent = {(s.queue_slug, s.kind): s for s in queue_stats(session, at(600), policy,
                                                            queue_id=queue.id)}
    assert set(recent) == {("phones", k) for k in ("call", "chat", "ticket")}
    assert recent[("phones", "call")].last_15_min.to_json()["answered"] == 2
    assert [item_position(session, i.id) for i in (first, third, second)] == [1, 2, 3]
    assert item_position(session, answered.id) is None
    assert item_estimated_wait(session, second.id, now, policy) == 3 * 120
    assert stats[("phones", "chat")].estimated_wait_seconds == 0  # free chat slots


def test_no_queues_no_figures(session: Any, policy: RoutingPolicy) -> None:
    assert queue_stats(session, T0, policy) == []
