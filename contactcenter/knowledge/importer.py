"""Import knowledge articles from CSV or JSON (``contactcenter import articles FILE``).

Each record has ``external_id``, ``title``, ``body``, ``language``, ``category``,
``tags``, ``visibility`` and ``status`` (and optionally ``products`` and
``translation_of``, another record's external id). Records are matched on
``external_id``: importing the same file twice creates nothing new, and a
changed record becomes a new version of its article. An import is a move of
existing, already reviewed content, so ``status: published`` publishes without
the review step. Every article the import touched is indexed before it returns.

The file checks and the streaming JSON reader are the customers importer's;
article bodies are allowed to be longer than customer fields.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm  # type: ignore[import-untyped]

from contactcenter.config import Settings
from contactcenter.customers.importer import (
    ImportFileError,
    ImportResult,
    _check_file,
    _count_lines,
    _json_array,
    _StopReading,
    _text_lines,
)
from contactcenter.db import Database
from contactcenter.knowledge import service
from contactcenter.knowledge.errors import KnowledgeError
from contactcenter.knowledge.indexing import index_for, sync_articles
from contactcenter.knowledge.models import Article, ArticleStatus

COLUMNS = ("external_id", "title", "body", "language", "category", "tags", "products",
           "visibility", "status", "translation_of")
MAX_BODY_CHARS = 200_000
BATCH = 200


def import_articles_file(db: Database, path: Path, progress: bool = True,
                         settings: Settings | None = None) -> ImportResult:
    """Import an articles file, index what changed and return the counts and row errors."""
    from contactcenter.config import default_settings

    settings = settings or default_settings()
    fmt = _check_file(path)
    result = ImportResult(kind="articles")
    touched: list[int] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        items = _csv_rows(fh) if fmt == "csv" else _json_rows(fh, fmt)
        total = _count_lines(path) if fmt in ("csv", "jsonl") else None
        bar = tqdm(total=total, unit="article", desc="import articles", file=sys.stderr,
                   disable=not progress, leave=False)
        with db.session() as session, bar:
            try:
                for line, record in items:
                    bar.update(1)
                    if isinstance(record, str):
                        result.add_error(line, record)
                        continue
                    try:
                        with session.begin_nested():
                            outcome, article_id = apply_article(session, record)
                    except (KnowledgeError, ValueError) as exc:
                        result.add_error(line, str(exc))
                        continue
                    if outcome == "created":
                        result.created += 1
                    elif outcome == "updated":
                        result.updated += 1
                    else:
                        result.unchanged += 1
                    if outcome != "unchanged":
                        touched.append(article_id)
                    if len(touched) % BATCH == 0:
                        session.commit()
            except _StopReading as stop:
                result.add_error(stop.line, str(stop))
            session.commit()
            index = index_for(settings)
            for start in range(0, len(touched), 500):
                sync_articles(session, index, touched[start:start + 500])
            session.commit()
    return result


def apply_article(session: Session, record: dict[str, Any]) -> tuple[str, int]:
    """Create or update one article from an import record; return (outcome, article id)."""
    external_id = str(record.get("external_id") or "").strip()
    if not external_id or len(external_id) > 100:
        raise ValueError("external_id is required (at most 100 characters)")
    status = str(record.get("status") or "published").strip().lower()
    if status not in {s.value for s in ArticleStatus}:
        raise ValueError("status must be draft, in_review, published or archived")
    article = session.scalar(select(Article).where(Article.external_id == external_id))
    base = service.input_of(article) if article is not None else None
    content = service.clean_input({k: v for k, v in record.items()
                                   if k in COLUMNS and v is not None and v != ""}, base)
    outcome = "unchanged"
    if article is None:
        article = service.create_article(session, content, None, external_id=external_id,
                                         note="imported")
        outcome = "created"
    elif service.save_article(session, article, content, None, note="imported") is not None:
        outcome = "updated"
    other_id = str(record.get("translation_of") or "").strip()
    if other_id:
        other = session.scalar(select(Article).where(Article.external_id == other_id))
        if other is None:
            raise ValueError(f"translation_of names no imported article {other_id!r}")
        if article.translation_group is None or article.translation_group != \
                other.translation_group:
            service.link_translation(session, article, other)
            outcome = "updated" if outcome == "unchanged" else outcome
    if status != article.status or (status == "published" and not article.is_live):
        _move_to(session, article, status)
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome, article.id


def _move_to(session: Session, article: Article, status: str) -> None:
    if status == ArticleStatus.PUBLISHED:
        if article.status == ArticleStatus.ARCHIVED:
            service.transition(session, article, "restore", None)
        service.transition(session, article, "publish", None, review_required=False)
    elif status == ArticleStatus.ARCHIVED:
        service.transition(session, article, "archive", None)
    elif status == ArticleStatus.IN_REVIEW:
        if article.status == ArticleStatus.ARCHIVED:
            service.transition(session, article, "restore", None)
        if article.status == ArticleStatus.PUBLISHED:
            service.transition(session, article, "unpublish", None)
        service.transition(session, article, "submit", None)
    else:
        if article.status == ArticleStatus.ARCHIVED:
            service.transition(session, article, "restore", None)
        elif article.is_live:
            service.transition(session, article, "unpublish", None)
        elif article.status == ArticleStatus.IN_REVIEW:
            service.transition(session, article, "reject", None)
    article.submitted_by_id = None


def _clean(raw: dict[str, Any]) -> dict[str, Any] | str:
    record: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key or "").strip().lstrip("\ufeff").lower().replace(" ", "_")
        if name not in COLUMNS:
            continue
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                return f"field {name} must be a list of text"
        elif value is not None and not isinstance(value, str | int | float | bool):
            return f"field {name} must be text"
        elif value is not None and not isinstance(value, str):
            value = str(value)
        if isinstance(value, str) and len(value) > MAX_BODY_CHARS:
            return f"field {name} is longer than {MAX_BODY_CHARS} characters"
        record[name] = value
    return record


def _csv_rows(fh: Any) -> Iterator[tuple[int, dict[str, Any] | str]]:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_BODY_CHARS * 4))
    lines = _text_lines(fh)
    reader = csv.DictReader(lines)
    if not reader.fieldnames or "external_id" not in [
            f.strip().lstrip("\ufeff").lower() for f in reader.fieldnames]:
        raise ImportFileError("the CSV header must name at least external_id and title; "
                              f"known columns: {', '.join(COLUMNS)}")
    previous = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield previous + 1, f"unreadable CSV row: {exc}"
            previous = reader.line_num
            continue
        line, previous = previous + 1, reader.line_num
        if None in row:
            yield line, "has more fields than the header"
            continue
        yield line, _clean(row)


def _json_rows(fh: Any, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    if fmt == "jsonl":
        for number, line in enumerate(_text_lines(fh), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON: {exc.msg}"
                continue
            yield number, _clean(value) if isinstance(value, dict) else "expected an object"
        return
    for index, value in _json_array(fh):
        yield index, _clean(value) if isinstance(value, dict) else "expected an object"
