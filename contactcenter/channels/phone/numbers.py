"""Twilio addresses: E.164 numbers, ``whatsapp:`` numbers and softphone ``client:`` identities.

Twilio sends numbers in E.164 already, but a caller may be anonymous
(``+266696687``, ``anonymous``, empty) and WhatsApp senders carry a
``whatsapp:`` prefix; both are normalised here so that one person's number
always looks the same, whatever channel it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_phone

WHATSAPP_PREFIX = "whatsapp:"
CLIENT_PREFIX = "client:"
# What Twilio sends for callers who withhold their number.
ANONYMOUS = frozenset({"", "anonymous", "restricted", "unknown", "private", "+266696687",
                       "+7378742833", "+2562533", "+8656696"})


@dataclass(frozen=True)
class Address:
    """A parsed Twilio address: the channel it implies and the E.164 number (or None)."""

    channel: str  # sms | whatsapp | client | anonymous
    number: str | None
    raw: str


def agent_identity(user_id: int) -> str:
    """Return the softphone identity of an agent (``agent-<id>``)."""
    return f"agent-{user_id}"


def agent_of_identity(identity: str) -> int | None:
    """Return the agent id of a softphone identity (with or without ``client:``), else None."""
    value = identity[len(CLIENT_PREFIX):] if identity.startswith(CLIENT_PREFIX) else identity
    if value.startswith("agent-") and value[6:].isdigit() and len(value) < 20:
        return int(value[6:])
    return None


@lru_cache(maxsize=4096)
def parse_address(raw: str, default_region: str = "US") -> Address:
    """Parse a ``From``/``To`` value; a number that is not a possible one is anonymous.

    Cached: a webhook reads its numbers several times, and libphonenumber's parse
    is the costliest step of it; the answer is a frozen value of the string alone.
    """
    value = (raw or "").strip()[:100]
    lowered = value.lower()
    if lowered.startswith(CLIENT_PREFIX):
        return Address("client", None, value)
    channel = "sms"
    if lowered.startswith(WHATSAPP_PREFIX):
        channel, value = "whatsapp", value[len(WHATSAPP_PREFIX):]
    if value.lower() in ANONYMOUS:
        return Address("anonymous", None, raw)
    try:
        return Address(channel, normalise_phone(value, default_region), raw)
    except InvalidIdentityError:
        return Address("anonymous", None, raw)


def to_twilio(number: str, channel: str) -> str:
    """Return a number as Twilio wants it for a channel (``whatsapp:+1...`` for WhatsApp)."""
    if channel == "whatsapp" and not number.startswith(WHATSAPP_PREFIX):
        return WHATSAPP_PREFIX + number
    return number
