"""Articles, their versions, attachments, feedback, uses in tickets and cached suggestions.

An article row is the working copy (the newest version's content) plus the
workflow state; ``published_version`` names the version customers and agents
read, so editing a live article never changes what readers see until the new
version is published. Every save is an ``ArticleVersion`` (numbered per
article), which is what diffs and rollbacks work on.

``revision`` and ``indexed_revision`` keep the search index honest: every change
that matters to the index bumps ``revision``; the index job stores the revision
it wrote, and the repair sweep reindexes every article where the two differ.

Tags and products are short ``;``-separated lists: they are filtered on in the
search index (keyword fields), never in SQL.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow


class ArticleStatus(StrEnum):
    """Where an article's working copy is in the editorial workflow."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Visibility(StrEnum):
    """Who may read a published article."""

    INTERNAL = "internal"
    PUBLIC = "public"


class UseOutcome(StrEnum):
    """What became of a ticket after an agent used an article in it."""

    PENDING = "pending"
    RESOLVED = "resolved"
    FAILED = "failed"


LANGUAGES = ("en", "ru")


def split_list(value: str) -> list[str]:
    """Return the items of a ``;``-separated list (tags, products)."""
    return [item.strip() for item in value.split(";") if item.strip()]


def join_list(items: list[str] | tuple[str, ...]) -> str:
    """Join items into a ``;``-separated list, dropping blanks and repeats."""
    return ";".join(dict.fromkeys(i.strip().replace(";", ",") for i in items if i.strip()))


class Article(TimestampMixin, Base):
    """One knowledge article: the working copy, its workflow state and its usage figures."""

    __tablename__ = "kb_articles"
    __table_args__ = (
        Index("ix_kb_articles_live", "status", "visibility", "language"),
        Index("ix_kb_articles_index_state", "revision", "indexed_revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100), default="", index=True)
    tags: Mapped[str] = mapped_column(String(1000), default="")
    products: Mapped[str] = mapped_column(String(1000), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.INTERNAL)
    status: Mapped[str] = mapped_column(String(16), default=ArticleStatus.DRAFT)
    translation_group: Mapped[int | None] = mapped_column(index=True)
    current_version: Mapped[int] = mapped_column(default=0)
    published_version: Mapped[int | None]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[dt.datetime | None]
    reviewed_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revision: Mapped[int] = mapped_column(default=1)
    indexed_revision: Mapped[int] = mapped_column(default=0)
    uses: Mapped[int] = mapped_column(default=0)
    fcr_count: Mapped[int] = mapped_column(default=0)
    helpful_yes: Mapped[int] = mapped_column(default=0)
    helpful_no: Mapped[int] = mapped_column(default=0)
    views: Mapped[int] = mapped_column(default=0)
    deflections: Mapped[int] = mapped_column(default=0)

    @property
    def is_live(self) -> bool:
        """Whether readers see a published version of this article."""
        return self.published_version is not None and self.status != ArticleStatus.ARCHIVED

    @property
    def tag_list(self) -> list[str]:
        return split_list(self.tags)

    @property
    def product_list(self) -> list[str]:
        return split_list(self.products)


class ArticleVersion(Base):
    """One saved state of an article's content (every save is a version)."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "number",
                                       name="uq_kb_article_versions_article_id_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[str] = mapped_column(String(1000), default="")
    products: Mapped[str] = mapped_column(String(1000), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.INTERNAL)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ArticleAttachment(Base):
    """A file attached to an article, kept under the data folder."""

    __tablename__ = "kb_article_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"),
                                            index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ArticleFeedback(Base):
    """A "was this helpful?" answer from a customer or an agent, with an optional comment."""

    __tablename__ = "kb_article_feedback"
    __table_args__ = (Index("ix_kb_article_feedback_article", "article_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    helpful: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ArticleUse(Base):
    """An agent put an article (answer or link) into a reply on a ticket.

    ``outcome`` starts pending; the ticket being solved with no customer message
    after the use makes it ``resolved`` (first-contact resolution), a customer
    writing again makes it ``failed``.
    """

    __tablename__ = "kb_article_uses"
    __table_args__ = (
        Index("ix_kb_article_uses_ticket", "ticket_id", "outcome"),
        Index("ix_kb_article_uses_article", "article_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="answer")
    outcome: Mapped[str] = mapped_column(String(16), default=UseOutcome.PENDING)
    used_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]


class TicketSuggestion(Base):
    """The cached article suggestions of one ticket, computed by a job when a message arrives."""

    __tablename__ = "kb_ticket_suggestions"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           primary_key=True)
    message_id: Mapped[int | None]
    language: Mapped[str] = mapped_column(String(8), default="en")
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Deflection(Base):
    """A customer who read an article (portal, chat or form) and left without writing."""

    __tablename__ = "kb_deflections"
    __table_args__ = (Index("ix_kb_deflections_article", "article_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
