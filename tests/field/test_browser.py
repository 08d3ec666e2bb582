"""Dispatch and the technician's phone page in a real Chromium.

A supervisor assigns a visit on the dispatch board; it appears live on the
technician's page in a phone-sized viewport; the technician checks in, records
a part and a photo, checks out; the ticket shows the visit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.field.models import Visit, VisitPart, VisitPhoto
from contactcenter.field.service import create_visit
from contactcenter.tickets.models import Message
from tests.browser_support import (  # noqa: F401 - fixtures
    collect_errors,
    live_port,
    live_url,
    settings,
    sign_in,
    wait_until,
)
from tests.field.conftest import Field

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

def png(width: int = 96, height: int = 64) -> bytes:
    """Return a small striped RGB PNG (a real image the browser decodes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + b"".join(bytes((40, 110 + (x // 12) * 15 % 140, 200))
                                        for x in range(width)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def console_errors(page: Any) -> list[str]:
    return collect_errors(page)


@pytest.fixture
def phone(browser: Any, live_url: str) -> Any:  # noqa: F811
    context = browser.new_context(base_url=live_url, viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def test_assign_on_the_board_and_work_the_visit_on_a_phone(
        page: Any, phone: Any, field: Field, session: Any, settings: Any,  # noqa: F811
        console_errors: list[str], tmp_path: Path) -> None:  # noqa: F811
    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "12 Birch Lane", "area": "north",
                          "problem": "Router does not power on", "skills": ["router"],
                          "parts_needed": "spare router"})
    session.commit()
    phone_errors: list[str] = []
    phone.on("console", lambda m: phone_errors.append(m.text) if m.type == "error"
             and not m.text.startswith("Failed to load resource") else None)
    phone.on("response", lambda r: phone_errors.append(f"{r.status} {r.url}")
             if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

    sign_in(phone, "tech-a@example.test", "/field/my")
    wait_until(phone, "document.getElementById('live').dataset.state === 'live'")
    assert phone.locator("#visits li").count() == 0

    sign_in(page, "super@example.test", "/field/dispatch")
    card = page.locator(f"#unassigned li[data-visit='{visit.id}']")
    card.wait_for()
    card.locator(".fd-suggest").click()
    assign = card.locator(f".fd-assign[data-technician='{field.tech_a.id}']")
    assign.wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "field-dispatch.png"), full_page=True)
    assign.click()
    page.locator(f".fd-row[data-technician='{field.tech_a.id}'] "
                 f".fd-block[data-visit='{visit.id}']").wait_for()

    # Live on the phone, without a reload.
    item = phone.locator(f"#visits li[data-visit='{visit.id}']")
    item.wait_for(timeout=10_000)
    assert "12 Birch Lane" in item.inner_text()
    phone.screenshot(path=str(SCREENSHOTS / "field-technician-list.png"))
    item.tap()
    phone.locator("#v-title").wait_for()
    assert "Olga Smirnova" in phone.locator("#v-customer").inner_text()
    assert "does not power on" in phone.locator("#v-history").inner_text()

    phone.locator("#check-in").tap()
    phone.locator("#part-form").wait_for(state="visible")
    phone.fill("#part-form input[name=name]", "Router X200")
    phone.fill("#part-form input[name=sku]", "RX-200")
    phone.locator("#part-form button[type=submit]").tap()
    phone.locator("#v-parts li").wait_for()
    photo = tmp_path / "router.png"
    photo.write_bytes(png())
    phone.set_input_files("#photo", str(photo))
    phone.locator("#photo-form button[type=submit]").tap()
    phone.locator("#v-photos img").wait_for()
    wait_until(phone, "document.querySelector('#v-photos img').naturalWidth > 0")
    phone.select_option("#out-form select[name=outcome]", "fixed")
    phone.fill("#out-form textarea[name=notes]", "Replaced the power supply")
    phone.fill("#out-form input[name=signed_by]", "Olga Smirnova")
    phone.screenshot(path=str(SCREENSHOTS / "field-technician-visit.png"), full_page=True)
    phone.locator("#check-out").tap()
    phone.locator("#v-outcome").wait_for(state="visible")
    assert "fixed" in phone.locator("#v-outcome").inner_text()
    # The page fits the phone: nothing wider than the viewport.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    # The ticket shows the visit: on the agent's visit list and in the ticket's timeline.
    page.goto(f"/field/new?ticket={field.ticket.number}")
    assert f"Visit #{visit.id}" in page.inner_text("main")
    assert "fixed" in page.inner_text("main")
    session.expire_all()
    stored = session.get(Visit, visit.id)
    assert stored.state == "completed" and stored.outcome == "fixed"
    assert session.scalar(select(VisitPart.name).where(VisitPart.visit_id == visit.id)) == \
        "Router X200"
    assert session.scalar(select(VisitPhoto.content_type)) == "image/png"
    notes = [m.text for m in session.scalars(select(Message).where(
        Message.ticket_id == field.ticket.id, Message.direction == "note"))]
    assert any("Assigned to Anton Fixer" in n for n in notes)
    assert any("checked out" in n and "fixed" in n for n in notes)
    assert console_errors == []
    assert phone_errors == []
