"""Attachment downloads over the API: RELIABILITY ATT-1 (headers), ATT-2 (413), ATT-3 (who).

Every download is ``Content-Disposition: attachment`` with a sanitised name (RFC 6266
``filename*`` for non-ASCII), ``application/octet-stream`` chosen by us, ``nosniff`` and
a sandbox CSP. A caller who may not see the ticket gets the same 404 as for a missing id
(401 without a valid token), and never a byte of the file.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from contactcenter.accounts.models import ApiToken
from contactcenter.channels.base import AttachmentRef
from contactcenter.tickets.attachments import attachment_path
from contactcenter.tickets.models import Attachment, Message, Ticket
from tests.api.conftest import World, ingest

SECRET = b"%PDF-1.7 secret-bytes-of-olga \x00\xff"
HIDDEN = b"boris-private-bytes \x01\x02"
HTML_AS_PNG = b"<!doctype html><script>fetch('/api/v1/me')</script>"


def attachments_of(session: Any, ticket: Ticket) -> list[Attachment]:
    return list(session.scalars(select(Attachment).join(Message)
                                .where(Message.ticket_id == ticket.id).order_by(Attachment.id)))


@pytest.fixture
def files(session: Any, settings: Any, world: World) -> dict[str, Attachment]:
    """Attachments on a queue-A ticket (Olga's) and a queue-B ticket (Boris's)."""
    a = ingest(session, settings, inbox_id=world.inbox_a.id, sender="olga@example.com",
               name="Olga Smirnova", subject="Scan", text="See the files.",
               attachments=(AttachmentRef("invoice.pdf", "application/pdf", SECRET),
                            AttachmentRef("Счёт №5\u202egpj.exe", "image/jpeg", b"jpeg?"),
                            AttachmentRef("page.html", "text/html", b"<h1>hi</h1>"),
                            AttachmentRef("pic.svg", "image/svg+xml", b"<svg onload=x()/>"),
                            AttachmentRef("doc.xhtml", "application/xhtml+xml", b"<html/>"),
                            AttachmentRef("feed.xml", "application/xml", b"<x/>"),
                            AttachmentRef("app.js", "text/javascript", b"alert(1)"),
                            AttachmentRef("photo.png", "image/png", HTML_AS_PNG),
                            AttachmentRef("../../CON", "text/plain", b"device")))
    b = ingest(session, settings, inbox_id=world.inbox_b.id, sender="boris@example.com",
               name="Boris Hidden", subject="Private", text="Mine only.",
               attachments=(AttachmentRef("private.pdf", "application/pdf", HIDDEN),))
    session.commit()
    rows = attachments_of(session, a) + attachments_of(session, b)
    assert a.queue_id == world.queue_a.id and b.queue_id == world.queue_b.id
    return {row.filename: row for row in rows}


def url(row: Attachment | int) -> str:
    return f"/api/v1/attachments/{row if isinstance(row, int) else row.id}"


def assert_safe_download(response: Any) -> None:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "inline" not in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "no-store" in response.headers["Cache-Control"]


# --- ATT-1: the response --------------------------------------------------------------------

def test_visible_attachment_downloads_its_exact_bytes(client: Any, world: World,
                                                      files: dict[str, Attachment]) -> None:
    response = client.get(url(files["invoice.pdf"]), headers=world.headers("agent"))
    assert_safe_download(response)
    assert response.data == SECRET
    assert response.headers["Content-Disposition"] == "attachment; filename=invoice.pdf"


@pytest.mark.parametrize("name", ["page.html", "pic.svg", "doc.xhtml", "feed.xml", "app.js",
                                  "photo.png"])
def test_active_types_are_never_served_as_themselves(client: Any, world: World, settings: Any,
                                                     name: str,
                                                     files: dict[str, Attachment]) -> None:
    row = files[name]
    assert row.content_type != "application/octet-stream"  # the sender's label, kept as data
    response = client.get(url(row), headers=world.headers("agent"))
    assert_safe_download(response)
    assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert response.data == attachment_path(settings.data_dir, row.sha256).read_bytes()


def test_html_labelled_png_is_octet_stream(client: Any, world: World,
                                           files: dict[str, Attachment]) -> None:
    response = client.get(url(files["photo.png"]), headers=world.headers("agent"))
    assert_safe_download(response)
    assert "image" not in response.headers["Content-Type"]
    assert response.data == HTML_AS_PNG


def test_non_ascii_and_bidi_name_uses_rfc6266_filename_star(
        client: Any, world: World, files: dict[str, Attachment]) -> None:
    (row,) = [r for r in files.values() if r.filename.startswith("Счёт")]
    assert row.filename == "Счёт №5gpj.exe"  # the right-to-left override is gone
    response = client.get(url(row), headers=world.headers("agent"))
    assert_safe_download(response)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert f"filename*=UTF-8''{quote(row.filename, safe='!#$&+-.^_`|~')}" in disposition
    assert "\u202e" not in disposition and "%E2%80%AE" not in disposition
    assert disposition.isascii()


def test_device_and_path_names_are_served_sanitised(client: Any, world: World,
                                                    files: dict[str, Attachment]) -> None:
    response = client.get(url(files["_CON"]), headers=world.headers("agent"))
    assert_safe_download(response)
    assert response.headers["Content-Disposition"] == "attachment; filename=_CON"


def test_a_stored_row_with_a_hostile_name_is_sanitised_again_on_download(
        client: Any, session: Any, world: World, files: dict[str, Attachment]) -> None:
    row = files["invoice.pdf"]
    row.filename = '../..\\evil"\r\nX-Injected: 1\u202e.html'  # a row from before the rules
    session.commit()
    response = client.get(url(row), headers=world.headers("agent"))
    assert_safe_download(response)
    assert "X-Injected" not in response.headers
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "/" not in disposition.split("''")[0]
    assert "\\" not in disposition and "\r" not in disposition and "\n" not in disposition


# --- ATT-3: who may download ------------------------------------------------------------------

def assert_no_bytes(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Content-Disposition" not in response.headers
    assert SECRET not in response.data and HIDDEN not in response.data
    assert set(response.get_json()) == {"error"}


def test_agent_of_another_queue_gets_404_by_sequential_id(
        client: Any, world: World, files: dict[str, Attachment]) -> None:
    response = client.get(url(files["private.pdf"]), headers=world.headers("agent"))
    assert_no_bytes(response, 404)
    assert response.get_json() == {"error": "not found"}


def test_agent_of_another_customers_ticket_gets_404(client: Any, world: World,
                                                    files: dict[str, Attachment]) -> None:
    # "other" works queue B (Boris's ticket): Olga's queue-A files are not theirs.
    for name in ("invoice.pdf", "photo.png", "_CON"):
        assert_no_bytes(client.get(url(files[name]), headers=world.headers("other")), 404)
    ok = client.get(url(files["private.pdf"]), headers=world.headers("other"))
    assert_safe_download(ok)
    assert ok.data == HIDDEN


def test_walking_sequential_ids_reveals_only_visible_files(
        client: Any, world: World, files: dict[str, Attachment]) -> None:
    visible = {r.id for r in files.values() if r.filename != "private.pdf"}
    top = max(r.id for r in files.values())
    missing = client.get(url(top + 1), headers=world.headers("agent"))
    assert_no_bytes(missing, 404)
    for attachment_id in range(1, top + 3):
        response = client.get(url(attachment_id), headers=world.headers("agent"))
        if attachment_id in visible:
            assert response.status_code == 200
        else:  # a hidden file looks exactly like a missing one
            assert response.status_code == 404 and response.data == missing.data


def test_anonymous_download_is_401_without_bytes(client: Any, world: World,
                                                 files: dict[str, Attachment]) -> None:
    for row in files.values():
        response = client.get(url(row))
        assert_no_bytes(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_no_bytes(client.get(url(files["invoice.pdf"]),
                               headers={"Authorization": "Bearer cc_not-a-real-token"}), 401)


def test_revoked_token_gets_401_without_bytes(client: Any, session: Any, world: World,
                                              files: dict[str, Attachment]) -> None:
    headers = world.headers("agent")
    assert client.get(url(files["invoice.pdf"]), headers=headers).status_code == 200
    for token in session.scalars(select(ApiToken).where(ApiToken.user_id == world.agent.id)):
        token.revoked_at = dt.datetime.now(dt.UTC)
    session.commit()
    assert_no_bytes(client.get(url(files["invoice.pdf"]), headers=headers), 401)


def test_deactivated_user_gets_401_without_bytes(client: Any, session: Any, world: World,
                                                 files: dict[str, Attachment]) -> None:
    world.agent.is_active = False
    session.commit()
    assert_no_bytes(client.get(url(files["invoice.pdf"]), headers=world.headers("agent")), 401)


def test_role_without_ticket_access_gets_no_bytes(client: Any, world: World,
                                                  files: dict[str, Attachment]) -> None:
    # A knowledge editor holds no ticket permission: refused before any lookup, so the
    # answer is the same for every id (403, not 404) and says nothing about the file.
    first = client.get(url(files["invoice.pdf"]), headers=world.headers("editor"))
    assert_no_bytes(first, 403)
    assert client.get(url(999_999), headers=world.headers("editor")).data == first.data


def test_supervisor_sees_every_file(client: Any, world: World,
                                    files: dict[str, Attachment]) -> None:
    for row in files.values():
        assert_safe_download(client.get(url(row), headers=world.headers("supervisor")))


def test_missing_file_on_disk_is_404(client: Any, world: World, settings: Any,
                                     files: dict[str, Attachment]) -> None:
    row = files["invoice.pdf"]
    attachment_path(settings.data_dir, row.sha256).unlink()
    assert_no_bytes(client.get(url(row), headers=world.headers("agent")), 404)


# --- ATT-2: oversized request bodies -----------------------------------------------------------

def test_request_body_over_32_mib_is_413_json(client: Any, world: World) -> None:
    assert client.application.config["MAX_CONTENT_LENGTH"] == 32 * 1024 * 1024
    body = json.dumps({"external_id": "big", "from": {"kind": "email",
                                                      "address": "a@example.com"},
                       "text": "x" * (33 * 1024 * 1024)}).encode()
    response = client.post("/api/v1/contacts", data=body, content_type="application/json",
                           headers=world.headers("admin"))
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large"}
