"""Suggestions for tickets, article uses, first-contact resolution, feedback and the importer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from contactcenter.knowledge import service, usage
from contactcenter.knowledge.importer import import_articles_file
from contactcenter.knowledge.index import KnowledgeIndex
from contactcenter.knowledge.indexing import fcr_boost
from contactcenter.knowledge.models import Article, TicketSuggestion, UseOutcome
from contactcenter.tickets.service import change_status
from tests.agent_ui.conftest import ingest
from tests.factories import make_customer, make_inbox, make_queue
from tests.knowledge.conftest import Staff, publish


def test_a_customer_message_computes_and_caches_suggestions(
        session: Any, settings: Any, staff: Staff, kb_index: KnowledgeIndex, events: Any) -> None:
    en = publish(session, staff, "Router light blinks red", "Restart the router.")
    ru = publish(session, staff, "Роутер мигает красным", "Перезагрузите роутер.", language="ru")
    service.link_translation(session, ru, en)
    session.commit()
    make_customer(session, "Анна", email="anna@example.ru", language="ru")
    session.commit()
    ticket = ingest(session, settings, sender="anna@example.ru", subject="Router red light",
                    text="my router blinks red")
    row = session.get(TicketSuggestion, ticket.id)
    assert row is not None and row.language == "ru"
    # The customer's language comes first, and one of a pair of translations is shown.
    assert [r["id"] for r in row.results] == [ru.id]
    assert any(e.type == "kb.suggestions_ready" and f"ticket:{ticket.id}" in e.rooms
               for e in events.published)
    assert service.suggestions_for_ticket(session, ticket.id) == row.results


def test_first_contact_resolution_is_counted_and_lifts_the_article(
        session: Any, settings: Any, staff: Staff, kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Parcel tracking", "Track the parcel online.")
    inbox = make_inbox(session, make_queue(session))
    session.commit()
    solved = ingest(session, settings, inbox_id=inbox.id, subject="Where is my parcel")
    usage.record_use(session, article, solved, staff.agent.id)
    change_status(session, solved, "solved", staff.agent.id)
    session.commit()
    assert article.fcr_count == 1 and article.uses == 1
    again = ingest(session, settings, inbox_id=inbox.id, subject="Where is my parcel",
                   sender="other@example.com")
    usage.record_use(session, article, again, staff.agent.id)
    session.commit()
    # The customer writes again before the ticket is solved: that use did not settle it.
    ingest(session, settings, inbox_id=inbox.id, ticket_number=again.number,
           sender="other@example.com", text="Still lost")
    uses = {u.ticket_id: u.outcome for u in session.scalars(select(usage.ArticleUse))}
    assert uses == {solved.id: UseOutcome.RESOLVED, again.id: UseOutcome.FAILED}
    # The index holds the boost of 1 resolved in 2 decided uses.
    hit = kb_index.search("parcel tracking")[0]
    assert hit.boost == fcr_boost(2, 1) == 1.0


def test_fcr_boost_is_bounded() -> None:
    assert fcr_boost(0, 0) == 1.0
    assert 1.0 < fcr_boost(20, 20) <= 1.4
    assert 0.6 <= fcr_boost(20, 0) < 1.0
    assert fcr_boost(1, 1) < fcr_boost(10, 10)


def test_feedback_and_deflection_are_counted(session: Any, staff: Staff,
                                              kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Wi-Fi", "Move the router.")
    usage.record_feedback(session, article, True, "clear", source="customer")
    usage.record_feedback(session, article, False, "too short", source="agent",
                          user_id=staff.agent.id)
    usage.record_deflection(session, article, "chat")
    session.commit()
    assert (article.helpful_yes, article.helpful_no, article.deflections) == (1, 1, 1)
    assert [f.comment for f in usage.list_feedback(session, article)] == ["too short", "clear"]


def test_agents_propose_drafts_from_a_ticket(session: Any, settings: Any, staff: Staff) -> None:
    ticket = ingest(session, settings, subject="Modem setup", text="How to set up the modem?")
    article = service.propose_from_ticket(session, ticket, staff.agent.id, "",
                                          "Plug the modem in and wait.")
    assert article.status == "draft" and article.visibility == "internal"
    assert article.title == "Modem setup" and not article.is_live


def test_import_is_idempotent_and_indexes_at_once(session: Any, settings: Any, db: Any,
                                                  tmp_path: Path, kb_index: KnowledgeIndex
                                                  ) -> None:
    records = [{"external_id": "a1", "title": "Return policy", "body": "30 days to return.",
                "language": "en", "category": "Billing", "tags": "returns;policy",
                "visibility": "public", "status": "published"},
               {"external_id": "a2", "title": "Политика возврата", "body": "30 дней.",
                "language": "ru", "category": "Billing", "tags": ["возврат"],
                "visibility": "public", "status": "draft"},
               {"external_id": "", "title": "broken"}]
    path = tmp_path / "articles.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    result = import_articles_file(db, path, progress=False, settings=settings)
    assert (result.created, result.updated, result.error_count) == (2, 0, 1)
    assert [h.external_id for h in kb_index.search("return policy")] == ["a1"]
    again = import_articles_file(db, path, progress=False, settings=settings)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    records[0]["body"] = "60 days to return."
    path.write_text(json.dumps(records), encoding="utf-8")
    third = import_articles_file(db, path, progress=False, settings=settings)
    assert third.updated == 1
    assert session.scalar(select(Article).where(Article.external_id == "a1")).current_version == 2
    csv_path = tmp_path / "articles.csv"
    csv_path.write_text("external_id,title,body,language,status\n"
                        "c1,Router reset,\"Hold reset, 10 s\",en,published\n", encoding="utf-8")
    assert import_articles_file(db, csv_path, progress=False, settings=settings).created == 1
    assert [h.external_id for h in kb_index.search("router reset")] == ["c1"]


def test_gaps_report_lists_frequent_topics_no_article_solved(
        session: Any, settings: Any, staff: Staff, kb_index: KnowledgeIndex) -> None:
    from contactcenter.knowledge.gaps import gaps_report

    article = publish(session, staff, "Parcel tracking", "Track the parcel online.")
    inbox = make_inbox(session, make_queue(session))
    session.commit()
    for n in range(3):
        ingest(session, settings, inbox_id=inbox.id, subject=f"Invoices are wrong {n}",
               sender=f"inv{n}@example.com")
    solved = ingest(session, settings, inbox_id=inbox.id, subject="Parcel invoices",
                    sender="p@example.com")
    usage.record_use(session, article, solved, staff.agent.id)
    change_status(session, solved, "solved", staff.agent.id)
    session.commit()
    report = gaps_report(session, settings)
    topics = {t["topic"]: t for t in report["topics"]}
    assert topics["invoic"]["tickets"] == 3  # the solved ticket does not count
    assert topics["invoic"]["articles"] == []  # and no article covers it
    assert "parcel" not in topics
