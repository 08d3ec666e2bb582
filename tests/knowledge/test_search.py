"""The Whoosh index: language-aware analysis, visibility, incremental updates and repair."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from contactcenter.knowledge import service
from contactcenter.knowledge.index import Filters, KnowledgeIndex, analyse, make_snippet
from contactcenter.knowledge.indexing import rebuild_index, repair_index
from contactcenter.knowledge.models import Article
from tests.knowledge.conftest import Staff, publish


def ids(hits: list[Any]) -> list[int]:
    return [h.id for h in hits]


def test_russian_and_english_words_are_stemmed() -> None:
    assert analyse("возвраты денежных средств")[0] == analyse("возврат")[0]
    assert analyse("Refunds refunding")[0] == analyse("refund")[0] == analyse("refunding")[0]
    assert analyse("пароля") == analyse("пароль")
    assert analyse("the и в") == []


def test_a_russian_query_finds_other_forms_of_its_words(session: Any, staff: Staff,
                                                        kb_index: KnowledgeIndex) -> None:
    target = publish(session, staff, "Возвраты денежных средств",
                     "Деньги возвращаются на карту в течение 10 дней.", language="ru")
    publish(session, staff, "Доставка заказа", "Курьер привезёт заказ завтра.", language="ru")
    hits = kb_index.search("возврат денег")
    assert ids(hits)[:1] == [target.id]
    assert "<mark>" in hits[0].snippet


def test_english_stemming_and_title_boost(session: Any, staff: Staff,
                                          kb_index: KnowledgeIndex) -> None:
    in_title = publish(session, staff, "Refund policy", "How we handle returns.")
    in_body = publish(session, staff, "Orders", "A refund is possible for unused items.")
    assert ids(kb_index.search("refunds"))[:2] == [in_title.id, in_body.id]


def test_a_typo_still_finds_the_article(session: Any, staff: Staff,
                                        kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Router configuration", "Set up the router firmware.")
    assert ids(kb_index.search("roter configration")) == [article.id]


def test_drafts_and_internal_articles_stay_out_of_public_results(
        session: Any, staff: Staff, kb_index: KnowledgeIndex) -> None:
    public = publish(session, staff, "Secret code reset public", "Reset the code.")
    internal = publish(session, staff, "Secret code reset internal", "Reset the code.",
                       visibility="internal")
    draft = service.create_article(session, service.clean_input(
        {"title": "Secret code reset draft", "body": "Reset the code.", "visibility": "public"}),
        staff.author.id)
    session.commit()
    agent_ids = ids(kb_index.search("secret code reset"))
    assert set(agent_ids) == {public.id, internal.id}
    public_hits = kb_index.search("secret code reset internal draft",
                                  Filters(visibility="public"))
    assert ids(public_hits) == [public.id]
    assert "internal" not in public_hits[0].snippet and "draft" not in public_hits[0].snippet
    assert draft.id not in agent_ids


def test_unpublish_and_archive_remove_the_article_at_once(session: Any, staff: Staff,
                                                          kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Modem lights", "What the blinking lights mean.")
    assert ids(kb_index.search("modem lights")) == [article.id]
    service.transition(session, article, "unpublish", staff.reviewer.id)
    session.commit()
    assert kb_index.search("modem lights") == []
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    session.commit()
    assert ids(kb_index.search("modem lights")) == [article.id]
    service.transition(session, article, "archive", staff.reviewer.id)
    session.commit()
    assert kb_index.search("modem lights") == []


def test_edits_reach_the_index_only_when_published(session: Any, staff: Staff,
                                                   kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Opening hours", "We open at nine.")
    service.save_article(session, article, service.clean_input(
        {"title": "Opening hours", "body": "We open at seven sharp.", "visibility": "public"}),
        staff.author.id)
    session.commit()
    assert kb_index.search("seven sharp") == []
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    session.commit()
    assert ids(kb_index.search("seven sharp")) == [article.id]


def test_filters_by_language_category_and_product(session: Any, staff: Staff,
                                                  kb_index: KnowledgeIndex) -> None:
    a = publish(session, staff, "Router reset", "Hold the button.", category="Internet",
                products=("R-100",))
    b = publish(session, staff, "Router reset TV", "Hold the button.", category="TV",
                products=("TV-1",))
    assert ids(kb_index.search("router", Filters(category="internet"))) == [a.id]
    assert ids(kb_index.search("router", Filters(product="tv-1"))) == [b.id]
    assert kb_index.search("router", Filters(language="ru")) == []


def test_the_sweep_repairs_a_lost_index_job(session: Any, staff: Staff,
                                            kb_index: KnowledgeIndex) -> None:
    article = publish(session, staff, "Parcel tracking", "Track your parcel online.")
    kb_index.update(delete_ids=[article.id])  # as if the job had never run
    session.execute(update(Article).values(indexed_revision=0))
    session.commit()
    assert kb_index.search("parcel") == []
    assert repair_index(session, kb_index) == 1
    session.commit()
    assert ids(kb_index.search("parcel")) == [article.id]
    assert repair_index(session, kb_index) == 0


def test_full_rebuild(session: Any, staff: Staff, kb_index: KnowledgeIndex) -> None:
    publish(session, staff, "One", "first article")
    publish(session, staff, "Two", "second article")
    assert rebuild_index(session, kb_index) == 2
    assert kb_index.doc_count() == 2


def test_snippets_are_escaped() -> None:
    snippet = make_snippet("Use <script>x</script> router", {"router"})
    assert "<script" not in snippet and "&lt;/script&gt;" in snippet
    assert "<mark>router</mark>" in snippet
