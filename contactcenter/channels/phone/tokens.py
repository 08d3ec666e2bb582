"""Access tokens for the browser softphone (Twilio Voice JS SDK).

A token names the agent's client identity (``agent-<id>``, the one bridged
calls dial), may receive calls, and may place calls through our TwiML App; it
is signed with an API key (never the account's Auth Token) and lives one hour.
"""

from __future__ import annotations

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from contactcenter.channels.phone.numbers import agent_identity
from contactcenter.config import Settings

TOKEN_TTL = 3600


class TokenUnavailable(Exception):
    """Softphone tokens are not configured (API key, secret or TwiML App missing)."""


def softphone_token(settings: Settings, user_id: int, ttl: int = TOKEN_TTL) -> tuple[str, str]:
    """Return (token, identity) for an agent's softphone."""
    if not (settings.twilio_account_sid and settings.twilio_api_key_sid
            and settings.twilio_api_key_secret):
        raise TokenUnavailable("set CONTACTCENTER_TWILIO_API_KEY_SID and _API_KEY_SECRET "
                               "to use the browser softphone")
    identity = agent_identity(user_id)
    token = AccessToken(settings.twilio_account_sid, settings.twilio_api_key_sid,
                        settings.twilio_api_key_secret, identity=identity, ttl=ttl)
    token.add_grant(VoiceGrant(outgoing_application_sid=settings.twilio_twiml_app_sid or None,
                               incoming_allow=True))
    jwt = token.to_jwt()
    return (jwt.decode() if isinstance(jwt, bytes) else str(jwt)), identity
