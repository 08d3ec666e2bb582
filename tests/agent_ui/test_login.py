"""Signing in and out of the desk, its security headers, and what the desk lists."""

from __future__ import annotations

import re
from typing import Any

import pytest

from contactcenter.tickets.service import change_status
from tests.agent_ui.conftest import Desk, csrf_of, ingest, login


def signed_in_user(client: Any) -> Any:
    with client.session_transaction() as sess:
        return sess.get("user_id")


def test_login_page(client: Any) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html
    assert csrf_of(html)


def test_wrong_password_is_401_with_an_error_and_no_session(client: Any, desk: Desk) -> None:
    response = login(client, "agent@example.test", "wrong password!!")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert signed_in_user(client) is None
    assert client.get("/").status_code == 302


def test_unknown_user_gets_the_same_answer(client: Any, desk: Desk) -> None:
    wrong_password = login(client, "agent@example.test", "wrong password!!")
    unknown = login(client, "nobody@example.test", "wrong password!!")
    assert unknown.status_code == wrong_password.status_code == 401
    assert unknown.get_data() == wrong_password.get_data() or (
        "Wrong email or password." in unknown.get_data(as_text=True))


def test_deactivated_user_cannot_sign_in(client: Any, desk: Desk, session: Any) -> None:
    desk.agent.is_active = False
    session.commit()
    assert login(client, "agent@example.test").status_code == 401
    assert signed_in_user(client) is None


def test_login_without_csrf_token_is_refused(client: Any, desk: Desk) -> None:
    from tests.factories import PASSWORD

    response = client.post("/login", data={"email": "agent@example.test", "password": PASSWORD})
    assert response.status_code == 400
    assert signed_in_user(client) is None


def test_good_password_redirects_to_the_desk(client: Any, desk: Desk) -> None:
    response = login(client, "agent@example.test")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert signed_in_user(client) == desk.agent.id
    assert client.get("/").status_code == 200


def test_login_is_case_insensitive_on_email(client: Any, desk: Desk) -> None:
    assert login(client, "  Agent@Example.TEST ").status_code == 302


def test_safe_next_is_followed(client: Any, desk: Desk) -> None:
    response = login(client, "agent@example.test", next_="/?view=mine")
    assert response.headers["Location"] == "/?view=mine"


@pytest.mark.parametrize("target", [
    "https://evil.example", "https://evil.example/", "//evil.example", "///evil.example",
    "http:evil.example", "javascript:alert(1)", "evil.example", "/\\evil.example",
    "\\\\evil.example", "/\t/evil.example", "/\t\\evil.example", "/\n/evil.example",
])
def test_open_redirect_is_refused(client: Any, desk: Desk, target: str) -> None:
    response = login(client, "agent@example.test", next_=target)
    assert response.status_code == 302
    # Browsers read "\\" as "/" and drop tabs, so those leave the site too: all go home.
    assert response.headers["Location"] == "/"


def test_anonymous_desk_redirects_to_login_with_next(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_logout_needs_post_with_csrf(client: Any, desk: Desk) -> None:
    login(client, "agent@example.test")
    assert client.get("/logout").status_code == 405
    assert signed_in_user(client) == desk.agent.id
    refused = client.post("/logout")
    assert refused.status_code == 400
    assert signed_in_user(client) == desk.agent.id
    forged = client.post("/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert signed_in_user(client) == desk.agent.id

    token = csrf_of(client.get("/").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert signed_in_user(client) is None
    assert client.get("/").status_code == 302


def test_signing_in_starts_a_fresh_session(client: Any, desk: Desk) -> None:
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    login(client, "agent@example.test")
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_password_change_ends_the_session(client: Any, desk: Desk, session: Any) -> None:
    from contactcenter.accounts.service import hash_password

    login(client, "agent@example.test")
    desk.agent.password_hash = hash_password("a brand new password")
    session.commit()
    assert client.get("/").status_code == 302


def test_session_cookie_flags(client: Any, desk: Desk) -> None:
    response = login(client, "agent@example.test")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


# --- headers ------------------------------------------------------------------------

def _csp(response: Any) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value
    return directives


def test_csp_on_pages_forbids_inline_script(client: Any, desk: Desk) -> None:
    pages = [client.get("/login")]
    login(client, "agent@example.test")
    pages.append(client.get("/"))
    for response in pages:
        assert response.status_code == 200
        csp = _csp(response)
        script_src = csp.get("script-src", csp.get("default-src", ""))
        assert "'unsafe-inline'" not in script_src
        assert "'unsafe-eval'" not in script_src
        assert "'self'" in script_src
        assert csp.get("object-src") == "'none'"
        assert csp.get("frame-ancestors") == "'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_carry_no_inline_script(client: Any, desk: Desk) -> None:
    login(client, "agent@example.test")
    for path in ("/login", "/"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
            # A JSON data block is never executed; anything else must be a file.
            assert "src=" in tag or 'type="application/json"' in tag, \
                f"inline script on {path}: {tag}"
        handler = re.search(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE)
        assert handler is None, f"inline event handler on {path}"


def test_csp_on_errors_and_api_too(client: Any) -> None:
    assert "Content-Security-Policy" in client.get("/no-such-page").headers
    assert "Content-Security-Policy" in client.get("/api/v1/openapi.json").headers


def test_html_404_outside_the_api(client: Any) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response.is_json


def test_vendor_files(client: Any) -> None:
    response = client.get("/vendor/socket.io.min.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert client.get("/vendor/chart.umd.js").status_code == 200
    assert client.get("/vendor/../package.json").status_code == 404
    assert client.get("/vendor/socket.io-client/package.json").status_code == 404


# --- the desk -----------------------------------------------------------------------

def _rows(html: str) -> set[str]:
    return set(re.findall(r'<tr data-ticket="(\d+)"', html))


def test_desk_lists_the_agents_visible_open_tickets_only(client: Any, desk: Desk,
                                                          session: Any, settings: Any) -> None:
    solved = ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Already solved")
    change_status(session, solved, "solved", None)
    session.commit()
    login(client, "agent@example.test")
    html = client.get("/").get_data(as_text=True)
    assert _rows(html) == {str(desk.mine.id)}
    assert "Invoice is wrong" in html
    assert "Secret other queue" not in html
    assert "Already solved" not in html


def test_supervisor_desk_lists_every_open_ticket(client: Any, desk: Desk) -> None:
    login(client, "super@example.test")
    html = client.get("/").get_data(as_text=True)
    assert _rows(html) == {str(desk.mine.id), str(desk.theirs.id)}


def test_knowledge_editor_may_not_open_the_desk(client: Any, desk: Desk) -> None:
    login(client, "kb@example.test")
    assert client.get("/").status_code == 403


def test_desk_escapes_ticket_fields(client: Any, desk: Desk, session: Any,
                                    settings: Any) -> None:
    ingest(session, settings, inbox_id=desk.inbox_a.id,
           subject="<img src=x onerror=alert(1)>", name="<b>Mallory</b>")
    login(client, "agent@example.test")
    html = client.get("/").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>Mallory</b>" not in html


def test_desk_carries_the_event_cursor(client: Any, desk: Desk, session: Any) -> None:
    from contactcenter.events import last_event_id

    login(client, "agent@example.test")
    html = client.get("/").get_data(as_text=True)
    assert f'data-cursor="{last_event_id(session)}"' in html
