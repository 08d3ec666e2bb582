"""The gaps report: frequent ticket topics where no article led to first-contact resolution.

Topics are clustered simply: the stems of recent tickets' subjects (the same
analysis as the index, so «возврат» and «возвраты» are one topic), counted
once per ticket, among tickets with no resolved article use. For each frequent
topic the report says how many such tickets there were, a few example
subjects, and whether any live article matches it at all (``articles``): none
means an article is missing; some means the existing ones do not help.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.knowledge.index import analyse
from contactcenter.knowledge.indexing import index_for
from contactcenter.knowledge.models import ArticleUse, UseOutcome

MAX_TICKETS = 5000


def gaps_report(session: Session, settings: Settings, days: int = 30, top: int = 20,
                min_tickets: int = 2, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return ``{"tickets", "topics": [{"topic", "tickets", "examples", "articles"}]}``."""
    from contactcenter.tickets.models import Ticket

    since = (now or utcnow()) - dt.timedelta(days=days)
    helped = exists().where(ArticleUse.ticket_id == Ticket.id,
                            ArticleUse.outcome == UseOutcome.RESOLVED)
    rows = session.execute(select(Ticket.id, Ticket.subject).where(
        Ticket.created_at >= since, ~helped).order_by(Ticket.id.desc()).limit(MAX_TICKETS)).all()
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for _id, subject in rows:
        for term in set(analyse(subject or "")):
            if len(term) < 3 or term.isdigit():
                continue
            counts[term] += 1
            if len(examples[term]) < 3:
                examples[term].append(subject[:120])
    index = index_for(settings)
    topics = []
    for term, n in counts.most_common(top):
        if n < min_tickets:
            break
        matches = index.search(term, limit=3, snippets=False)
        topics.append({"topic": term, "tickets": n, "examples": examples[term],
                       "articles": [{"id": h.id, "title": h.title} for h in matches]})
    return {"days": days, "tickets": len(rows), "topics": topics}
