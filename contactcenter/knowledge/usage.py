"""What happens to articles in real work: uses in replies, first-contact resolution, feedback.

An agent inserting an article into a reply records an ``ArticleUse``. When the
ticket is then solved with no customer message after the use, the use counts
as a first-contact resolution (FCR) for the article; a customer writing again
(including reopening a solved ticket) makes it a failure. The FCR record feeds
a bounded boost in later suggestions (``indexing.fcr_boost``) and the gaps report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.db import utcnow
from contactcenter.events import record_event, room
from contactcenter.knowledge.errors import ArticleValidationError, WorkflowError
from contactcenter.knowledge.models import (
    Article,
    ArticleFeedback,
    ArticleUse,
    Deflection,
    UseOutcome,
)

MAX_COMMENT = 2000
USE_KINDS = ("answer", "link")
FEEDBACK_SOURCES = ("customer", "agent")
DEFLECTION_SOURCES = ("portal", "chat", "form")


def record_use(session: Session, article: Article, ticket: Any, user_id: int | None,
               kind: str = "answer", now: dt.datetime | None = None) -> ArticleUse:
    """Record that an agent put an article (its answer or its link) into a reply."""
    if kind not in USE_KINDS:
        raise ArticleValidationError("kind must be answer or link")
    if not article.is_live:
        raise WorkflowError("only a published article can be used in a reply")
    now = now or utcnow()
    use = ArticleUse(article_id=article.id, ticket_id=ticket.id, user_id=user_id, kind=kind,
                     used_at=now)
    session.add(use)
    article.uses += 1
    article.last_used_at = now
    session.flush()
    record_event(session, "kb.article_used",
                 {"article_id": article.id, "ticket_id": ticket.id, "use_id": use.id,
                  "kind": kind, "by": user_id}, [room("ticket", ticket.id)])
    return use


def _announce(session: Session, article_ids: set[int], ticket_id: int, outcome: str) -> None:
    if not article_ids:
        return
    for article in session.scalars(select(Article).where(Article.id.in_(article_ids))):
        article.revision += 1  # the FCR boost lives in the index
    session.flush()
    record_event(session, "kb.resolution_recorded",
                 {"article_ids": sorted(article_ids), "ticket_id": ticket_id,
                  "outcome": outcome}, [room("ticket", ticket_id)])


def resolve_uses(session: Session, ticket_id: int, now: dt.datetime | None = None) -> int:
    """Count a ticket's pending uses as first-contact resolutions (the ticket was solved)."""
    now = now or utcnow()
    uses = list(session.scalars(select(ArticleUse).where(
        ArticleUse.ticket_id == ticket_id, ArticleUse.outcome == UseOutcome.PENDING)))
    articles: set[int] = set()
    for use in uses:
        use.outcome = UseOutcome.RESOLVED
        use.decided_at = now
        articles.add(use.article_id)
    for article in session.scalars(select(Article).where(Article.id.in_(articles))):
        article.fcr_count += sum(1 for u in uses if u.article_id == article.id)
    _announce(session, articles, ticket_id, UseOutcome.RESOLVED)
    return len(uses)


def fail_uses(session: Session, ticket_id: int, now: dt.datetime | None = None) -> int:
    """Mark a ticket's uses as not resolving it (the customer wrote again)."""
    now = now or utcnow()
    uses = list(session.scalars(select(ArticleUse).where(
        ArticleUse.ticket_id == ticket_id,
        ArticleUse.outcome.in_((UseOutcome.PENDING, UseOutcome.RESOLVED)))))
    articles: set[int] = set()
    undone: dict[int, int] = {}
    for use in uses:
        if use.outcome == UseOutcome.RESOLVED:
            undone[use.article_id] = undone.get(use.article_id, 0) + 1
        use.outcome = UseOutcome.FAILED
        use.decided_at = now
        articles.add(use.article_id)
    for article in session.scalars(select(Article).where(Article.id.in_(undone))):
        article.fcr_count = max(0, article.fcr_count - undone[article.id])
    _announce(session, articles, ticket_id, UseOutcome.FAILED)
    return len(uses)


def has_open_uses(session: Session, ticket_id: int) -> bool:
    """Whether a ticket has uses whose outcome a customer message would change."""
    return session.scalar(select(ArticleUse.id).where(
        ArticleUse.ticket_id == ticket_id,
        ArticleUse.outcome.in_((UseOutcome.PENDING, UseOutcome.RESOLVED))).limit(1)) is not None


def record_feedback(session: Session, article: Article, helpful: bool, comment: str = "",
                    source: str = "customer", user_id: int | None = None,
                    ticket_id: int | None = None, now: dt.datetime | None = None
                    ) -> ArticleFeedback:
    """Record a "was this helpful?" answer (with an optional comment for the editors)."""
    if source not in FEEDBACK_SOURCES:
        raise ArticleValidationError("source must be customer or agent")
    feedback = ArticleFeedback(article_id=article.id, helpful=bool(helpful),
                               comment=comment.replace("\x00", "").strip()[:MAX_COMMENT],
                               source=source, user_id=user_id, ticket_id=ticket_id,
                               created_at=now or utcnow())
    session.add(feedback)
    if helpful:
        article.helpful_yes += 1
    else:
        article.helpful_no += 1
    session.flush()
    return feedback


def list_feedback(session: Session, article: Article, limit: int = 100) -> list[ArticleFeedback]:
    """Return an article's feedback, newest first."""
    return list(session.scalars(select(ArticleFeedback).where(
        ArticleFeedback.article_id == article.id)
        .order_by(ArticleFeedback.created_at.desc(), ArticleFeedback.id.desc()).limit(limit)))


def record_view(session: Session, article: Article) -> None:
    """Count a reader's view of a live article."""
    article.views += 1
    session.flush()


def record_deflection(session: Session, article: Article, source: str = "portal",
                      now: dt.datetime | None = None) -> Deflection:
    """Count a customer who read an article and left without writing to us."""
    if source not in DEFLECTION_SOURCES:
        raise ArticleValidationError("source must be portal, chat or form")
    row = Deflection(article_id=article.id, source=source, created_at=now or utcnow())
    session.add(row)
    article.deflections += 1
    session.flush()
    return row
