"""Webhook signatures exactly as Twilio computes them, and what a bad one gets."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

from sqlalchemy import func, select

from contactcenter.channels.phone.models import TwilioWebhook
from contactcenter.channels.phone.signature import is_valid_request, public_request_url
from contactcenter.tickets.models import Message, RawInbound
from tests.channels.phone.conftest import PUBLIC, TOKEN, load, sign
from tests.channels.phone.helpers import make_line


def test_public_url_is_rebuilt_from_configuration_behind_a_proxy():
    assert public_request_url("https://cc.example.test/", "", "/twilio/sms", "") == \
        "https://cc.example.test/twilio/sms"
    assert public_request_url("https://x.test/desk", "/desk", "/twilio/sms", "a=1&b=%20") == \
        "https://x.test/desk/twilio/sms?a=1&b=%20"
    assert public_request_url("https://x.test/desk", "", "/twilio/sms", "") == \
        "https://x.test/desk/twilio/sms"


def test_signature_accepts_port_variants_and_rejects_changes():
    params = {"CallSid": "CA1", "From": "+15005550006", "Body": "héllo"}
    url = "https://cc.example.test/twilio/voice"
    good = sign(url, params)
    assert is_valid_request(TOKEN, url, "POST", params, b"", "application/x-www-form-urlencoded",
                            good)
    # Twilio sometimes signs with the default port spelled out.
    with_port = sign("https://cc.example.test:443/twilio/voice", params)
    assert is_valid_request(TOKEN, url, "POST", params, b"", "", with_port)
    assert not is_valid_request(TOKEN, url, "POST", {**params, "Body": "hello"}, b"", "", good)
    assert not is_valid_request(TOKEN, "http://cc.example.test/twilio/voice", "POST", params,
                                b"", "", good)
    assert not is_valid_request("other-token", url, "POST", params, b"", "", good)
    assert not is_valid_request("", url, "POST", params, b"", "", good)
    assert not is_valid_request(TOKEN, url, "POST", params, b"", "", "")


def test_get_and_json_bodies_are_signed_over_the_url():
    url = "https://cc.example.test/twilio/voice/status?CallSid=CA1&CallStatus=ringing"
    assert is_valid_request(TOKEN, url, "GET", None, b"", "", sign(url, {}))
    body = json.dumps({"CallSid": "CA1", "CallStatus": "completed"}).encode()
    digest = hashlib.sha256(body).hexdigest()
    json_url = f"https://cc.example.test/twilio/voice/status?bodySHA256={digest}"
    signature = sign(json_url, {})
    assert is_valid_request(TOKEN, json_url, "POST", None, body, "application/json", signature)
    assert not is_valid_request(TOKEN, json_url, "POST", None, body + b" ", "application/json",
                                signature)
    # A JSON body without the hash in the signed URL is never trusted.
    bare = "https://cc.example.test/twilio/voice/status"
    assert not is_valid_request(TOKEN, bare, "POST", None, body, "application/json",
                                sign(bare, {}))


def test_webhooks_without_a_valid_signature_get_403_and_store_nothing(
        webhooks, client, session, settings):
    make_line(session, settings)
    params = load("sms_inbound")
    assert webhooks.post("/twilio/sms", params, signature="").status_code == 403
    assert webhooks.post("/twilio/sms", params, signature="bm90LWEtc2lnbmF0dXJl").status_code == 403
    signed = sign(PUBLIC + "/twilio/sms", params)
    tampered = urlencode({**params, "Body": "Send me the refund"})
    response = client.post("/twilio/sms", data=tampered,
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signed})
    assert response.status_code == 403
    # Signed for another host (the app's internal address) is not ours.
    inner = webhooks.post("/twilio/sms", params, url_base="http://127.0.0.1:5000")
    assert inner.status_code == 403
    for path in ("/twilio/voice", "/twilio/voice/status", "/twilio/recording",
                 "/twilio/sms/status"):
        assert webhooks.post(path, load("voice_incoming"), signature="x").status_code == 403
    assert session.scalar(select(func.count()).select_from(RawInbound)) == 0
    assert session.scalar(select(func.count()).select_from(TwilioWebhook)) == 0
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_unknown_parameters_are_ignored_and_the_raw_body_is_kept(webhooks, session, settings):
    make_line(session, settings)
    params = load("sms_inbound", SomethingNew="value", AddOns='{"status":"successful"}')
    assert webhooks.post("/twilio/sms", params).status_code == 200
    raw = session.scalar(select(RawInbound))
    assert b"SomethingNew=value" in raw.payload and raw.state == "processed"


def test_a_replayed_callback_is_deduplicated(webhooks, session, settings):
    make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    status = load("voice_status_completed")
    first = webhooks.post("/twilio/voice/status", status)
    again = webhooks.post("/twilio/voice/status", status,
                          headers={"I-Twilio-Idempotency-Token": "replay"})
    assert first.get_data(as_text=True) == "ended"
    assert again.status_code == 200 and again.get_data(as_text=True) == "duplicate"
    assert session.scalar(select(func.count()).select_from(TwilioWebhook).where(
        TwilioWebhook.endpoint == "voice-status")) == 1


def test_get_webhooks_are_validated_over_the_query(client, session, settings):
    make_line(session, settings)
    query = urlencode(load("voice_incoming"))
    url = f"{PUBLIC}/twilio/voice?{query}"
    ok = client.get(f"/twilio/voice?{query}", headers={"X-Twilio-Signature": sign(url, {})})
    assert ok.status_code == 200 and "<Gather" in ok.get_data(as_text=True)
    bad = client.get(f"/twilio/voice?{query}&x=1", headers={"X-Twilio-Signature": sign(url, {})})
    assert bad.status_code == 403
