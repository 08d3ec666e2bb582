"""Session sign-in for the browser pages and the socket namespace."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, session, url_for

from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can
from contactcenter.accounts.service import session_fingerprint
from contactcenter.app import db_session

F = TypeVar("F", bound=Callable[..., Any])


def session_user() -> User | None:
    """Return the signed-in user of this request, or None."""
    user_id = session.get("user_id")
    if not user_id:
        return None
    user = db_session().get(User, user_id)
    if user is None or not user.is_active or session.get("auth_version") != session_fingerprint(user):
        session.clear()
        return None
    return user


def login_user(user: User) -> None:
    """Start a fresh session for a user (a new session id against fixation)."""
    session.clear()
    session["user_id"] = user.id
    session["auth_version"] = session_fingerprint(user)
    session.permanent = True


def page_login_required(permission: Permission | None = None) -> Callable[[F], F]:
    """Redirect anonymous visitors to sign in; answer 403 to users without the permission."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = session_user()
            if user is None:
                return redirect(url_for("ui.login", next=request.path))
            if permission is not None and not can(user, permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
