"""Inbound calls: greet, menu, queue with announcements, voicemail, and the agent's leg.

Each function answers one voice webhook with TwiML and changes state in the
caller's transaction (the endpoint commits, see ``webhooks.handle``). The call
becomes a message on the customer's ticket at the first ring (a new ticket, or
their open one on any channel within the reopen window) and a routing item once
the menu picked its queue; our router, not Twilio's, chooses the agent, and
``bridge`` connects them when the offer is accepted.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.phone import ivr, twiml
from contactcenter.channels.phone.callcontact import call_to_contact, ingest_call
from contactcenter.channels.phone.calls import (
    end_call,
    find_call,
    refresh_record,
    seconds_between,
)
from contactcenter.channels.phone.callstate import Phase, is_final
from contactcenter.channels.phone.models import Call
from contactcenter.channels.phone.numbers import parse_address
from contactcenter.channels.phone.webhooks import Webhook
from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer
from contactcenter.customers.service import find_customer_by_identity
from contactcenter.routing.engine import enqueue_item, load_policy, transfer_item
from contactcenter.routing.models import AgentState, ItemState, Presence, RoutingItem
from contactcenter.routing.stats import item_estimated_wait, item_position
from contactcenter.tickets.models import OPEN_STATUSES, Inbox, Queue, QueueMember, Ticket

STAFFED = (Presence.AVAILABLE, Presence.BUSY, Presence.WRAP_UP)
MAX_MENU_TRIES = 2
MAX_REQUEUES = 3


def webhook_url(settings: Settings, path: str, **query: object) -> str:
    """Return the absolute public URL of one of our webhooks (what Twilio will sign)."""
    url = settings.public_url.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def find_inbox(session: Session, number: str | None) -> tuple[Inbox | None, str | None]:
    """Return the phone inbox of one of our numbers and its queue's language (one query)."""
    if not number:
        return None, None
    row = session.execute(
        select(Inbox, Queue.language).outerjoin(Queue, Queue.id == Inbox.queue_id)
        .where(Inbox.channel.in_(("phone", "voice")), Inbox.address == number).limit(1)).first()
    return (row[0], row[1]) if row is not None else (None, None)


def open_ticket_of(session: Session, customer_id: int, now: dt.datetime,
                   window_days: int) -> Ticket | None:
    """Return the customer's most recent open ticket on any channel within the window."""
    return session.scalar(
        select(Ticket).where(Ticket.customer_id == customer_id,
                             Ticket.status.in_(OPEN_STATUSES),
                             Ticket.last_activity_at >= now - dt.timedelta(days=window_days))
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc()).limit(1))


def is_fast_track(session: Session, customer: Customer | None, settings: Settings,
                  today: dt.date) -> bool:
    """Whether a caller has an active contract or a top value tier."""
    if customer is None:
        return False
    tiers = {t.strip().upper() for t in settings.twilio_fast_track_tiers.split(",") if t.strip()}
    if customer.value_tier and customer.value_tier.upper() in tiers:
        return True
    return session.scalar(select(Contract.id).where(
        Contract.customer_id == customer.id, Contract.starts_on <= today,
        Contract.ends_on >= today).limit(1)) is not None


def _menu(settings: Settings) -> tuple[ivr.MenuOption, ...]:
    return ivr.parse_menu(settings.twilio_ivr_menu)


def start_inbound(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> Call:
    """Record a new inbound call: through intake (customer, ticket, message), then the call row."""
    sid = hook.get("CallSid", limit=64)
    caller = parse_address(hook.get("From"))
    called = parse_address(hook.get("To"))
    inbox, queue_language = find_inbox(session, called.number)
    known = (find_customer_by_identity(session, "phone", caller.number)
             if caller.number else None)
    window = (inbox.reopen_window_days if inbox is not None and inbox.reopen_window_days
              is not None else settings.reopen_window_days)
    existing = open_ticket_of(session, known.id, now, window) if known is not None else None
    contact = call_to_contact(hook.params, ticket_number=existing.number if existing else None,
                              received_at=now)
    result = ingest_call(session, contact, hook.payload, hook.content_type, inbox, settings)
    customer = session.get(Customer, result.customer_id) if result.customer_id else None
    call = Call(sid=sid, direction="inbound", from_number=caller.number or "",
                to_number=called.number or hook.get("To", limit=64), inbox_id=inbox.id if inbox else None,
                customer_id=customer.id if customer else None,
                ticket_id=result.ticket_id, message_id=result.message_id,
                status=hook.get("CallStatus", "ringing", 16), phase=Phase.IVR,
                language=(customer.language if customer and customer.language else queue_language),
                fast_track=is_fast_track(session, customer, settings, now.date()),
                started_at=now, created_at=now, updated_at=now)
    session.add(call)
    session.flush()
    refresh_record(session, call)
    return call


def _greeting(session: Session, call: Call, settings: Settings, retry: bool = False) -> str:
    customer = session.get(Customer, call.customer_id) if call.customer_id else None
    name = customer.name.split()[0] if customer and customer.name and not retry else ""
    doc = twiml.greeting(call.language, name, call.fast_track and not retry, _menu(settings),
                         webhook_url(settings, "/twilio/voice/menu"))
    if retry:
        doc = doc.replace("<Response>", "<Response>" + _say_xml(
            call.language, ivr.say(call.language, "not_understood")), 1)
    return doc


def _say_xml(language: str | None, text: str) -> str:
    from twilio.twiml.voice_response import Say

    return str(Say(text, language=ivr.voice_language(language))).split("?>", 1)[-1]


def _voicemail(call: Call, settings: Settings, reason: str) -> str:
    call.phase = Phase.VOICEMAIL
    return twiml.voicemail(call.language, reason,
                           webhook_url(settings, "/twilio/voicemail/done"),
                           webhook_url(settings, "/twilio/recording"),
                           webhook_url(settings, "/twilio/voice/transcription"),
                           settings.twilio_voicemail_max_seconds)


def _enqueue_twiml(call: Call, queue: Queue, settings: Settings) -> str:
    return twiml.enqueue(call.language, f"cc-{queue.slug}",
                         webhook_url(settings, "/twilio/voice/wait"),
                         webhook_url(settings, "/twilio/voice/queue-exit"))


def answer_for(session: Session, call: Call, settings: Settings) -> str:
    """Return the TwiML for where a call is (a repeated webhook gets the same answer)."""
    if call.phase == Phase.IVR:
        return _greeting(session, call, settings)
    if call.phase == Phase.VOICEMAIL:
        return _voicemail(call, settings, "")
    if call.phase in (Phase.QUEUED, Phase.BRIDGING) and call.queue_id is not None:
        queue = session.get(Queue, call.queue_id)
        if queue is not None:
            return _enqueue_twiml(call, queue, settings)
    return twiml.empty()


def incoming_call(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Answer a ringing call: greet and offer the menu, or voicemail when closed."""
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is not None:
        return answer_for(session, call, settings)
    call = start_inbound(session, hook, settings, now)
    if not ivr.is_open(ivr.parse_hours(settings.twilio_business_hours, settings.twilio_timezone),
                       now):
        doc = _voicemail(call, settings, "closed")
        refresh_record(session, call)
        return doc
    return _greeting(session, call, settings)


def queue_for(session: Session, call: Call, option: ivr.MenuOption | None,
              settings: Settings) -> Queue | None:
    """Return the queue a call goes to: the menu's, the number's, else the configured one."""
    if option is not None:
        queue = session.scalar(select(Queue).where(Queue.slug == option.queue_slug))
        if queue is not None:
            return queue
    inbox = session.get(Inbox, call.inbox_id) if call.inbox_id is not None else None
    if inbox is not None and inbox.queue_id is not None:
        return session.get(Queue, inbox.queue_id)
    if settings.twilio_voice_queue:
        return session.scalar(select(Queue).where(Queue.slug == settings.twilio_voice_queue))
    return None


def is_staffed(session: Session, queue_id: int) -> bool:
    """Whether any member of a queue is at work (available, busy or wrapping up)."""
    return session.scalar(
        select(AgentState.user_id).join(QueueMember, QueueMember.user_id == AgentState.user_id)
        .where(QueueMember.queue_id == queue_id, AgentState.presence.in_(STAFFED)).limit(1)
    ) is not None


def put_in_queue(session: Session, call: Call, queue: Queue, settings: Settings,
                 now: dt.datetime) -> str:
    """Make the call a routing item in a queue and hold the caller in Twilio's queue."""
    if not is_staffed(session, queue.id):
        doc = _voicemail(call, settings, "nobody")
        refresh_record(session, call)
        return doc
    ticket = session.get(Ticket, call.ticket_id) if call.ticket_id is not None else None
    if ticket is not None and ticket.queue_id is None:
        ticket.queue_id = queue.id
    queued = enqueue_item(session, kind="call", channel="voice", queue_id=queue.id, now=now,
                          policy=load_policy(settings), customer_id=call.customer_id,
                          ticket_id=call.ticket_id, external_ref=call.sid,
                          manual_priority="high" if call.fast_track else "normal")
    call.routing_item_id = queued.item.id
    call.queue_id = queue.id
    call.phase = Phase.QUEUED
    if call.queued_at is None:
        call.queued_at = now
    refresh_record(session, call)
    return _enqueue_twiml(call, queue, settings)


def choose_menu(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Apply the caller's menu choice (digits or speech) and queue the call."""
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None:
        call = start_inbound(session, hook, settings, now)
    if call.phase != Phase.IVR:
        return answer_for(session, call, settings)
    menu = _menu(settings)
    digits, speech = hook.get("Digits", limit=20), hook.get("SpeechResult", limit=300)
    option = ivr.choose_option(menu, digits, speech)
    if menu:
        tries = call.ivr_choices.count("no choice")
        if option is not None:
            heard = digits[:1] if digits else f"said “{speech[:60]}”"
            choice = f"{heard} ({option.label})"
        else:
            choice = f"no choice ({digits[:5] or speech[:40] or 'silence'})"
        call.ivr_choices = "; ".join(x for x in (call.ivr_choices, choice) if x)[:200]
        if option is None and tries + 1 < MAX_MENU_TRIES:
            refresh_record(session, call)
            return _greeting(session, call, settings, retry=True)
    queue = queue_for(session, call, option, settings)
    if queue is None:
        doc = _voicemail(call, settings, "nobody")
        refresh_record(session, call)
        return doc
    return put_in_queue(session, call, queue, settings, now)


def waiting(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Play the wait loop: place in line, estimated wait, hold music; leave after the limit."""
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None or call.phase not in (Phase.QUEUED, Phase.BRIDGING):
        return twiml.leave_queue()
    item = session.get(RoutingItem, call.routing_item_id) if call.routing_item_id else None
    waited = seconds_between(call.queued_at, now) or 0
    if item is None or item.state in (ItemState.COMPLETED, ItemState.ABANDONED) or (
            call.phase == Phase.QUEUED and waited >= settings.twilio_max_wait_seconds):
        return twiml.leave_queue()
    announcement = ""
    if item.state == ItemState.WAITING:
        announcement = ivr.wait_phrase(
            call.language, item_position(session, item.id),
            item_estimated_wait(session, item.id, now, load_policy(settings)))
    return twiml.waiting(call.language, announcement, webhook_url(settings, "/twilio/voice/leave"),
                         settings.twilio_hold_music_url, settings.twilio_announce_seconds)


def leave_pressed(hook: Webhook, settings: Settings) -> str:
    """A key pressed while waiting: star leaves the queue for voicemail."""
    if hook.get("Digits", limit=5).startswith("*"):
        return twiml.leave_queue()
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.redirect(webhook_url(settings, "/twilio/voice/wait"), method="POST")
    return str(response)


def queue_exit(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """The caller left Twilio's queue: voicemail when they asked (or waited too long)."""
    call = find_call(session, hook.get("CallSid", limit=64))
    result = hook.get("QueueResult", limit=40)
    if call is None:
        return twiml.hangup()
    queue_time = hook.number("QueueTime")
    if queue_time is not None and call.wait_seconds is None and call.answered_at is None:
        call.wait_seconds = queue_time
    if call.phase == Phase.VOICEMAIL:
        return answer_for(session, call, settings)
    if result in ("redirected", "bridged", "bridging-in-progress") or call.phase in (
            Phase.BRIDGING, Phase.CONNECTED, Phase.ENDED):
        # Our REST redirect took it out to ring the agent: that TwiML runs now.
        return twiml.empty()
    if result == "hangup":
        end_call(session, call, settings, now, "completed", None)
        return twiml.empty()
    from contactcenter.channels.phone.calls import finish_item

    finish_item(session, call, settings, now)
    doc = _voicemail(call, settings, "" if result == "leave" else "nobody")
    refresh_record(session, call)
    return doc


def dial_done(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """The agent's (or, outbound, the customer's) leg ended: record it, requeue when unanswered."""
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None:
        return twiml.hangup()
    status = hook.get("DialCallStatus", limit=20)
    duration = hook.number("DialCallDuration")
    if status == "completed" or (status == "answered"):
        if call.answered_at is None:
            call.answered_at = now - dt.timedelta(seconds=duration or 0)
        call.talk_seconds = duration if duration is not None else call.talk_seconds
        call.outcome = call.outcome or "answered"
        refresh_record(session, call)
        return twiml.hangup()
    if call.direction == "inbound" and call.phase not in (Phase.BRIDGING, Phase.CONNECTED):
        return answer_for(session, call, settings)
    if call.direction != "inbound":
        call.outcome = call.outcome or {"busy": "busy", "failed": "failed"}.get(status, "missed")
        refresh_record(session, call)
        return twiml.hangup()
    # The agent did not pick up: back to the queue (their item goes back to waiting).
    item = session.get(RoutingItem, call.routing_item_id) if call.routing_item_id else None
    queue = session.get(Queue, call.queue_id) if call.queue_id is not None else None
    if queue is None or item is None or item.offer_count > MAX_REQUEUES or is_final(call.status):
        from contactcenter.channels.phone.calls import finish_item

        finish_item(session, call, settings, now)
        doc = _voicemail(call, settings, "nobody")
        refresh_record(session, call)
        return doc
    call.phase = Phase.QUEUED
    call.agent_id = None
    call.bridge_next_at = None
    if item.state in (ItemState.ASSIGNED, ItemState.OFFERED):
        transfer_item(session, item.id, now, load_policy(settings), to_queue_id=queue.id)
    refresh_record(session, call)
    return _enqueue_twiml(call, queue, settings)


def voicemail_done(session: Session, hook: Webhook, settings: Settings) -> str:
    """The caller finished recording: thank them and hang up."""
    call = find_call(session, hook.get("CallSid", limit=64))
    return twiml.spoken(call.language if call else None, "goodbye")
