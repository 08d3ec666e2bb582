"""Calls agents place: click to call from a ticket, softphone dialling, notes during a call.

Click to call is agent first: the REST API calls the agent (their softphone
identity or forwarding number) and, when they answer, ``/twilio/voice/connect``
dials the customer with our caller id. The call gets a routing item assigned
to the agent when the rules allow it, so their capacity counts the call and
wrap-up starts when it ends.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.phone import rest, twiml
from contactcenter.channels.phone.bridge import agent_target
from contactcenter.channels.phone.calls import find_call, refresh_record
from contactcenter.channels.phone.callstate import Phase
from contactcenter.channels.phone.models import Call
from contactcenter.channels.phone.numbers import agent_of_identity, parse_address
from contactcenter.channels.phone.voice import webhook_url
from contactcenter.channels.phone.webhooks import Webhook
from contactcenter.config import Settings
from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_phone
from contactcenter.routing.engine import assign_manually, enqueue_item, load_policy
from contactcenter.routing.errors import RoutingError
from contactcenter.tickets.models import Message, Ticket
from contactcenter.tickets.service import add_reply


class CallError(Exception):
    """A call that cannot be placed (bad number, Twilio not configured or refusing)."""


def customer_number(ticket: Ticket) -> str | None:
    """Return the first phone number of a ticket's customer."""
    for identity in ticket.customer.identities:
        if identity.kind == "phone":
            return identity.address
    return None


def _track(session: Session, call: Call, ticket: Ticket, agent_id: int, settings: Settings,
           now: dt.datetime) -> None:
    """Give the call a routing item held by the agent, when the rules let them take it."""
    if ticket.queue_id is None:
        return
    policy = load_policy(settings)
    try:
        with session.begin_nested():
            queued = enqueue_item(session, kind="call", channel="voice", queue_id=ticket.queue_id,
                                  now=now, policy=policy, customer_id=ticket.customer_id,
                                  ticket_id=ticket.id, external_ref=call.sid, match=False)
            assign_manually(session, queued.item.id, agent_id, now, policy, actor_id=agent_id)
            call.routing_item_id = queued.item.id
            call.queue_id = ticket.queue_id
    except RoutingError:
        # Busy or away agents may still call out; the call is just not counted as work.
        pass


def place_call(session: Session, ticket: Ticket, agent: User, settings: Settings,
               now: dt.datetime, number: str | None = None) -> Call:
    """Call a ticket's customer for an agent (agent first); the caller commits what follows the request."""
    try:
        to = normalise_phone(number, settings.phone_region) if number else customer_number(ticket)
    except InvalidIdentityError as exc:
        raise CallError(str(exc)) from exc
    if not to:
        raise CallError("the customer has no phone number")
    caller_id = settings.twilio_caller_id
    if not caller_id:
        raise CallError("no caller id configured (CONTACTCENTER_TWILIO_CALLER_ID)")
    note = add_reply(session, ticket, agent.id, f"Outbound call to {to}", internal=True, now=now)
    call = Call(sid=f"pending-{secrets.token_hex(12)}", direction="outbound",
                from_number=caller_id, to_number=to, customer_id=ticket.customer_id,
                ticket_id=ticket.id, message_id=note.id, agent_id=agent.id,
                status="queued", phase=Phase.IVR, started_at=now, created_at=now, updated_at=now)
    session.add(call)
    session.flush()
    refresh_record(session, call)
    # Commit before the REST request: no database lock is held while Twilio answers.
    session.commit()
    target, client = agent_target(session, agent.id)
    try:
        sid = rest.create_call(settings, to=("client:" + target) if client else target,
                               from_=caller_id,
                               url=webhook_url(settings, "/twilio/voice/connect", call=call.id),
                               status_callback=webhook_url(settings, "/twilio/voice/status"))
    except Exception as exc:
        call.phase, call.outcome, call.status = Phase.ENDED, "failed", "failed"
        call.ended_at = now
        call.last_error = str(exc)[:2000]
        refresh_record(session, call)
        session.commit()
        raise CallError(str(exc)) from exc
    call.sid = sid
    note.external_id = sid
    _track(session, call, ticket, agent.id, settings, now)
    refresh_record(session, call)
    return call


def connect_customer(session: Session, hook: Webhook, settings: Settings) -> str:
    """The agent answered their leg of a click-to-call: dial the customer."""
    call_id = hook.number("call")
    call = session.get(Call, call_id) if call_id is not None else None
    if call is None or call.sid != hook.get("CallSid", limit=64) or call.phase == Phase.ENDED:
        return twiml.hangup()
    call.phase = Phase.BRIDGING
    refresh_record(session, call)
    return twiml.dial(call.to_number, client=False,
                      action_url=webhook_url(settings, "/twilio/voice/dial-done"),
                      timeout=30, caller_id=call.from_number,
                      record=settings.twilio_record_calls,
                      recording_url=webhook_url(settings, "/twilio/recording"),
                      status_url=webhook_url(settings, "/twilio/voice/status", leg="customer"))


def softphone_call(session: Session, hook: Webhook, settings: Settings,
                   now: dt.datetime) -> str:
    """An agent dialled a number from the browser softphone (the TwiML App's voice URL)."""
    agent_id = agent_of_identity(hook.get("From", limit=100))
    to = parse_address(hook.get("To", limit=100)).number
    if agent_id is None or to is None or not settings.twilio_caller_id:
        return twiml.spoken(None, "error")
    sid = hook.get("CallSid", limit=64)
    call = find_call(session, sid)
    if call is None:
        call = Call(sid=sid, direction="outbound", from_number=settings.twilio_caller_id,
                    to_number=to, agent_id=agent_id, status="in-progress", phase=Phase.BRIDGING,
                    started_at=now, created_at=now, updated_at=now)
        session.add(call)
        session.flush()
    return twiml.dial(to, client=False, action_url=webhook_url(settings, "/twilio/voice/dial-done"),
                      timeout=30, caller_id=settings.twilio_caller_id,
                      status_url=webhook_url(settings, "/twilio/voice/status", leg="customer"))


def add_call_note(session: Session, call: Call, agent: User, text: str,
                  now: dt.datetime) -> Message:
    """Log an agent's note on the call's ticket (internal, visible to colleagues only)."""
    ticket = session.get(Ticket, call.ticket_id) if call.ticket_id is not None else None
    if ticket is None:
        raise CallError("the call has no ticket")
    text = text.strip()
    if not text or len(text) > 10_000:
        raise CallError("a note needs 1 to 10000 characters")
    return add_reply(session, ticket, agent.id, f"Call note ({call.sid[-8:]}): {text}",
                     internal=True, now=now)
