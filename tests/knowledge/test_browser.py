"""The editor and the public portal in a real Chromium (Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from contactcenter.config import Settings
from contactcenter.knowledge import service
from contactcenter.knowledge.index import drop_index
from contactcenter.knowledge.indexing import index_path
from tests.browser_support import (  # noqa: F401 - fixtures
    browser_settings,
    collect_errors,
    live_port,
    live_url,
)
from tests.browser_support import sign_in as browser_sign_in
from tests.knowledge.conftest import Staff, publish

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(tmp_path: Path, live_port: int) -> Iterator[Settings]:  # noqa: F811
    value = browser_settings(tmp_path, live_port)
    yield value
    drop_index(index_path(value))


@pytest.fixture
def errors(page: Any) -> list[str]:
    return collect_errors(page)


def sign_in(page: Any, email: str) -> None:
    browser_sign_in(page, email, "/kb")


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
