"""Sign and check reply tokens: an HMAC over (ticket, recipient address) (RELIABILITY ID-1).

A reply token proves that whoever writes received our mail about a ticket at the
address they write from. It is the first 64 bits (16 hex characters) of
HMAC-SHA256 keyed with a key derived from ``CONTACTCENTER_SECRET_KEY`` over the
ticket number, the ticket's own random secret (``Ticket.reply_token``, so that
rotating it revokes every token of the ticket) and the lower-cased recipient
address. Outbound mail carries it twice: in the plus-address Reply-To
(``help+t1042-<token>@ours.example``) and in our Message-ID
(``msg-<message id>.<ticket number>.<token>@ours.example``), which a reply
repeats in In-Reply-To/References. Inbound, a token counts only when it was
minted for that ticket AND for the sender's address: a forwarded mail, a forged
From or a third party writing to the reply address (the "ticket trick") proves
nothing. 64 bits are far beyond what anyone can guess over SMTP, and they fit
the 16-hex plus-address form older mail already used.

The key is derived (HMAC with a fixed label) rather than the secret key used
as is, so a token never doubles as a session or link signature. With no secret
key configured the embedded deployment uses the one kept in the data folder
(``config.ensure_secret_key``); the scaled deployment must set it explicitly
(that raises ``SettingsError`` otherwise), since every web and worker process
must mint and check the same tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from contactcenter.config import Settings, ensure_secret_key

TOKEN_CHARS = 16
TOKEN_RE = re.compile(r"[0-9a-f]{16}")
_LABEL = b"contactcenter reply token v1"
# Our minted Message-ID: msg-<message id>.<ticket number>.<token>@<domain>.
MINTED_ID_RE = re.compile(r"msg-(\d{1,18})\.(\d{1,12})\.([0-9a-fA-F]{16})@[!-;=?-~]{1,250}")
MAX_MINTED_REFS = 5
_keys: dict[str, bytes] = {}


def reply_token_key(settings: Settings) -> bytes:
    """Return the key reply tokens are signed with, derived from the secret key.

    :raises SettingsError: scaled deployment without ``CONTACTCENTER_SECRET_KEY``.
    """
    secret = settings.secret_key or ensure_secret_key(settings).secret_key
    key = _keys.get(secret)
    if key is None:
        key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()
        if len(_keys) > 8:
            _keys.clear()
        _keys[secret] = key
    return key


def normalise_recipient(address: str) -> str:
    """Return the address as tokens bind it: no angle brackets, lower case, IDNA domain.

    Outbound mail goes to the IDNA form of a non-ASCII domain (``xn--e1afmkfd.xn--p1ai``)
    while the reply's From may spell it in Unicode: both bind the same token.
    """
    value = (address or "").strip().strip("<>").strip().lower()
    local, at, domain = value.rpartition("@")
    if at and not domain.isascii():
        try:
            return f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            return value
    return value


def sign_reply_token(key: bytes, ticket_number: int, ticket_secret: str, address: str) -> str:
    """Return the token for mail about ticket ``ticket_number`` sent to ``address``."""
    message = f"{int(ticket_number)}\x00{ticket_secret}\x00{normalise_recipient(address)}"
    return hmac.new(key, message.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()[:TOKEN_CHARS]


def is_token_for(key: bytes, ticket_number: int, ticket_secret: str, address: str,
                 token: str | None) -> bool:
    """Whether ``token`` was minted for this ticket and this address (constant-time)."""
    if not token or not address or not ticket_secret:
        return False
    expected = sign_reply_token(key, ticket_number, ticket_secret, address)
    return hmac.compare_digest(expected, token.strip().lower())


def minted_message_id(message_id: int, ticket_number: int, token: str, domain: str) -> str:
    """Return our Message-ID (no angle brackets) carrying the reply token."""
    return f"msg-{int(message_id)}.{int(ticket_number)}.{token}@{domain}"


def read_minted_ids(refs: tuple[str, ...] | list[str]) -> list[tuple[int, str]]:
    """Return (ticket number, token) of the ids in ``refs`` shaped like ours, newest first.

    In-Reply-To comes before References in the hints, and References run oldest
    first: the order returned tries the id answered first. At most
    ``MAX_MINTED_REFS`` distinct pairs: each one costs intake a lookup.
    """
    found: dict[tuple[int, str], None] = {}
    for ref in refs:
        match = MINTED_ID_RE.fullmatch((ref or "").strip().strip("<>"))
        if match:
            found[(int(match.group(2)), match.group(3).lower())] = None
            if len(found) >= MAX_MINTED_REFS:
                break
    return list(found)
