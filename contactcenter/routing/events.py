"""Record routing's domain events: who hears about an item, an offer or an agent.

Every offer, acceptance, decline, timeout, withdrawal, assignment, transfer,
completion, abandonment and presence change is recorded in the caller's
transaction (``contactcenter.events.record_event``) and published after commit
to ``agent:<id>``, ``queue:<id>``, ``ticket:<id>`` and ``supervisors``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from contactcenter.events import record_event, room
from contactcenter.routing.models import AgentState, RoutingItem


def item_payload(item: RoutingItem) -> dict[str, Any]:
    """Return the fields every item event carries."""
    return {
        "item_id": item.id, "kind": item.kind, "channel": item.channel,
        "queue_id": item.queue_id, "ticket_id": item.ticket_id,
        "customer_id": item.customer_id, "state": item.state, "priority": item.priority,
        "reason": item.priority_reason, "agent_id": item.agent_id,
        "enqueued_at": item.enqueued_at.isoformat(),
        "offer_expires_at": item.offer_expires_at.isoformat() if item.offer_expires_at else None,
    }


def item_rooms(item: RoutingItem, *agents: int | None) -> list[str]:
    """Return the rooms that hear about an item (and the agents named)."""
    rooms = [room("queue", item.queue_id)]
    if item.ticket_id is not None:
        rooms.append(room("ticket", item.ticket_id))
    for agent_id in (item.agent_id, *agents):
        if agent_id is not None:
            rooms.append(room("agent", agent_id))
    return rooms


def record_item_event(session: Session, type_: str, item: RoutingItem,
                      extra: dict[str, Any] | None = None, agents: Iterable[int | None] = ()
                      ) -> None:
    """Record an item or offer event."""
    record_event(session, type_, {**item_payload(item), **(extra or {})},
                 item_rooms(item, *agents))


def record_presence_event(session: Session, state: AgentState, previous: str,
                          queue_ids: Iterable[int]) -> None:
    """Record ``agent.presence_changed`` for the agent, their queues and supervisors."""
    record_event(session, "agent.presence_changed", {
        "agent_id": state.user_id, "presence": state.presence, "previous": previous,
        "reason": state.presence_reason, "since": state.presence_since.isoformat(),
        "wrap_up_until": state.wrap_up_until.isoformat() if state.wrap_up_until else None,
    }, [room("agent", state.user_id), *(room("queue", q) for q in sorted(queue_ids))])
