"""Twilio's webhooks, the softphone token and the phone pieces of the agent desktop.

Every ``/twilio/...`` endpoint checks ``X-Twilio-Signature`` against the public
URL (``CONTACTCENTER_PUBLIC_URL`` + path + raw query) before reading anything,
answers 403 without it, and hands the request to
``contactcenter.channels.phone.service`` (store raw, apply once, answer). The
endpoints are CSRF-exempt: Twilio cannot carry our token, the signature is the
proof. The softphone's script is ``static/phone/softphone.js``, which the desk mounts.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, request

from contactcenter.app import csrf, db_session, services
from contactcenter.channels.phone.service import handle_webhook
from contactcenter.channels.phone.signature import is_valid_request, public_request_url
from contactcenter.channels.phone.webhooks import Webhook, parse_params

bp = Blueprint("phone_ui", __name__)
csrf.exempt(bp)

MAX_WEBHOOK_BYTES = 64 * 1024
ROUTES = {
    "/twilio/voice": "voice",
    "/twilio/voice/menu": "menu",
    "/twilio/voice/wait": "wait",
    "/twilio/voice/leave": "leave",
    "/twilio/voice/queue-exit": "queue-exit",
    "/twilio/voice/dial-done": "dial-done",
    "/twilio/voice/connect": "connect",
    "/twilio/voicemail/done": "voicemail-done",
    "/twilio/voice/status": "voice-status",
    "/twilio/voice/transcription": "transcription",
    "/twilio/recording": "recording",
    "/twilio/sms": "sms",
    "/twilio/sms/status": "sms-status",
}


def _signed_webhook(endpoint: str) -> Webhook:
    """Return the request as a ``Webhook`` if Twilio signed it; abort 403 (or 413) otherwise."""
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        abort(413)
    body = request.get_data(cache=True, parse_form_data=False)
    if len(body) > MAX_WEBHOOK_BYTES:
        abort(413)
    settings = services().settings
    query = request.query_string.decode("utf-8", "replace")
    url = public_request_url(settings.public_url, request.script_root, request.path, query)
    content_type = request.headers.get("Content-Type", "")
    form = request.form if request.method == "POST" and not content_type.startswith(
        "application/json") else None
    if not is_valid_request(settings.twilio_auth_token, url, request.method, form, body,
                            content_type, request.headers.get("X-Twilio-Signature", ""),
                            request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")):
        abort(403)
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            abort(400)
        params = {str(k)[:100]: str(v)[:4000] for k, v in data.items()
                  if isinstance(v, str | int | float)} if isinstance(data, dict) else {}
        params.update({k: v for k, v in parse_params(b"", query).items() if k not in params})
    else:
        params = parse_params(body if request.method == "POST" else b"", query)
    return Webhook(endpoint, params, body, content_type[:100], query[:1000],
                   request.headers.get("I-Twilio-Idempotency-Token", "")[:200])


def _webhook_view(endpoint: str) -> Any:
    def view() -> Any:
        hook = _signed_webhook(endpoint)
        svc = services()
        answer = handle_webhook(db_session(), endpoint, hook, svc.settings, svc.registry)
        for name, arg in answer.jobs:
            svc.jobs.enqueue(name, arg, key=f"{name}:{arg}")
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    view.__name__ = "twilio_" + endpoint.replace("-", "_")
    return view


for _path, _endpoint in ROUTES.items():
    bp.add_url_rule(_path, view_func=_webhook_view(_endpoint), methods=["GET", "POST"])

