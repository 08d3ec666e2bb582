"""The editor pages and the public portal through the Flask test client."""

from __future__ import annotations

from typing import Any

from contactcenter.knowledge import service
from tests.agent_ui.conftest import csrf_of, login
from tests.knowledge.conftest import Staff, publish


def test_portal_never_shows_drafts_or_internal_articles(client: Any, session: Any,
                                                        staff: Staff, kb_index: Any) -> None:
    public = publish(session, staff, "Refund policy public", "Money back in 10 days.",
                     category="Billing")
    internal = publish(session, staff, "Refund policy internal", "Escalate refunds.",
                       visibility="internal", category="Billing")
    draft = service.create_article(session, service.clean_input(
        {"title": "Refund policy draft", "body": "Secret draft text", "visibility": "public",
         "category": "Billing"}), staff.author.id)
    session.commit()
    page = client.get("/help/search?q=refund+policy+internal+draft").get_data(as_text=True)
    assert "Refund policy public" in page
    assert "Refund policy internal" not in page and "Refund policy draft" not in page
    assert client.get(f"/help/articles/{internal.id}").status_code == 404
    assert client.get(f"/help/articles/{draft.id}").status_code == 404
    assert client.get(f"/help/articles/{public.id}").status_code == 200
    listing = client.get("/help/categories/Billing").get_data(as_text=True)
    assert "Refund policy public" in listing and "internal" not in listing
    suggested = client.get("/help/api/suggest?text=refund+policy+escalate").get_json()
    assert [r["id"] for r in suggested["results"]] == [public.id]


def test_portal_feedback_and_deflection(client: Any, session: Any, staff: Staff,
                                        kb_index: Any) -> None:
    article = publish(session, staff, "Wi-Fi tips", "Move the router.")
    page = client.get(f"/help/articles/{article.id}").get_data(as_text=True)
    token = csrf_of(page)
    response = client.post(f"/help/articles/{article.id}/feedback",
                           data={"csrf_token": token, "helpful": "no", "comment": "too short"})
    assert response.status_code == 302
    assert client.post(f"/help/api/articles/{article.id}/deflected").status_code == 204
    session.refresh(article)
    assert (article.helpful_no, article.deflections, article.views) == (1, 1, 1)


def test_editor_pages_need_the_editor_permission(client: Any, session: Any,
                                                 staff: Staff) -> None:
    assert client.get("/kb").status_code == 302
    login(client, "agent@example.test")
    assert client.get("/kb").status_code == 403
    client.post("/logout")
    login(client, "author@example.test")
    page = client.get("/kb/new").get_data(as_text=True)
    created = client.post("/kb/new", data={"csrf_token": csrf_of(page), "title": "Hello",
                                           "body": "# Hi", "language": "en",
                                           "visibility": "public"})
    assert created.status_code == 302
    edit = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "<h1>Hi</h1>" in edit
