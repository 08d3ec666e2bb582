"""Authenticate API callers (bearer token, or the signed-in session with a CSRF header)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, jsonify, request, session
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from contactcenter.accounts.errors import AuthenticationError
from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can
from contactcenter.accounts.service import session_fingerprint, user_for_token
from contactcenter.app import db_session

F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def error(status: int, message: str) -> Any:
    """Return a JSON error with no data besides the message."""
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def current_user() -> User | None:
    """Return the authenticated caller of this request, or None."""
    if "api_user" in g:
        user: User | None = g.api_user
        return user
    user = None
    header = request.headers.get("Authorization", "")
    sess = db_session()
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            try:
                user = user_for_token(sess, token.strip())
                sess.commit()
            except AuthenticationError:
                user = None
    elif session.get("user_id"):
        if request.method not in SAFE_METHODS:
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except ValidationError:
                user = None
            else:
                user = sess.get(User, session["user_id"])
        else:
            user = sess.get(User, session["user_id"])
        if user is not None and (not user.is_active
                                 or session.get("auth_version") != session_fingerprint(user)):
            user = None
    g.api_user = user
    return user


def api_login_required(permission: Permission) -> Callable[[F], F]:
    """Require an authenticated caller holding a permission: 401 without one, 403 without it."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return error(401, "authentication required")
            if not can(user, permission):
                return error(403, "permission denied")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def not_found() -> Any:
    """Abort with a bare 404 (also used for objects the caller may not see)."""
    abort(404)
