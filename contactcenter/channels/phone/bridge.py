"""Connect a waiting caller to the agent our router gave the call to.

When an offer of a call is accepted (or the call is assigned directly), the
``item.assigned`` event starts ``phone.bridge``: the caller's live call is
given new TwiML through the REST API that takes it out of Twilio's queue and
dials the agent's softphone (``client:agent-<id>``) or forwarding number. The
bridge is claimed with one conditional UPDATE so the job and the sweep never
both ring the agent; a REST failure keeps the call queued and retries soon
with backoff while the caller waits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelError, PermanentDeliveryError
from contactcenter.channels.phone import rest, twiml
from contactcenter.channels.phone.calls import refresh_record
from contactcenter.channels.phone.callstate import Phase
from contactcenter.channels.phone.models import AgentPhone, Call
from contactcenter.channels.phone.numbers import agent_identity
from contactcenter.channels.phone.voice import webhook_url
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.routing.models import ItemState, RoutingItem

CLAIM_FOR = dt.timedelta(seconds=30)


def retry_delay(attempts: int) -> dt.timedelta:
    """Return the wait before the next bridge attempt: 1, 2, 4 ... seconds, at most 30."""
    return dt.timedelta(seconds=min(2 ** max(attempts - 1, 0), 30))


def agent_target(session: Session, agent_id: int) -> tuple[str, bool]:
    """Return where an agent takes calls: (forwarding number, False) or (identity, True)."""
    phone = session.get(AgentPhone, agent_id)
    if phone is not None and phone.forward_number:
        return phone.forward_number, False
    return agent_identity(agent_id), True


def bridge_twiml(session: Session, call: Call, agent_id: int, settings: Settings) -> str:
    """Return the TwiML that rings the agent for a waiting caller."""
    target, client = agent_target(session, agent_id)
    return twiml.dial(target, client=client,
                      action_url=webhook_url(settings, "/twilio/voice/dial-done"),
                      timeout=settings.twilio_agent_ring_seconds,
                      caller_id=call.from_number if not client else "",
                      record=settings.twilio_record_calls,
                      recording_url=webhook_url(settings, "/twilio/recording"),
                      status_url=webhook_url(settings, "/twilio/voice/status", leg="agent"))


def bridge_item(session: Session, item_id: int, settings: Settings,
                now: dt.datetime | None = None) -> str:
    """Bridge the call of an assigned routing item to its agent; return what happened."""
    now = now or utcnow()
    call = session.scalar(select(Call).where(Call.routing_item_id == item_id))
    item = session.get(RoutingItem, item_id)
    if call is None or item is None or item.kind != "call":
        return "not a call"
    if item.state != ItemState.ASSIGNED or item.agent_id is None:
        return "not assigned"
    claim = session.execute(
        update(Call).where(Call.id == call.id, Call.phase == Phase.QUEUED,
                           or_(Call.bridge_next_at.is_(None), Call.bridge_next_at <= now))
        .values(bridge_next_at=now + CLAIM_FOR, bridge_attempts=Call.bridge_attempts + 1)
        .execution_options(synchronize_session=False))
    session.commit()
    if not claim.rowcount:  # type: ignore[attr-defined]
        return "already handled"
    session.refresh(call)
    agent_id = item.agent_id
    try:
        rest.redirect_call(settings, call.sid, bridge_twiml(session, call, agent_id, settings))
    except PermanentDeliveryError as exc:
        # Twilio refused for good (the caller hung up, the call is gone): stop trying.
        call.last_error = str(exc)[:2000]
        call.bridge_next_at = None
        session.commit()
        return "refused"
    except ChannelError as exc:
        call.last_error = str(exc)[:2000]
        call.bridge_next_at = now + retry_delay(call.bridge_attempts)
        session.commit()
        return "retry"
    call.phase = Phase.BRIDGING
    call.agent_id = agent_id
    call.bridge_next_at = None
    call.last_error = ""
    refresh_record(session, call)
    session.commit()
    return "bridged"


def due_bridges(session: Session, now: dt.datetime, limit: int = 100) -> list[int]:
    """Return routing item ids of assigned calls still waiting to be bridged."""
    return list(session.scalars(
        select(Call.routing_item_id).join(RoutingItem, RoutingItem.id == Call.routing_item_id)
        .where(Call.phase == Phase.QUEUED, RoutingItem.state == ItemState.ASSIGNED,
               or_(Call.bridge_next_at.is_(None),
                   and_(Call.bridge_next_at.is_not(None), Call.bridge_next_at <= now)))
        .order_by(Call.id).limit(limit)))
