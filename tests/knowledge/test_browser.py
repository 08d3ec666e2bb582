"""The editor and the public portal in a real Chromium (Playwright)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from contactcenter.config import Settings
from contactcenter.knowledge import service
from contactcenter.knowledge.index import drop_index
from contactcenter.knowledge.indexing import index_path
from tests.factories import PASSWORD
from tests.knowledge.conftest import Staff, publish

pytestmark = pytest.mark.browser


@pytest.fixture
def live_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, live_port: int) -> Iterator[Settings]:
    # A file database: the live server's threads and the test use their own connections.
    value = Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-not-for-production",
                     testing=True, public_url=f"http://127.0.0.1:{live_port}")
    yield value
    drop_index(index_path(value))


@pytest.fixture
def live_url(app: Any, live_port: int) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{live_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def errors(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("pageerror", lambda exc: seen.append(str(exc)))
    page.on("console", lambda m: seen.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    return seen


def sign_in(page: Any, email: str) -> None:
    page.goto("/login?next=/kb")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/kb")


def test_editor_writes_versions_diffs_and_another_editor_publishes(
        page: Any, app: Any, staff: Staff, errors: list[str]) -> None:
    sign_in(page, "author@example.test")
    page.click("#new-article")
    page.fill("input[name=title]", "Modem lights explained")
    page.fill("textarea[name=body]", "Green means online.\nRed means offline.")
    page.select_option("select[name=visibility]", "public")
    page.click("#save")
    expect(page.locator("#state")).to_contain_text("working copy v1")
    page.fill("textarea[name=body]", "Green means online.\nRed blinking means no signal.")
    page.fill("input[name=note]", "clearer red")
    page.click("#save")
    expect(page.locator(".kb-flash")).to_contain_text("Saved as version 2")
    expect(page.locator("#versions tr[data-version]")).to_have_count(2)
    page.select_option("#diff-form select[name=from]", "1")
    page.select_option("#diff-form select[name=to]", "2")
    page.click("#show-diff")
    expect(page.locator("#diff .kb-diff-del")).to_contain_text("Red means offline.")
    expect(page.locator("#diff .kb-diff-add")).to_contain_text("Red blinking means no signal.")
    page.go_back()
    page.click("#action-submit")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "in_review")
    page.click("#action-publish")  # the author may not publish their own text
    expect(page.locator(".kb-flash-error")).to_contain_text("other than the author")
    article_url = page.url
    page.context.clear_cookies()  # sign out
    sign_in(page, "reviewer@example.test")
    page.goto(article_url)
    page.click("#action-publish")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "published")
    page.goto("/help/search?q=modem+lights")
    expect(page.locator("#results li a")).to_have_text(["Modem lights explained"])
    assert errors == []


def test_public_portal_search_category_article_and_feedback(
        page: Any, session: Any, staff: Staff, errors: list[str]) -> None:
    article = publish(session, staff, "Возвраты денежных средств",
                      "Деньги возвращаются на карту за 10 дней.", language="ru",
                      category="Billing")
    publish(session, staff, "Internal refund escalation", "Escalate refunds over 100 EUR.",
            visibility="internal", category="Billing")
    service.create_article(session, service.clean_input(
        {"title": "Draft refund rules", "body": "Not ready", "visibility": "public",
         "category": "Billing"}), staff.author.id)
    session.commit()
    page.goto("/help")
    page.click("#categories a:has-text('Billing')")
    expect(page.locator("#category-articles li")).to_have_count(1)
    page.fill("#portal-q", "возврат денег")
    page.press("#portal-q", "Enter")
    expect(page.locator("#results li a")).to_have_text(["Возвраты денежных средств"])
    expect(page.locator("#results mark").first).to_be_visible()
    page.goto("/help/search?q=refund+escalation+draft")
    expect(page.locator("#results .kb-none")).to_be_visible()
    page.goto(f"/help/articles/{article.id}")
    expect(page.locator("#article h1")).to_have_text("Возвраты денежных средств")
    page.click("#helpful-yes")
    expect(page.locator("#thanks")).to_be_visible()
    page.goto("/help")  # leaving the article page sends the deflection beacon
    session.expire_all()
    page.wait_for_timeout(300)
    session.refresh(article)
    assert article.helpful_yes == 1 and article.views >= 1
    assert article.deflections >= 1
    assert errors == []
