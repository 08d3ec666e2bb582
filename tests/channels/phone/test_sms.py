"""SMS, MMS and WhatsApp: inbound threading, keywords, media download, replies and status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from contactcenter.channels.phone.models import SmsMedia, SmsOptOut, SmsPart
from contactcenter.tickets.models import Attachment, DeliveryState, Message, Ticket
from contactcenter.tickets.outbox import deliver_message
from contactcenter.tickets.service import add_reply
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import CALLER, make_line

SMS_SID = "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0"


def _message(session: Any, sid: str) -> Message:
    session.expire_all()
    message = session.scalar(select(Message).where(Message.external_id == sid))
    assert message is not None
    return message


def test_inbound_sms_in_cyrillic_with_emoji_threads_by_number(webhooks, session, settings):
    line = make_line(session, settings)
    response = webhooks.post("/twilio/sms", load("sms_inbound"))
    assert response.status_code == 200
    assert response.get_data(as_text=True).endswith("<Response />")
    message = _message(session, SMS_SID)
    assert message.text == "Привет! Роутер опять не работает 😢🔥"
    assert message.customer_id == line.customer.id and message.channel == "sms"
    second = load("sms_inbound", MessageSid="SM" + "a" * 32, Body="Ещё вопрос")
    webhooks.post("/twilio/sms", second)
    assert _message(session, "SM" + "a" * 32).ticket_id == message.ticket_id
    # Replayed by Twilio: nothing new.
    webhooks.post("/twilio/sms", load("sms_inbound"))
    assert session.scalar(select(Ticket.id).where(Ticket.id != message.ticket_id)) is None


def test_whatsapp_message_is_its_own_channel_with_the_profile_name(webhooks, session, settings):
    make_line(session, settings)
    webhooks.post("/twilio/sms", load("whatsapp_inbound"))
    message = _message(session, "SM8888777766665555444433332222aaaa")
    assert message.channel == "whatsapp" and message.sender == "+447700900123"
    assert message.ticket.customer.name == "Olivia"


def test_mms_media_is_recorded_by_url_and_fetched_only_from_twilio_hosts(
        webhooks, session, settings, twilio):
    make_line(session, settings)
    path = "/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1"
    twilio.redirects[path] = twilio.url + "/cdn/ME1"
    twilio.media["/cdn/ME1"] = (b"\xff\xd8jpeg-bytes", "image/jpeg")
    params = load("mms_inbound", MediaUrl0=twilio.url + path)
    evil = load("mms_inbound", MessageSid="MM" + "e" * 32,
                MediaUrl0="https://evil.example.com/steal.jpg")
    webhooks.post("/twilio/sms", params)
    webhooks.post("/twilio/sms", evil)
    message = _message(session, params["MessageSid"])
    assert f"[media: image/jpeg {twilio.url}{path}]" in message.text
    media = session.scalars(select(SmsMedia).order_by(SmsMedia.id)).all()
    assert [m.state for m in media] == ["fetched", "refused"]
    attachment = session.get(Attachment, media[0].attachment_id)
    assert attachment.content_type == "image/jpeg" and attachment.size == 12
    assert "not a Twilio media host" in media[1].error
    # Credentials went to the first hop only, never to the CDN.
    gets = [r for r in twilio.requests if r.method == "GET"]
    assert "Authorization" in gets[0].headers and "Authorization" not in gets[1].headers


def test_oversized_media_is_refused(webhooks, session, settings, twilio):
    from contactcenter.channels.phone.media import fetch_media

    make_line(session, settings)
    twilio.media["/big"] = (b"x" * 2048, "image/png")
    webhooks.post("/twilio/sms", load("mms_inbound", MediaUrl0=twilio.url + "/big"))
    media = session.scalar(select(SmsMedia))
    session.refresh(media)
    media.state = "pending"
    session.commit()
    assert fetch_media(session, media.id, settings.replace(twilio_media_max_bytes=1000)) == "refused"


def test_stop_opts_out_and_replies_are_refused_until_start(webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/sms", load("sms_inbound"))
    stop = webhooks.post("/twilio/sms", load("sms_inbound", Body=" stop ", MessageSid="SM" + "5" * 32))
    assert stop.status_code == 200
    assert session.scalar(select(SmsOptOut.address)) == CALLER
    ticket = _message(session, SMS_SID).ticket
    reply = add_reply(session, ticket, line.agent.id, "Did you try turning it off and on?")
    session.commit()
    assert reply.delivery_state == DeliveryState.FAILED and "STOP" in reply.delivery_error
    assert deliver_message(session, reply.id, _registry(), settings) == "failed"
    assert twilio.posts("/Messages.json") == []
    help_ = webhooks.post("/twilio/sms", load("sms_inbound", Body="HELP", MessageSid="SM" + "6" * 32))
    assert "STOP" in help_.get_data(as_text=True)
    webhooks.post("/twilio/sms", load("sms_inbound", Body="START", MessageSid="SM" + "7" * 32))
    assert session.scalar(select(SmsOptOut.address)) is None
    # Keyword messages open no ticket.
    assert session.scalar(select(Message.id).where(Message.text == "HELP")) is None


def _registry() -> Any:
    from contactcenter.channels.base import load_builtin_adapters

    return load_builtin_adapters()


def test_reply_goes_out_through_rest_split_and_status_callbacks_show_delivery(
        webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/sms", load("sms_inbound"))
    ticket = _message(session, SMS_SID).ticket
    words = ("слово " * 400).strip()  # 2399 characters: two messages
    reply = add_reply(session, ticket, line.agent.id, words)
    session.commit()
    assert deliver_message(session, reply.id, _registry(), settings) == "sent"
    sent = twilio.posts("/Messages.json")
    assert len(sent) == 2
    assert sent[0].form["To"] == [CALLER] and sent[0].form["From"] == ["+12025550101"]
    assert all(len(r.form["Body"][0]) <= 1600 for r in sent)
    assert " ".join(r.form["Body"][0] for r in sent) == words
    callback = sent[0].form["StatusCallback"][0]
    assert callback.startswith("https://cc.example.test/twilio/sms/status?m=")
    session.refresh(reply)
    sids = list(twilio.message_sids)
    assert sids[0] == reply.external_id
    for index, sid in enumerate(sids):
        for status in ("sent", "delivered", "sent"):  # a late "sent" never moves it back
            webhooks.post("/twilio/sms/status",
                          load("sms_status", MessageSid=sid, MessageStatus=status,
                               SmsStatus=status),
                          query=f"m={reply.id}&p={index}")
    session.expire_all()
    reply = session.get(Message, reply.id)
    assert reply.delivered_at is not None and reply.delivery_state == DeliveryState.SENT
    parts = session.scalars(select(SmsPart).order_by(SmsPart.part)).all()
    assert [p.status for p in parts] == ["delivered", "delivered"]


def test_undelivered_status_marks_the_reply_failed_with_twilios_code(
        webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/sms", load("sms_inbound"))
    reply = add_reply(session, _message(session, SMS_SID).ticket, line.agent.id, "Hi!")
    session.commit()
    deliver_message(session, reply.id, _registry(), settings)
    session.refresh(reply)
    webhooks.post("/twilio/sms/status", load("sms_status", MessageSid=reply.external_id,
                                             MessageStatus="undelivered", ErrorCode="30006"),
                  query=f"m={reply.id}&p=0")
    session.expire_all()
    reply = session.get(Message, reply.id)
    assert reply.delivery_state == DeliveryState.FAILED
    assert "30006" in reply.delivery_error


def test_rest_failures_keep_the_reply_queued_and_retry_with_backoff(
        webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/sms", load("whatsapp_inbound"))
    ticket = _message(session, "SM8888777766665555444433332222aaaa").ticket
    reply = add_reply(session, ticket, line.agent.id, "Your order ships today")
    session.commit()
    twilio.fail(500, "timeout")
    assert deliver_message(session, reply.id, _registry(), settings) == "pending"
    session.refresh(reply)
    assert "500" in reply.delivery_error and reply.next_attempt_at is not None
    first_retry = reply.next_attempt_at
    assert deliver_message(session, reply.id, _registry(), settings, first_retry) == "pending"
    session.refresh(reply)
    assert "did not answer in time" in reply.delivery_error
    assert reply.next_attempt_at - first_retry > first_retry - reply.created_at  # backoff grows
    assert deliver_message(session, reply.id, _registry(), settings,
                           reply.next_attempt_at) == "sent"
    sent = twilio.posts("/Messages.json")
    assert len(sent) == 3
    assert sent[-1].form["To"] == ["whatsapp:+447700900123"]
    assert sent[-1].form["From"] == ["whatsapp:+12025550101"]


def test_webhook_answers_once_raw_is_stored_and_a_lost_job_is_ingested_by_the_sweep(
        webhooks, session, settings, jobs, monkeypatch, clock, twilio):
    """The 2xx means "stored"; intake (ticket, message, media rows) is the job's work."""
    from contactcenter.tickets.jobs import sweep_pending_raw
    from contactcenter.tickets.models import RawInbound

    make_line(session, settings)
    run = jobs.enqueue
    lost: list[tuple[str, tuple[Any, ...]]] = []

    def lose_intake(name: str, *args: Any, key: str | None = None) -> None:
        if name == "phone.ingest_message":
            lost.append((name, args))
            return
        run(name, *args, key=key)

    monkeypatch.setattr(jobs, "enqueue", lose_intake)
    params = load("mms_inbound", MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/"
                                           "Messages/MM1/Media/ME1")
    response = webhooks.post("/twilio/sms", params)
    assert response.status_code == 200
    raw = session.scalar(select(RawInbound).where(RawInbound.external_id == params["MessageSid"]))
    assert raw is not None and raw.state == "pending" and raw.channel == "sms"
    assert lost == [("phone.ingest_message", (raw.id,))]
    assert session.scalar(select(Message.id)) is None  # nothing ingested yet
    # Twilio retries the webhook: the stored row is found, its intake is asked for again.
    webhooks.post("/twilio/sms", params)
    assert len(lost) == 2 and session.scalar(select(func.count(RawInbound.id))) == 1
    clock.shift(180)  # past the intake sweep's grace period
    assert sweep_pending_raw(jobs.ctx) == 1
    message = _message(session, params["MessageSid"])
    media = session.scalars(select(SmsMedia).where(SmsMedia.message_id == message.id)).all()
    assert [(m.url, m.state) for m in media] == [(params["MediaUrl0"], "pending")]
    session.expire_all()
    assert session.get(RawInbound, raw.id).state == "processed"
