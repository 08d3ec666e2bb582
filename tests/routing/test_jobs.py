"""Routing's jobs: the periodic sweep and the after-commit re-match; events' JSON shape."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from contactcenter.db import Database, utcnow
from contactcenter.events import EVENT_TYPES, RecordingPublisher
from contactcenter.jobs import JOBS, PERIODIC, InlineJobQueue, load_jobs
from contactcenter.routing import engine
from contactcenter.routing.models import AgentState, ItemState, Presence, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from tests.routing.helpers import make_agent, make_queue


def test_the_jobs_are_registered() -> None:
    load_jobs()
    assert JOBS["routing.sweep"].queue == "default" and "routing.sweep" in PERIODIC
    assert "routing.rematch" in JOBS


def test_the_sweep_expires_offers_and_rematches(db: Database, jobs: InlineJobQueue,
                                                 policy: RoutingPolicy,
                                                 events: RecordingPublisher) -> None:
    past = utcnow() - dt.timedelta(hours=1)
    with db.session() as s:
        queue = make_queue(s)
        agent = make_agent(s, policy, queue, now=past)
        item = engine.enqueue_item(s, kind="call", channel="voice", queue_id=queue.id,
                                   now=past, policy=policy).item
        assert item.state == ItemState.OFFERED
        make_agent(s, policy, queue, now=past)
        s.commit()
        item_id, agent_id = item.id, agent.id
    jobs.enqueue("routing.sweep")
    assert jobs.failures == []
    with db.session() as s:
        swept = s.get(RoutingItem, item_id)
        assert swept is not None and swept.state == ItemState.OFFERED
        assert swept.agent_id != agent_id  # re-offered to the other agent
        assert s.get(AgentState, agent_id).lapsed_offers == 1
    types = [e.type for e in events.published]
    assert "offer.expired" in types and types.count("offer.made") >= 2


def test_rematch_places_a_stranded_item(db: Database, jobs: InlineJobQueue,
                                        policy: RoutingPolicy) -> None:
    with db.session() as s:
        queue = make_queue(s)
        item = engine.enqueue_item(s, kind="chat", channel="chat", queue_id=queue.id,
                                   now=utcnow(), policy=policy, match=False).item
        agent = make_agent(s, policy, queue, presence=None)
        state = s.get(AgentState, agent.id)
        state.presence = Presence.AVAILABLE  # as if set behind the engine's back
        s.commit()
        item_id = item.id
    jobs.enqueue("routing.rematch", [item_id], [])
    assert jobs.failures == []
    with db.session() as s:
        assert s.get(RoutingItem, item_id).state == ItemState.OFFERED


def test_every_routing_event_is_declared_and_json(session: Any, policy: RoutingPolicy,
                                                  events: RecordingPublisher) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    now = utcnow()
    first = engine.enqueue_item(session, kind="call", channel="voice", queue_id=queue.id,
                                now=now, policy=policy)
    decision = first.match.decisions[0]
    engine.accept_offer(session, decision.offer_id, agent.id, now, policy)
    engine.transfer_item(session, first.item.id, now, policy, to_queue_id=queue.id)
    engine.abandon_item(session, first.item.id, now, policy)
    session.commit()
    assert events.published
    for envelope in events.published:
        assert envelope.type in EVENT_TYPES
        assert json.loads(json.dumps(envelope.to_json())) == envelope.to_json()
    assert {"item.queued", "offer.made", "offer.accepted", "item.assigned", "item.transferred",
            "item.abandoned", "agent.presence_changed"} <= {e.type for e in events.published}
