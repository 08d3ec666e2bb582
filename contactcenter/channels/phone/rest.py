"""Twilio's REST API through the official client, with a configurable base URL.

``CONTACTCENTER_TWILIO_API_BASE_URL`` replaces ``https://api.twilio.com`` (and
any other ``*.twilio.com`` product host) with another origin, keeping the path:
tests run against a local stand-in, and a deployment may use a regional edge or
an egress proxy. Failures are sorted for the outbox: a 4xx Twilio answered
(other than 429) is permanent, anything else (5xx, timeout, connection) is
retried with backoff.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from contactcenter.channels.base import ChannelError, PermanentDeliveryError
from contactcenter.config import Settings

# Twilio error codes that will not change with a retry (opted-out or invalid recipient).
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 63016})


class TwilioApiError(ChannelError):
    """A REST request that failed for now (5xx, 429, timeout, connection): retry later."""


class BaseUrlHttpClient(TwilioHttpClient):
    """The library's HTTP client, sending every request to a configured origin instead."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        self.scheme, self.netloc, self.prefix = parts.scheme, parts.netloc, parts.path

    def request(self, method: str, url: str, params: Any = None, data: Any = None,
                headers: Any = None, auth: Any = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        parts = urlsplit(url)
        url = urlunsplit((self.scheme, self.netloc, self.prefix + parts.path, parts.query, ""))
        return super().request(method, url, params=params, data=data, headers=headers,
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects)


@functools.lru_cache(maxsize=8)
def _client(account_sid: str, auth_token: str, base_url: str, timeout: int) -> Client:
    http = (BaseUrlHttpClient(base_url, float(timeout)) if base_url
            else TwilioHttpClient(timeout=float(timeout)))
    return Client(account_sid, auth_token, http_client=http, environment={})


def client_for(settings: Settings) -> Client:
    """Return the REST client of the configured account (cached per configuration)."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise PermanentDeliveryError("Twilio is not configured "
                                     "(CONTACTCENTER_TWILIO_ACCOUNT_SID and _AUTH_TOKEN)")
    return _client(settings.twilio_account_sid, settings.twilio_auth_token,
                   settings.twilio_api_base_url, max(1, settings.twilio_api_timeout_seconds))


def _failure(exc: Exception, what: str) -> ChannelError:
    if isinstance(exc, TwilioRestException):
        text = f"{what}: Twilio answered {exc.status}" + (f" (error {exc.code})" if exc.code else "") \
            + f": {exc.msg}"[:500]
        if (400 <= exc.status < 500 and exc.status not in (408, 429)) or exc.code in PERMANENT_CODES:
            return PermanentDeliveryError(text)
        return TwilioApiError(text)
    if isinstance(exc, requests.Timeout):
        return TwilioApiError(f"{what}: Twilio did not answer in time")
    return TwilioApiError(f"{what}: {type(exc).__name__}: {exc}"[:500])


def _call(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except (TwilioException, requests.RequestException, OSError) as exc:
        raise _failure(exc, what) from exc


def send_message(settings: Settings, *, to: str, from_: str, body: str,
                 status_callback: str, media_urls: Sequence[str] = ()) -> str:
    """Send one SMS or WhatsApp message; return its MessageSid."""
    if not from_:
        raise PermanentDeliveryError("no number to send from (set CONTACTCENTER_TWILIO_SMS_FROM "
                                     "or the inbox's address)")
    client = client_for(settings)
    kwargs: dict[str, Any] = {"to": to, "from_": from_, "body": body,
                              "status_callback": status_callback}
    if media_urls:
        kwargs["media_url"] = list(media_urls)
    message = _call("sending the message", client.messages.create, **kwargs)
    return str(message.sid)


def redirect_call(settings: Settings, call_sid: str, twiml: str) -> None:
    """Give a live call new TwiML (takes it out of its queue and runs the document)."""
    client = client_for(settings)
    _call("redirecting the call", client.calls(call_sid).update, twiml=twiml)


def create_call(settings: Settings, *, to: str, from_: str, url: str,
                status_callback: str) -> str:
    """Place an outbound call that fetches its TwiML from ``url``; return its CallSid."""
    if not from_:
        raise PermanentDeliveryError("no caller id (set CONTACTCENTER_TWILIO_CALLER_ID)")
    client = client_for(settings)
    call = _call("placing the call", client.calls.create, to=to, from_=from_, url=url,
                 method="POST", status_callback=status_callback, status_callback_method="POST",
                 status_callback_event=["initiated", "ringing", "answered", "completed"])
    return str(call.sid)
