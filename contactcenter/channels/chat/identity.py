"""Who a chat visitor is: signed site identities and our own visitor tokens (pure).

A site that knows its signed-in user passes ``user_id`` with
``user_hash = HMAC-SHA256(key=CONTACTCENTER_CHAT_IDENTITY_SECRET, msg=user_id)``
in hex. Only a matching hash links the chat to that customer; a claim without
one (or with a wrong one) leaves the visitor anonymous, so that nobody can read
another person's history by typing their id or e-mail into the widget
(Chatwoot issues 9493 and 5479).

The visitor token is ours: a random visitor id signed with the app's secret key,
kept by the widget in ``localStorage`` and presented on every connect instead of
a cookie (a cookie would make the socket hijackable across sites).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from itsdangerous import BadSignature, URLSafeSerializer

MAX_USER_ID = 200
VISITOR_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def identity_hash(secret: str, user_id: str) -> str:
    """Return the hex HMAC-SHA256 a site computes for one of its users."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verified_user_id(secret: str, user_id: object, user_hash: object) -> str | None:
    """Return the site's user id when its hash proves it, else None.

    No secret configured means no identity is ever trusted.
    """
    if not secret or not isinstance(user_id, str) or not isinstance(user_hash, str):
        return None
    user_id = user_id.strip()
    if not user_id or len(user_id) > MAX_USER_ID or not HEX_RE.match(user_hash):
        return None
    expected = identity_hash(secret, user_id)
    return user_id if hmac.compare_digest(expected, user_hash.lower()) else None


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="chat-visitor")


def new_visitor_token(secret_key: str) -> tuple[str, str]:
    """Return a fresh (visitor id, signed token)."""
    visitor_id = secrets.token_urlsafe(18)
    return visitor_id, _serializer(secret_key).dumps(visitor_id)


def visitor_from_token(secret_key: str, token: object) -> str | None:
    """Return the visitor id a token was signed for, or None for anything else."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        value = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) and VISITOR_ID_RE.match(value) else None
