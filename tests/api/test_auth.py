"""Who may call the API: tokens, revocation, roles, object visibility and browser sessions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from contactcenter.accounts.models import ApiToken
from contactcenter.db import utcnow
from tests.api.conftest import World
from tests.factories import PASSWORD, bearer

SUPERVISOR_ONLY = [
    ("post", "/api/v1/customers/{olga}/merge", {"merged_id": 0}),
    ("post", "/api/v1/merges/1/undo", None),
    ("get", "/api/v1/raw", None),
    ("post", "/api/v1/raw/1/replay", None),
]


def _assert_only_error(response: Any) -> None:
    assert response.is_json
    assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/tickets", "/api/v1/tickets/1000",
                                  "/api/v1/customers/1", "/api/v1/search?q=x"])
def test_no_token_is_401_with_only_an_error(client: Any, world: World, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    _assert_only_error(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Bearer " + "x" * 500,
                                    "Basic dXNlcjpwYXNz", "cc_token-without-scheme"])
def test_bad_token_is_401(client: Any, world: World, header: str) -> None:
    response = client.get("/api/v1/tickets/1000", headers={"Authorization": header})
    assert response.status_code == 401
    _assert_only_error(response)


def test_revoked_token_is_401(client: Any, world: World, session: Any) -> None:
    headers = world.headers("agent")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    row = session.query(ApiToken).filter_by(user_id=world.agent.id).one()
    row.revoked_at = utcnow()
    session.commit()
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    _assert_only_error(response)


def test_deactivated_user_token_is_401(client: Any, world: World, session: Any) -> None:
    world.agent.is_active = False
    session.commit()
    assert client.get("/api/v1/me", headers=world.headers("agent")).status_code == 401


def test_token_last_used_is_recorded(client: Any, world: World, session: Any) -> None:
    assert client.get("/api/v1/me", headers=world.headers("agent")).status_code == 200
    session.expire_all()
    row = session.query(ApiToken).filter_by(user_id=world.agent.id).one()
    assert row.last_used_at is not None


def test_me(client: Any, world: World) -> None:
    response = client.get("/api/v1/me", headers=world.headers("supervisor"))
    assert response.status_code == 200
    assert response.get_json() == {"id": world.supervisor.id, "email": "super@example.test",
                                   "name": "Test User", "roles": ["supervisor"]}


@pytest.mark.parametrize("method,path,body", SUPERVISOR_ONLY)
def test_agent_gets_403_on_supervisor_endpoints(client: Any, world: World, method: str,
                                                path: str, body: Any) -> None:
    url = path.format(olga=world.olga.id)
    response = getattr(client, method)(url, headers=world.headers("agent"), json=body)
    assert response.status_code == 403
    _assert_only_error(response)


def test_agent_gets_403_on_contacts(client: Any, world: World) -> None:
    response = client.post("/api/v1/contacts", headers=world.headers("agent"),
                           json={"external_id": "x-1", "from": {"kind": "email",
                                                                 "address": "a@example.com"},
                                 "text": "hi"})
    assert response.status_code == 403
    _assert_only_error(response)


def test_supervisor_may_not_post_contacts(client: Any, world: World) -> None:
    # Importing is an admin's job (data.import).
    response = client.post("/api/v1/contacts", headers=world.headers("supervisor"),
                           json={"external_id": "x-2", "from": {"kind": "email",
                                                                 "address": "a@example.com"},
                                 "text": "hi"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/tickets/1000", "/api/v1/me",
                                  "/api/v1/search?q=1000", "/api/v1/customers?q=olga"])
def test_knowledge_editor_gets_403_on_tickets(client: Any, world: World, path: str) -> None:
    response = client.get(path, headers=world.headers("editor"))
    assert response.status_code == 403
    _assert_only_error(response)


def test_invisible_ticket_is_404_with_no_data(client: Any, world: World) -> None:
    for path in (f"/api/v1/tickets/{world.theirs.number}",
                 f"/api/v1/tickets/{world.theirs.number}/messages"):
        response = client.get(path, headers=world.headers("agent"))
        assert response.status_code == 404
        _assert_only_error(response)
        assert "Secret" not in response.get_data(as_text=True)
    for method, body in (("patch", {"status": "solved"}), ("post", {"text": "hello"})):
        url = f"/api/v1/tickets/{world.theirs.number}"
        url += "/messages" if method == "post" else ""
        response = getattr(client, method)(url, headers=world.headers("agent"), json=body)
        assert response.status_code == 404
        _assert_only_error(response)


def test_invisible_ticket_looks_like_a_missing_one(client: Any, world: World) -> None:
    hidden = client.get(f"/api/v1/tickets/{world.theirs.number}", headers=world.headers("agent"))
    missing = client.get("/api/v1/tickets/999999", headers=world.headers("agent"))
    assert (hidden.status_code, hidden.get_json()) == (missing.status_code, missing.get_json())


def test_unknown_api_route_is_json_404(client: Any, world: World) -> None:
    response = client.get("/api/v1/nothing-here", headers=world.headers("agent"))
    assert response.status_code == 404
    _assert_only_error(response)


def test_wrong_method_is_json_405(client: Any, world: World) -> None:
    response = client.delete("/api/v1/tickets", headers=world.headers("agent"))
    assert response.status_code == 405
    _assert_only_error(response)


# --- the browser's session cookie -------------------------------------------------------

def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def _login(client: Any, email: str) -> str:
    """Sign in through the form; return the CSRF token of the new session (from the desk)."""
    token = _csrf(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    # Signing in starts a fresh session, so the token of the login page is void now.
    return _csrf(client.get("/").get_data(as_text=True))


def test_session_cookie_can_read(client: Any, world: World) -> None:
    _login(client, "agent@example.test")
    response = client.get(f"/api/v1/tickets/{world.mine.number}")
    assert response.status_code == 200
    assert response.get_json()["number"] == world.mine.number


def test_session_cookie_post_without_csrf_is_401(client: Any, world: World) -> None:
    _login(client, "agent@example.test")
    url = f"/api/v1/tickets/{world.mine.number}/messages"
    response = client.post(url, json={"text": "from the browser"})
    assert response.status_code == 401
    _assert_only_error(response)
    response = client.patch(f"/api/v1/tickets/{world.mine.number}", json={"status": "open"},
                            headers={"X-CSRFToken": "forged"})
    assert response.status_code == 401


def test_session_cookie_post_with_csrf_header_works(client: Any, world: World) -> None:
    token = _login(client, "agent@example.test")
    url = f"/api/v1/tickets/{world.mine.number}/messages"
    response = client.post(url, json={"text": "from the browser", "internal": True},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_session_is_dropped_when_the_password_changes(client: Any, world: World,
                                                      session: Any) -> None:
    from contactcenter.accounts.service import hash_password

    _login(client, "agent@example.test")
    world.agent.password_hash = hash_password("a brand new password")
    session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_bearer_beats_cookie(client: Any, world: World) -> None:
    """A bad bearer token is refused even when a valid session cookie is present."""
    _login(client, "agent@example.test")
    assert client.get("/api/v1/me", headers=bearer("invalid")).status_code == 401
