"""Editing a customer's identities in a real Chromium, with a second agent watching live.

The first agent adds a phone by keyboard only and sees it stored in E.164, removes the
email after confirming, and gets the conflict explained inline; the second agent, whose
interface is Russian, sees each change arrive without reloading.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.models import CustomerIdentity
from tests.agent_ui.conftest import Desk
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    live_port,
    live_url,
    settings,
    sign_in,
)
from tests.agent_ui.test_desk_browser import colleague, second, wait_until  # noqa: F401

pytestmark = pytest.mark.browser


def identities_text(page: Any) -> str:
    return str(page.inner_text("#identities"))


def test_agents_edit_identities_and_a_colleague_sees_it_live(
        page: Any, second: Any, desk: Desk, colleague: Any, session: Any,  # noqa: F811
        console_errors: list[str]) -> None:  # noqa: F811
    colleague.locale = "ru"
    session.commit()
    number, cid = desk.mine.number, desk.mine.customer_id
    sign_in(page)
    sign_in(second, "second@example.test")
    for p in (page, second):
        p.goto(f"/#ticket-{number}")
        p.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
        p.wait_for_selector("#live[data-state=live]", timeout=15_000)
        p.locator("#identities", has_text="olga@example.com").wait_for(timeout=10_000)
    # The colleague's panel is in Russian.
    assert second.inner_text("#identity-add button[type=submit]") == "Добавить"
    assert page.inner_text("#identity-add button[type=submit]") == "Add"
    assert page.get_attribute("label[for=identity-address]", "for") == "identity-address"

    # Keyboard only: the type select, Tab to the address, Enter to add.
    page.focus("#identity-kind")
    page.keyboard.press("ArrowDown")  # email -> phone
    assert page.eval_on_selector("#identity-kind", "e => e.value") == "phone"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "identity-address"
    page.keyboard.type("+7 (916) 123-45-67")
    page.keyboard.press("Enter")
    page.locator("#identities", has_text="+79161234567").wait_for(timeout=10_000)
    second.locator("#identities", has_text="+79161234567").wait_for(timeout=10_000)
    # Ready for the next address: the field is empty and still focused.
    assert page.input_value("#identity-address") == ""
    assert page.evaluate("document.activeElement.id") == "identity-address"

    # Remove the email after confirming; the colleague's panel follows.
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#identities li[data-kind=email] .identity-remove")
    wait_until(page, "!document.querySelector('#identities').textContent.includes('olga@')")
    wait_until(second, "!document.querySelector('#identities').textContent.includes('olga@')")
    assert dialogs == ["Remove olga@example.com from this customer?"]
    assert page.evaluate("document.activeElement.id") == "identity-address"
    assert "+79161234567" in identities_text(second)
    session.expire_all()
    stored = {(i.kind, i.address) for i in session.scalars(
        select(CustomerIdentity).where(CustomerIdentity.customer_id == cid))}
    assert stored == {("phone", "+79161234567")}
    actions = list(session.scalars(select(AuditLog.action).where(
        AuditLog.object_type == "customer", AuditLog.object_id == str(cid))))
    assert actions.count("customer.identity_add") == 1
    assert actions.count("customer.identity_remove") == 1
    assert console_errors == []

    # The last address cannot go, and someone else's address is explained inline.
    page.once("dialog", lambda d: d.accept())
    page.click("#identities li[data-kind=phone] .identity-remove")
    page.locator("#identity-error", has_text="at least one address").wait_for(timeout=10_000)
    page.select_option("#identity-kind", "email")
    page.fill("#identity-address", "boris@example.com")
    page.press("#identity-address", "Enter")
    page.locator("#identity-error", has_text="ask a supervisor").wait_for(timeout=10_000)
    assert "Boris" not in page.inner_text("#side")
    # A chat id is any text: markup in it stays text.
    page.select_option("#identity-kind", "chat")
    page.fill("#identity-address", '<img src=x onerror="window.__xss=1">')
    page.press("#identity-address", "Enter")
    page.locator("#identities li[data-kind=chat]", has_text="<img src=x").wait_for(timeout=10_000)
    second.locator("#identities li[data-kind=chat]", has_text="<img src=x").wait_for(
        timeout=10_000)
    assert page.locator("#identities img").count() == 0
    assert page.evaluate("window.__xss") is None and second.evaluate("window.__xss") is None
    page.select_option("#identity-kind", "email")
    page.fill("#identity-address", "not an email")
    page.press("#identity-address", "Enter")
    page.locator("#identity-error", has_text="Not accepted").wait_for(timeout=10_000)
    assert "+79161234567" in identities_text(page)


def test_a_renamed_customer_is_renamed_in_a_colleagues_inbox_live(
        second: Any, desk: Desk, colleague: Any, client: Any,  # noqa: F811
        console_errors: list[str]) -> None:  # noqa: F811
    from tests.agent_ui.conftest import csrf_headers, login

    inbox_loads: list[str] = []
    second.on("response", lambda r: inbox_loads.append(r.url)
              if "/desk/api/inbox" in r.url else None)
    sign_in(second, "second@example.test")
    second.wait_for_selector("#live[data-state=live]", timeout=15_000)
    row = second.locator("#tickets tr", has_text=desk.mine.subject)
    row.wait_for(timeout=10_000)
    # The page's first load and the one that follows the socket's connect are both done.
    for _ in range(200):
        if len(inbox_loads) >= 2:
            break
        second.wait_for_timeout(50)
    assert len(inbox_loads) >= 2
    assert "Olga S. Smirnova" not in row.inner_text()
    # Another agent renames the customer; the colleague has not opened the ticket.
    assert login(client, "agent@example.test").status_code == 302
    cid = desk.mine.customer_id
    assert client.patch(f"/api/v1/customers/{cid}", json={"name": "Olga S. Smirnova"},
                        headers=csrf_headers(client)).status_code == 200
    second.locator("#tickets tr", has_text="Olga S. Smirnova").wait_for(timeout=10_000)
    assert desk.mine.subject in second.inner_text("#tickets")
    assert console_errors == []
