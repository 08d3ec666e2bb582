"""Files attached to articles: stored once under their digest, always sent as downloads.

The bytes go where ticket attachments go (``tickets.attachments.store_bytes``,
content-addressed under the data folder); the row keeps the sanitised name,
the declared type (for display only) and the digest.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.knowledge.errors import ArticleValidationError
from contactcenter.knowledge.models import Article, ArticleAttachment
from contactcenter.tickets.attachments import attachment_path, safe_filename, store_bytes

MAX_PER_ARTICLE = 50


def add_attachment(session: Session, data_dir: Path, article: Article, filename: str,
                   content_type: str, data: bytes, max_bytes: int) -> ArticleAttachment:
    """Store a file for an article and return its row (the caller commits)."""
    if not data:
        raise ArticleValidationError("the file is empty")
    if len(data) > max_bytes:
        raise ArticleValidationError(f"the file is larger than {max_bytes} bytes")
    count = len(list_attachments(session, article))
    if count >= MAX_PER_ARTICLE:
        raise ArticleValidationError(f"an article has at most {MAX_PER_ARTICLE} attachments")
    digest = store_bytes(data_dir, data)
    row = ArticleAttachment(article_id=article.id, filename=safe_filename(filename),
                            content_type=(content_type or "application/octet-stream")[:127],
                            size=len(data), storage_key=digest)
    session.add(row)
    session.flush()
    return row


def list_attachments(session: Session, article: Article) -> list[ArticleAttachment]:
    """Return an article's attachments, oldest first."""
    return list(session.scalars(select(ArticleAttachment).where(
        ArticleAttachment.article_id == article.id).order_by(ArticleAttachment.id)))


def file_of(data_dir: Path, attachment: ArticleAttachment) -> Path:
    """Return where an attachment's bytes are."""
    return attachment_path(data_dir, attachment.storage_key)
