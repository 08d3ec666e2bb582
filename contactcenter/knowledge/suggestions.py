"""Article suggestions for a ticket (cached by a job) and for text being typed (live).

A ticket's suggestions are computed by the ``kb.suggest_for_ticket`` job when a
message arrives and stored in ``kb_ticket_suggestions``, so the desk reads one
row instead of searching while it draws a screen. The query text is the
ticket's subject and its three latest customer messages; the customer's
language (their record's, else guessed from the text) is preferred.

``suggest_text`` serves typing: an agent's reply box, and the chat and web form
deflection (``public=True`` restricts to public articles, which is all the
index may show to a customer).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.events import record_event, room
from contactcenter.knowledge.index import Filters, SearchHit
from contactcenter.knowledge.models import LANGUAGES, TicketSuggestion
from contactcenter.knowledge.text import detect_language

MAX_TEXT = 4000
RECENT_MESSAGES = 3


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    try:
        from flask import current_app

        from contactcenter.app import services

        if current_app:
            return services().settings
    except RuntimeError:
        pass
    from contactcenter.config import default_settings

    return default_settings()


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """Return the JSON form of a suggestion or search hit."""
    return {"id": hit.id, "external_id": hit.external_id, "title": hit.title,
            "score": round(hit.score, 4), "language": hit.language,
            "visibility": hit.visibility, "category": hit.category}


def suggest_text(text: str, lang: str | None = None, *, settings: Settings | None = None,
                 public: bool = False, limit: int | None = None) -> list[SearchHit]:
    """Return the best articles for a text being typed, in ``lang`` first (guessed if None)."""
    from contactcenter.knowledge.indexing import index_for

    settings = _settings(settings)
    text = text[:MAX_TEXT]
    if lang not in LANGUAGES:
        lang = detect_language(text)
    limit = max(1, min(limit or settings.kb_suggestion_limit, 20))
    filters = Filters(visibility="public") if public else Filters()
    return index_for(settings).suggest(text, filters, limit=limit, prefer_language=lang)


def prefer_translations(session: Session, hits: list[SearchHit], language: str
                        ) -> list[SearchHit]:
    """Replace hits in another language by their live translation in ``language``, if any."""
    from contactcenter.knowledge.models import Article, ArticleStatus

    groups = {h.group for h in hits if h.group is not None and h.language != language}
    if not groups:
        return hits
    rows = session.scalars(select(Article).where(
        Article.translation_group.in_(groups), Article.language == language,
        Article.published_version.is_not(None), Article.status != ArticleStatus.ARCHIVED))
    by_group = {a.translation_group: a for a in rows}
    out, seen = [], set()
    for hit in hits:
        other = by_group.get(hit.group) if hit.language != language else None
        if other is not None and (hit.visibility == "internal" or other.visibility == "public"):
            hit = SearchHit(id=other.id, title=other.title, score=hit.score, language=language,
                            visibility=other.visibility, category=other.category,
                            external_id=other.external_id, group=hit.group, boost=hit.boost)
        if hit.id not in seen:
            seen.add(hit.id)
            out.append(hit)
    return out


def ticket_text(session: Session, ticket: Any) -> str:
    """Return the text a ticket's suggestions are computed from."""
    from contactcenter.tickets.models import Direction, Message

    messages = session.scalars(
        ticket.messages.select().where(Message.direction == Direction.INBOUND)
        .order_by(Message.id.desc()).limit(RECENT_MESSAGES)).all()
    parts = [ticket.subject or ""] + [m.text[:1500] for m in reversed(messages)]
    return "\n".join(p for p in parts if p)[:MAX_TEXT]


def ticket_language(ticket: Any, text: str) -> str:
    """Return the customer's language (their record's, else guessed from the text)."""
    language = (ticket.customer.language or "").lower()[:2] if ticket.customer else ""
    return language if language in LANGUAGES else detect_language(text)


def compute_ticket_suggestions(session: Session, settings: Settings, ticket_id: int,
                               message_id: int | None = None,
                               now: dt.datetime | None = None) -> TicketSuggestion | None:
    """Compute, store and announce a ticket's suggestions (the job's work; caller commits)."""
    from contactcenter.knowledge.indexing import index_for
    from contactcenter.tickets.models import Ticket

    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not index_for(settings).exists():
        return None  # no such ticket, or no article was ever published
    text = ticket_text(session, ticket)
    language = ticket_language(ticket, text)
    hits = prefer_translations(session, suggest_text(text, language, settings=settings),
                               language)
    row = session.get(TicketSuggestion, ticket_id)
    if row is None:
        row = TicketSuggestion(ticket_id=ticket_id, results=[])
        session.add(row)
    results = [hit_json(h) for h in hits]
    changed = row.results != results
    row.message_id = message_id
    row.language = language
    row.results = results
    row.computed_at = now or utcnow()
    session.flush()
    if not changed:
        return row  # the desk already shows these
    record_event(session, "kb.suggestions_ready",
                 {"ticket_id": ticket_id, "number": ticket.number,
                  "article_ids": [h.id for h in hits]}, [room("ticket", ticket_id)])
    return row


def suggestions_for_ticket(session: Session, ticket_id: int,
                           settings: Settings | None = None) -> list[dict[str, Any]]:
    """Return a ticket's cached suggestions, computing them once if the job has not run yet."""
    row = session.scalar(select(TicketSuggestion).where(TicketSuggestion.ticket_id == ticket_id))
    if row is None:
        row = compute_ticket_suggestions(session, _settings(settings), ticket_id)
        if row is None:
            return []
    return list(row.results)
