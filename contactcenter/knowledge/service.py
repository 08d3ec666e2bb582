"""Use cases of the knowledge base: write articles, move them through the workflow, roll back.

Every function takes the caller's ``Session`` and never commits: the web layer,
the CLI and jobs commit. Changes readers can see (publish, unpublish, archive,
links between translations) bump ``Article.revision`` and record an event; the
``kb.index`` job subscribed to those events brings the index up to date after
the commit, and the repair sweep catches any job that was lost.

Permissions are the caller's business (``Permission.KB_EDIT`` for every editing
function here); ``propose_from_ticket`` is the one writer open to agents, and it
only ever creates a draft.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.knowledge import suggestions
from contactcenter.knowledge.errors import (
    ArticleNotFoundError,
    ArticleValidationError,
    WorkflowError,
)
from contactcenter.knowledge.models import (
    LANGUAGES,
    Article,
    ArticleStatus,
    ArticleVersion,
    Visibility,
    join_list,
    split_list,
)
from contactcenter.knowledge.workflow import PublishCheck, check_publish, next_status

# Suggestions are part of this module's API; they live in ``suggestions``.
suggest_text = suggestions.suggest_text
suggestions_for_ticket = suggestions.suggestions_for_ticket
compute_ticket_suggestions = suggestions.compute_ticket_suggestions

KB_ROOM = "kb"
CONTENT_FIELDS = ("title", "body", "category", "tags", "products", "language", "visibility")
MAX_TITLE = 300
MAX_BODY = 200_000
MAX_CATEGORY = 100
MAX_LIST = 1000


@dataclass(frozen=True)
class ArticleInput:
    """The editable content of an article, validated by ``clean_input``."""

    title: str
    body: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    language: str = "en"
    visibility: str = Visibility.INTERNAL


def clean_input(data: dict[str, Any], base: ArticleInput | None = None) -> ArticleInput:
    """Validate and bound article fields from a form, JSON or an import row.

    Fields missing from ``data`` keep the values of ``base``; lists may be given
    as lists or as ``;``/``,``-separated text.
    """
    def text(name: str, default: str, limit: int) -> str:
        value = data.get(name, default)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ArticleValidationError(f"{name} must be text")
        value = value.replace("\x00", "").strip() if name != "body" else value.replace("\x00", "")
        if len(value) > limit:
            raise ArticleValidationError(f"{name} is longer than {limit} characters")
        return value

    def items(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = data.get(name, default)
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.replace(",", ";").split(";")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ArticleValidationError(f"{name} must be a list of text")
        cleaned = tuple(dict.fromkeys(v.strip()[:60] for v in value if v.strip()))
        if len(join_list(list(cleaned))) > MAX_LIST:
            raise ArticleValidationError(f"{name} is too long")
        return cleaned

    base = base or ArticleInput(title="")
    result = ArticleInput(
        title=text("title", base.title, MAX_TITLE),
        body=text("body", base.body, MAX_BODY),
        category=text("category", base.category, MAX_CATEGORY),
        tags=items("tags", base.tags),
        products=items("products", base.products),
        language=text("language", base.language, 8).lower() or "en",
        visibility=text("visibility", base.visibility, 16).lower() or Visibility.INTERNAL,
    )
    if not result.title:
        raise ArticleValidationError("title is required")
    if result.language not in LANGUAGES:
        raise ArticleValidationError(f"language must be one of {', '.join(LANGUAGES)}")
    if result.visibility not in {v.value for v in Visibility}:
        raise ArticleValidationError("visibility must be internal or public")
    return result


def input_of(article: Article | ArticleVersion) -> ArticleInput:
    """Return the content of an article's working copy or of a version."""
    return ArticleInput(title=article.title, body=article.body, category=article.category,
                        tags=tuple(split_list(article.tags)),
                        products=tuple(split_list(article.products)),
                        language=article.language, visibility=article.visibility)


def get_article(session: Session, article_id: int) -> Article:
    """Return an article or raise ``ArticleNotFoundError``."""
    article = session.get(Article, article_id)
    if article is None:
        raise ArticleNotFoundError(f"no article {article_id}")
    return article


def get_version(session: Session, article: Article, number: int) -> ArticleVersion:
    """Return one version of an article or raise ``ArticleNotFoundError``."""
    version = session.scalar(select(ArticleVersion).where(
        ArticleVersion.article_id == article.id, ArticleVersion.number == number))
    if version is None:
        raise ArticleNotFoundError(f"article {article.id} has no version {number}")
    return version


def list_versions(session: Session, article: Article) -> list[ArticleVersion]:
    """Return an article's versions, newest first."""
    return list(session.scalars(select(ArticleVersion).where(
        ArticleVersion.article_id == article.id).order_by(ArticleVersion.number.desc())))


def published_content(session: Session, article: Article) -> ArticleVersion | None:
    """Return the version readers see, or None when the article is not live."""
    if not article.is_live or article.published_version is None:
        return None
    return get_version(session, article, article.published_version)


def _apply(article: Article, content: ArticleInput) -> None:
    article.title = content.title
    article.body = content.body
    article.category = content.category
    article.tags = join_list(list(content.tags))
    article.products = join_list(list(content.products))
    article.language = content.language
    article.visibility = content.visibility


def _new_version(session: Session, article: Article, author_id: int | None, note: str,
                 now: dt.datetime) -> ArticleVersion:
    article.current_version += 1
    version = ArticleVersion(
        article_id=article.id, number=article.current_version, title=article.title,
        body=article.body, category=article.category, tags=article.tags,
        products=article.products, language=article.language, visibility=article.visibility,
        author_id=author_id, note=note[:300], created_at=now)
    session.add(version)
    return version


def _changed(session: Session, article: Article, event: str, actor_id: int | None,
             index: bool) -> None:
    if index:
        article.revision += 1
    session.flush()
    record_event(session, event, {"article_id": article.id, "status": article.status,
                                  "version": article.current_version,
                                  "published_version": article.published_version,
                                  "by": actor_id}, [KB_ROOM])


def create_article(session: Session, content: ArticleInput, author_id: int | None, *,
                   external_id: str | None = None, note: str = "created",
                   translation_of: Article | None = None,
                   now: dt.datetime | None = None) -> Article:
    """Create a draft article with its first version."""
    now = now or utcnow()
    article = Article(external_id=external_id, status=ArticleStatus.DRAFT, author_id=author_id,
                      current_version=0, created_at=now, updated_at=now)
    _apply(article, content)
    session.add(article)
    session.flush()
    _new_version(session, article, author_id, note, now)
    if translation_of is not None:
        link_translation(session, article, translation_of)
    _changed(session, article, "kb.article_saved", author_id, index=False)
    return article


def save_article(session: Session, article: Article, content: ArticleInput,
                 editor_id: int | None, note: str = "", now: dt.datetime | None = None
                 ) -> ArticleVersion | None:
    """Save new content as a new version; return it, or None when nothing changed.

    A published or in-review article goes back to draft: readers keep the
    published version until the new one is reviewed and published.
    """
    now = now or utcnow()
    if article.status == ArticleStatus.ARCHIVED:
        raise WorkflowError("restore an archived article before editing it")
    if input_of(article) == content:
        return None
    _apply(article, content)
    version = _new_version(session, article, editor_id, note, now)
    if article.status in (ArticleStatus.PUBLISHED, ArticleStatus.IN_REVIEW):
        article.status = ArticleStatus.DRAFT
        article.submitted_by_id = None
    article.updated_at = now
    _changed(session, article, "kb.article_saved", editor_id, index=False)
    return version


def rollback(session: Session, article: Article, number: int, editor_id: int | None,
             now: dt.datetime | None = None) -> ArticleVersion:
    """Make an old version's content the working copy again, as a new version.

    History is never rewritten: rolling back to version 2 of 5 writes version 6
    with version 2's content. It is published like any other edit.
    """
    old = get_version(session, article, number)
    version = save_article(session, article, input_of(old), editor_id,
                           note=f"rolled back to version {number}", now=now)
    if version is None:
        raise WorkflowError(f"the working copy already has version {number}'s content")
    return version


def transition(session: Session, article: Article, action: str, actor_id: int | None, *,
               review_required: bool = True, now: dt.datetime | None = None) -> Article:
    """Apply a workflow step: submit, reject, publish, unpublish, archive or restore."""
    now = now or utcnow()
    was_live = article.is_live
    if action == "publish":
        version = get_version(session, article, article.current_version)
        check_publish(PublishCheck(article.status, version.author_id, article.submitted_by_id,
                                   actor_id, review_required))
        article.status = ArticleStatus.PUBLISHED
        article.published_version = article.current_version
        article.reviewer_id = actor_id
        article.reviewed_at = now
        article.published_at = now
    elif action == "unpublish":
        if not article.is_live:
            raise WorkflowError("the article is not published")
        article.status = next_status(action, article.status)
        article.published_version = None
    else:
        article.status = next_status(action, article.status)
        if action == "submit":
            article.submitted_by_id = actor_id
        elif action in ("reject", "restore"):
            article.submitted_by_id = None
        if action in ("archive", "restore"):
            article.published_version = None if action == "restore" else article.published_version
    article.updated_at = now
    event = {"publish": "kb.article_published", "unpublish": "kb.article_unpublished",
             "archive": "kb.article_unpublished"}.get(action, "kb.article_saved")
    _changed(session, article, event, actor_id, index=was_live or article.is_live)
    return article


def mark_reviewed(session: Session, article: Article, reviewer_id: int,
                  now: dt.datetime | None = None) -> Article:
    """Record that a live article was checked and is still correct (clears "stale")."""
    if not article.is_live:
        raise WorkflowError("only a published article can be marked as reviewed")
    article.reviewed_at = now or utcnow()
    article.reviewer_id = reviewer_id
    session.flush()
    return article


def link_translation(session: Session, article: Article, other: Article) -> None:
    """Make two articles translations of each other (one group per set of translations)."""
    if article.id == other.id:
        raise ArticleValidationError("an article is not its own translation")
    group = other.translation_group or article.translation_group or other.id
    for member in (article, other):
        if member.translation_group != group:
            member.translation_group = group
            member.revision += 1
            session.flush()
            record_event(session, "kb.article_saved",
                         {"article_id": member.id, "status": member.status,
                          "version": member.current_version,
                          "published_version": member.published_version, "by": None},
                         [KB_ROOM])
    session.flush()


def translations_of(session: Session, article: Article) -> list[Article]:
    """Return the other articles of an article's translation group."""
    if article.translation_group is None:
        return []
    return list(session.scalars(select(Article).where(
        Article.translation_group == article.translation_group, Article.id != article.id)
        .order_by(Article.language)))


def propose_from_ticket(session: Session, ticket: Any, agent_id: int, title: str, body: str,
                        now: dt.datetime | None = None) -> Article:
    """Turn an agent's answer on a ticket into a draft article for the editors.

    The language is the customer's (or guessed from the answer); the draft is
    internal until an editor decides otherwise and publishes it.
    """
    from contactcenter.knowledge.text import detect_language

    language = (ticket.customer.language or "").lower()[:2]
    if language not in LANGUAGES:
        language = detect_language(body)
    content = clean_input({"title": title or ticket.subject or f"Ticket {ticket.number}",
                           "body": body, "language": language, "visibility": "internal",
                           "tags": ["proposed"]})
    return create_article(session, content, agent_id,
                          note=f"proposed from ticket #{ticket.number}", now=now)


def diff_versions(session: Session, article: Article, a: int, b: int) -> list[dict[str, Any]]:
    """Return what changed between versions ``a`` and ``b``, field by field.

    Each entry is ``{"field", "old", "new"}`` for short fields and
    ``{"field", "lines": [{"op": " "|"-"|"+"|"@", "text"}]}`` for the body (a
    unified diff with three lines of context).
    """
    old, new = get_version(session, article, a), get_version(session, article, b)
    changes: list[dict[str, Any]] = []
    for name in CONTENT_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name == "body":
            lines = []
            for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                             f"v{a}", f"v{b}", lineterm="", n=3):
                if line.startswith(("---", "+++")):
                    continue
                op = "@" if line.startswith("@@") else line[:1]
                lines.append({"op": op, "text": line if op == "@" else line[1:]})
            changes.append({"field": name, "lines": lines})
        else:
            changes.append({"field": name, "old": before, "new": after})
    return changes


def list_articles(session: Session, *, status: str | None = None, query: str = "",
                  language: str | None = None, limit: int = 200, offset: int = 0
                  ) -> list[Article]:
    """Return articles for the editors' list (a plain title filter: drafts are not indexed)."""
    stmt = select(Article)
    if status:
        stmt = stmt.where(Article.status == status)
    if language:
        stmt = stmt.where(Article.language == language)
    if query:
        pattern = f"%{query[:100].replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Article.title.ilike(pattern), Article.external_id.ilike(pattern)))
    stmt = stmt.order_by(Article.updated_at.desc(), Article.id.desc())
    return list(session.scalars(stmt.limit(min(limit, 500)).offset(max(offset, 0))))


def list_stale(session: Session, days: int, now: dt.datetime | None = None,
               limit: int = 500) -> list[Article]:
    """Return live articles not reviewed, or not used in a reply, for ``days`` days."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    stmt = select(Article).where(
        Article.published_version.is_not(None), Article.status != ArticleStatus.ARCHIVED,
        or_(func.coalesce(Article.reviewed_at, Article.published_at) < cutoff,
            func.coalesce(Article.last_used_at, Article.published_at) < cutoff),
    ).order_by(Article.reviewed_at).limit(limit)
    return list(session.scalars(stmt))


def is_stale(article: Article, days: int, now: dt.datetime | None = None) -> bool:
    """Whether a live article is stale (see ``list_stale``)."""
    if not article.is_live:
        return False
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    reviewed = article.reviewed_at or article.published_at
    used = article.last_used_at or article.published_at
    return bool((reviewed and reviewed < cutoff) or (used and used < cutoff))
