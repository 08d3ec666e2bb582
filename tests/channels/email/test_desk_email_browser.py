"""The desk shows an unverified ticket's warning badge and image thumbnails (real Chromium).

RELIABILITY ID-1: a ticket opened by mail that named another ticket without proof
carries a badge in the workspace header with the claimed number. ATT-2/ATT-3: an
attachment with a thumbnail shows it in the attachment list, loaded through the
authorised preview endpoint (no console error, no CSP violation).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from contactcenter.channels.base import AttachmentRef
from contactcenter.tickets.models import Attachment
from contactcenter.tickets.previews import make_previews
from tests.agent_ui.conftest import Desk, desk, ingest  # noqa: F401 - fixtures
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    live_port,
    live_url,
    settings,
    sign_in,
)
from tests.browser_support import wait_until

pytestmark = pytest.mark.browser


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_unverified_badge_and_thumbnail_in_the_workspace(
        page: Any, desk: Desk, session: Any, settings: Any,  # noqa: F811
        console_errors: list[str]) -> None:  # noqa: F811
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, sender="olga@example.com",
                    subject="Re: Invoice is wrong", thread_on_open_ticket=False,
                    attachments=(AttachmentRef("scan.png", "image/png", photo()),
                                 AttachmentRef("notes.zip", "application/zip", b"PK\x03\x04x")))
    ticket.sender_unverified = True
    ticket.claimed_ticket_number = desk.mine.number
    session.commit()
    # The live app's previews job (on the message's event) and this call race for them;
    # whichever comes first makes them, so read what the database holds afterwards.
    make_previews(session, settings)
    session.expire_all()
    states = {a.filename: a.preview_state for a in session.scalars(select(Attachment))}
    assert states["scan.png"] == "ready" and states["notes.zip"] == "none"

    sign_in(page)
    page.goto(f"/#ticket-{ticket.number}")
    page.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    badge = page.locator("#ws-unverified")
    badge.wait_for(state="visible", timeout=10_000)
    assert badge.inner_text() == f"Unverified sender: claims to reply to #{desk.mine.number}"
    thumb = page.locator("#timeline a.attachment img.thumb")
    assert thumb.count() == 1
    wait_until(page, "document.querySelector('#timeline img.thumb').naturalWidth > 0")
    assert page.locator("#timeline a.attachment", has_text="notes.zip").count() == 1

    # A verified ticket shows no badge.
    page.goto(f"/#ticket-{desk.mine.number}")
    wait_until(page, "document.querySelector('#ws-title').textContent"
                     f".startsWith('#{desk.mine.number} ')")
    assert page.locator("#ws-unverified").is_hidden()
    assert console_errors == []
