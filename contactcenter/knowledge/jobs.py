"""Background jobs of the knowledge package (see ``contactcenter.jobs``).

``kb.index`` is the index's one writer: it runs after every commit that
published, unpublished or archived an article, or changed its first-contact
resolution record, and writes the database's state of those articles.
``kb.index_sweep`` repairs what lost jobs left behind. ``kb.suggest_for_ticket``
computes and caches a ticket's suggestions when a customer message arrives.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contactcenter.jobs import JobContext, job, on_event
from contactcenter.knowledge.indexing import index_for, repair_index, sync_articles
from contactcenter.knowledge.models import Article
from contactcenter.knowledge.suggestions import compute_ticket_suggestions

for _event in ("kb.article_published", "kb.article_unpublished", "kb.article_saved",
               "kb.resolution_recorded"):
    on_event(_event, "kb.index")
on_event("message.created", "kb.suggest_for_ticket")


def _ids(payload: dict[str, Any]) -> list[int]:
    ids = list(payload.get("article_ids") or [])
    if payload.get("article_id") is not None:
        ids.append(payload["article_id"])
    return [int(i) for i in ids]


@job("kb.index", queue="search")
def index_job(ctx: JobContext, payload: dict[str, Any]) -> int:
    """Write the current state of the payload's articles to the index (idempotent)."""
    ids = _ids(payload)
    with ctx.db.session() as session:
        stale = list(session.scalars(select(Article.id).where(
            Article.id.in_(ids), Article.indexed_revision != Article.revision)))
        if not stale:
            return 0
        count = sync_articles(session, index_for(ctx.settings), stale)
        session.commit()
        return count


@job("kb.index_sweep", queue="search", every=600)
def index_sweep_job(ctx: JobContext) -> int:
    """Reindex the articles the database and the index disagree on."""
    with ctx.db.session() as session:
        count = repair_index(session, index_for(ctx.settings))
        session.commit()
        return count


@job("kb.suggest_for_ticket", queue="search")
def suggest_for_ticket_job(ctx: JobContext, payload: dict[str, Any]) -> bool:
    """Compute and cache a ticket's suggestions after a customer message."""
    if payload.get("direction") != "inbound" or payload.get("ticket_id") is None:
        return False
    with ctx.db.session() as session:
        row = compute_ticket_suggestions(session, ctx.settings, int(payload["ticket_id"]),
                                         payload.get("message_id"))
        session.commit()
        return row is not None
