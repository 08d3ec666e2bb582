"""JSON forms of articles and versions for the API and the editor pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contactcenter.knowledge.models import Article, ArticleVersion, split_list
from contactcenter.knowledge.text import render_markdown


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def article_json(article: Article, *, body: bool = False, version: ArticleVersion | None = None,
                 session: Session | None = None, stale_days: int | None = None
                 ) -> dict[str, Any]:
    """Return an article as JSON: the working copy, or ``version``'s content when given."""
    src: Article | ArticleVersion = version or article
    data: dict[str, Any] = {
        "id": article.id, "external_id": article.external_id, "title": src.title,
        "category": src.category, "tags": split_list(src.tags),
        "products": split_list(src.products), "language": src.language,
        "visibility": src.visibility, "status": article.status, "live": article.is_live,
        "current_version": article.current_version,
        "published_version": article.published_version,
        "translation_group": article.translation_group,
        "author_id": article.author_id, "reviewer_id": article.reviewer_id,
        "published_at": _iso(article.published_at), "reviewed_at": _iso(article.reviewed_at),
        "last_used_at": _iso(article.last_used_at), "updated_at": _iso(article.updated_at),
        "uses": article.uses, "fcr_count": article.fcr_count,
        "helpful_yes": article.helpful_yes, "helpful_no": article.helpful_no,
        "views": article.views, "deflections": article.deflections,
    }
    if stale_days is not None:
        from contactcenter.knowledge.service import is_stale

        data["stale"] = is_stale(article, stale_days)
    if body:
        data["body"] = src.body
        data["html"] = render_markdown(src.body)
    if session is not None:
        from contactcenter.knowledge.service import translations_of

        data["translations"] = [{"id": a.id, "language": a.language, "title": a.title}
                                for a in translations_of(session, article)]
    return data


def version_json(version: ArticleVersion) -> dict[str, Any]:
    """Return a version's summary."""
    return {"number": version.number, "title": version.title, "author_id": version.author_id,
            "note": version.note, "created_at": _iso(version.created_at),
            "language": version.language, "visibility": version.visibility}
