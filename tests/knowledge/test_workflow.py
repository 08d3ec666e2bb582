"""The editorial workflow: versions, review by another editor, rollback, diff, stale flags."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contactcenter.knowledge import service
from contactcenter.knowledge.errors import ArticleValidationError, WorkflowError
from contactcenter.knowledge.models import ArticleStatus
from tests.knowledge.conftest import Staff, publish


def content(**fields: Any) -> service.ArticleInput:
    base = {"title": "Reset your password", "body": "Use the *forgot password* link.",
            "language": "en", "visibility": "public"}
    return service.clean_input({**base, **fields})


def test_every_save_is_a_version_and_unchanged_saves_are_not(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(), staff.author.id)
    assert article.current_version == 1
    assert service.save_article(session, article, content(), staff.author.id) is None
    v2 = service.save_article(session, article, content(body="Click *Forgot password*."),
                              staff.author.id, note="clearer")
    assert v2 is not None and v2.number == 2 and article.current_version == 2
    assert [v.number for v in service.list_versions(session, article)] == [2, 1]


def test_publishing_needs_review_by_someone_else(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(), staff.author.id)
    with pytest.raises(WorkflowError, match="review"):
        service.transition(session, article, "publish", staff.reviewer.id)
    service.transition(session, article, "submit", staff.author.id)
    assert article.status == ArticleStatus.IN_REVIEW
    with pytest.raises(WorkflowError, match="other than the author"):
        service.transition(session, article, "publish", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    assert article.status == ArticleStatus.PUBLISHED and article.published_version == 1
    assert article.reviewer_id == staff.reviewer.id and article.is_live


def test_review_can_be_switched_off(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(), staff.author.id)
    service.transition(session, article, "publish", staff.author.id, review_required=False)
    assert article.is_live


def test_editing_a_live_article_keeps_readers_on_the_published_version(
        session: Any, staff: Staff) -> None:
    article = publish(session, staff, "Refunds", "Refunds take 10 days.")
    service.save_article(session, article, content(title="Refunds", body="Refunds take 3 days."),
                         staff.author.id)
    assert article.status == ArticleStatus.DRAFT and article.is_live
    live = service.published_content(session, article)
    assert live is not None and live.body == "Refunds take 10 days."
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    live = service.published_content(session, article)
    assert live is not None and live.body == "Refunds take 3 days."


def test_reject_unpublish_archive_and_restore(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(), staff.author.id)
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "reject", staff.reviewer.id)
    assert article.status == ArticleStatus.DRAFT
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    service.transition(session, article, "unpublish", staff.reviewer.id)
    assert not article.is_live and article.status == ArticleStatus.DRAFT
    with pytest.raises(WorkflowError):
        service.transition(session, article, "unpublish", staff.reviewer.id)
    service.transition(session, article, "archive", staff.reviewer.id)
    with pytest.raises(WorkflowError):
        service.save_article(session, article, content(title="x"), staff.author.id)
    service.transition(session, article, "restore", staff.reviewer.id)
    assert article.status == ArticleStatus.DRAFT


def test_rollback_writes_a_new_version_with_the_old_content(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(body="one"), staff.author.id)
    service.save_article(session, article, content(body="two"), staff.author.id)
    service.save_article(session, article, content(body="three"), staff.author.id)
    version = service.rollback(session, article, 1, staff.reviewer.id)
    assert version.number == 4 and article.body == "one"
    assert "rolled back to version 1" in version.note
    with pytest.raises(WorkflowError):
        service.rollback(session, article, 1, staff.reviewer.id)


def test_diff_between_any_two_versions(session: Any, staff: Staff) -> None:
    article = service.create_article(session, content(body="line a\nline b\nline c"),
                                     staff.author.id)
    service.save_article(session, article, content(title="New title",
                                                   body="line a\nline B\nline c"),
                         staff.author.id)
    changes = service.diff_versions(session, article, 1, 2)
    by_field = {c["field"]: c for c in changes}
    assert by_field["title"] == {"field": "title", "old": "Reset your password",
                                 "new": "New title"}
    ops = [(line["op"], line["text"]) for line in by_field["body"]["lines"]]
    assert ("-", "line b") in ops and ("+", "line B") in ops and (" ", "line a") in ops


def test_input_is_validated_and_bounded(session: Any) -> None:
    with pytest.raises(ArticleValidationError):
        service.clean_input({"title": ""})
    with pytest.raises(ArticleValidationError):
        service.clean_input({"title": "x", "language": "de"})
    with pytest.raises(ArticleValidationError):
        service.clean_input({"title": "x", "visibility": "everyone"})
    with pytest.raises(ArticleValidationError):
        service.clean_input({"title": "x" * 301})
    cleaned = service.clean_input({"title": " x ", "tags": "a; b,a", "products": ["R1", ""]})
    assert cleaned.title == "x" and cleaned.tags == ("a", "b") and cleaned.products == ("R1",)


def test_stale_articles_are_flagged(session: Any, staff: Staff) -> None:
    article = publish(session, staff, "Old", "Old text")
    now = article.published_at + dt.timedelta(days=200)
    assert service.is_stale(article, 180, now)
    assert [a.id for a in service.list_stale(session, 180, now)] == [article.id]
    article.last_used_at = now
    service.mark_reviewed(session, article, staff.reviewer.id, now=now)
    assert not service.is_stale(article, 180, now)
    assert service.list_stale(session, 180, now) == []


def test_translations_are_linked_both_ways(session: Any, staff: Staff) -> None:
    en = publish(session, staff, "Refunds", "Money back in 10 days.")
    ru = service.create_article(session, content(title="Возвраты", language="ru"),
                                staff.author.id, translation_of=en)
    assert [a.id for a in service.translations_of(session, en)] == [ru.id]
    assert [a.id for a in service.translations_of(session, ru)] == [en.id]
