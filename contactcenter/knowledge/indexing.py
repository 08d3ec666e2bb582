"""Keep the search index in step with the database (the database is the source of truth).

``sync_articles`` is what the ``kb.index`` job runs: for each article it writes
the published version (or deletes it when the article is not live) and stores
the revision it wrote. ``repair_index`` is the periodic sweep: every article
whose ``indexed_revision`` lags behind, and every indexed document whose
revision disagrees with the database (a lost job, a restored folder), is
written again. ``rebuild_index`` replaces the whole index in one segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.knowledge.index import IndexDoc, KnowledgeIndex, get_index
from contactcenter.knowledge.models import (
    Article,
    ArticleStatus,
    ArticleUse,
    ArticleVersion,
    UseOutcome,
    split_list,
)
from contactcenter.knowledge.text import plain_text

BATCH = 500


def index_path(settings: Settings) -> Path:
    """Return the folder of the article index."""
    if settings.kb_index_dir:
        return Path(settings.kb_index_dir)
    return settings.data_dir / "search" / "kb"


def index_for(settings: Settings) -> KnowledgeIndex:
    """Return this process's index object for the settings' folder."""
    return get_index(index_path(settings))


def fcr_boost(decided: int, resolved: int) -> float:
    """Return the suggestion score multiplier of an article's first-contact resolution record.

    The rate is smoothed towards one half (``(resolved + 1) / (decided + 2)``), and
    its weight grows with the number of decided uses up to 20, so one lucky or
    unlucky ticket moves little. The result stays within [0.6, 1.4]: a proven
    article moves up a few places in suggestions, never past a far better match.
    """
    if decided <= 0:
        return 1.0
    rate = (resolved + 1) / (decided + 2)
    confidence = min(decided, 20) / 20
    return round(1.0 + 0.8 * confidence * (rate - 0.5), 4)


def _outcomes(session: Session, ids: list[int]) -> dict[int, tuple[int, int]]:
    """Return {article id: (decided uses, resolved uses)}."""
    rows = session.execute(
        select(ArticleUse.article_id, ArticleUse.outcome, func.count())
        .where(ArticleUse.article_id.in_(ids), ArticleUse.outcome != UseOutcome.PENDING)
        .group_by(ArticleUse.article_id, ArticleUse.outcome))
    out: dict[int, list[int]] = {}
    for article_id, outcome, count in rows:
        entry = out.setdefault(article_id, [0, 0])
        entry[0] += count
        if outcome == UseOutcome.RESOLVED:
            entry[1] += count
    return {k: (v[0], v[1]) for k, v in out.items()}


def _docs(session: Session, articles: list[Article]) -> list[IndexDoc]:
    live = [a for a in articles if a.is_live]
    if not live:
        return []
    versions = {(v.article_id, v.number): v for v in session.scalars(
        select(ArticleVersion).where(
            ArticleVersion.article_id.in_([a.id for a in live]),
            ArticleVersion.number.in_({a.published_version for a in live})))}
    outcomes = _outcomes(session, [a.id for a in live])
    docs = []
    for article in live:
        version = versions.get((article.id, article.published_version or 0))
        if version is None:
            continue
        decided, resolved = outcomes.get(article.id, (0, 0))
        docs.append(IndexDoc(
            id=article.id, title=version.title, body=plain_text(version.body),
            language=version.language, visibility=version.visibility,
            category=version.category, tags=tuple(split_list(version.tags)),
            products=tuple(split_list(version.products)), external_id=article.external_id,
            group=article.translation_group, boost=fcr_boost(decided, resolved),
            revision=article.revision))
    return docs


def sync_articles(session: Session, index: KnowledgeIndex, ids: Iterable[int]) -> int:
    """Write the current state of some articles to the index; return how many were touched.

    Idempotent: running it twice writes the same documents. The caller commits
    (the stored ``indexed_revision`` values).
    """
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    articles = list(session.scalars(select(Article).where(Article.id.in_(wanted))))
    found = {a.id for a in articles}
    docs = _docs(session, articles)
    live_ids = {d.id for d in docs}
    delete = [i for i in wanted if i not in live_ids or i not in found]
    index.update(docs, delete_ids=delete)
    for article in articles:
        # Only what was written: a newer revision committed meanwhile stays behind for the sweep.
        session.execute(update(Article).where(Article.id == article.id,
                                              Article.revision == article.revision)
                        .values(indexed_revision=article.revision)
                        .execution_options(synchronize_session=False))
    return len(wanted)


def repair_index(session: Session, index: KnowledgeIndex, limit: int = 5000) -> int:
    """Reindex what the database and the index disagree on; return how many articles."""
    lagging = set(session.scalars(select(Article.id).where(
        Article.indexed_revision != Article.revision).limit(limit)))
    stamps = index.stamps()
    live = dict(session.execute(select(Article.id, Article.revision).where(
        Article.published_version.is_not(None), Article.status != ArticleStatus.ARCHIVED)).all())
    for article_id, revision in live.items():
        if stamps.get(article_id) != revision:
            lagging.add(article_id)
    lagging.update(i for i in stamps if i not in live)
    ids = sorted(lagging)[:limit]
    for start in range(0, len(ids), BATCH):
        sync_articles(session, index, ids[start:start + BATCH])
    return len(ids)


def live_docs(session: Session) -> Iterator[IndexDoc]:
    """Yield the index documents of every live article, in batches."""
    last = 0
    while True:
        batch = list(session.scalars(
            select(Article).where(Article.id > last, Article.published_version.is_not(None),
                                  Article.status != ArticleStatus.ARCHIVED)
            .order_by(Article.id).limit(BATCH)))
        if not batch:
            return
        yield from _docs(session, batch)
        last = batch[-1].id


def count_live(session: Session) -> int:
    """Return how many articles are live."""
    return int(session.scalar(select(func.count()).select_from(Article).where(
        Article.published_version.is_not(None), Article.status != ArticleStatus.ARCHIVED)) or 0)


def rebuild_index(session: Session, index: KnowledgeIndex,
                  on_doc: Callable[[], None] | None = None) -> int:
    """Rebuild the whole index from the database; return how many articles it holds."""
    count = index.rebuild(live_docs(session), on_doc=on_doc)
    session.execute(update(Article).values(indexed_revision=Article.revision)
                    .execution_options(synchronize_session=False))
    return count
