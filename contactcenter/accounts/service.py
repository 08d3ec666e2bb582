"""Create users, check passwords (argon2), issue and check API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.audit import audit
from contactcenter.accounts.errors import AccountError, AuthenticationError
from contactcenter.accounts.models import AgentSkill, ApiToken, Role, User, UserRole
from contactcenter.customers.identity import normalise_email
from contactcenter.db import utcnow

_hasher = PasswordHasher()
MIN_PASSWORD = 10
# Verifying against this keeps the time of a login for an unknown user the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password-at-all")


def hash_password(password: str) -> str:
    """Return an argon2id hash of a password that is long enough."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("a password may have at most 1024 characters")
    return _hasher.hash(password)


def create_user(session: Session, email: str, name: str, password: str | None,
                roles: Iterable[str], *, languages: str = "en",
                skills: dict[str, int] | None = None, financial_access: bool = False,
                actor_user_id: int | None = None) -> User:
    """Create a user with roles (and skills, for agents)."""
    address = normalise_email(email)
    if session.scalar(select(User).where(User.email == address)) is not None:
        raise AccountError(f"a user with email {address} exists")
    role_set = {Role(r) for r in roles}
    if not role_set:
        raise AccountError("a user needs at least one role")
    user = User(email=address, name=name.strip()[:200] or address,
                password_hash=hash_password(password) if password else None,
                languages=languages, financial_access=financial_access)
    user.roles = [UserRole(role=r.value) for r in sorted(role_set)]
    user.skills = [AgentSkill(skill=s, level=lvl) for s, lvl in (skills or {}).items()]
    session.add(user)
    session.flush()
    audit(session, actor_user_id, "user.create", "user", user.id,
          f"roles={','.join(sorted(role_set))} financial={financial_access}")
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the active user with these credentials or raise ``AuthenticationError``."""
    try:
        address = normalise_email(email)
    except ValueError:
        address = ""
    user = session.scalar(select(User).where(User.email == address)) if address else None
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("wrong email or password") from None
    if user is None or not user.is_active or not user.password_hash:
        raise AuthenticationError("wrong email or password")
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def token_digest(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str) -> str:
    """Create an API token and return it; only its digest is kept."""
    token = "cc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name[:100], token_hash=token_digest(token)))
    audit(session, user.id, "token.issue", "user", user.id, name[:100])
    return token


def user_for_token(session: Session, token: str) -> User:
    """Return the active user a token belongs to, or raise ``AuthenticationError``."""
    if not token or len(token) > 200:
        raise AuthenticationError("invalid token")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None or not row.user.is_active:
        raise AuthenticationError("invalid token")
    row.last_used_at = utcnow()
    return row.user


def session_fingerprint(user: User) -> str:
    """Return a value kept in the session cookie that changes when the password does."""
    return hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()[:16]
