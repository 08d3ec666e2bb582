"""Demo articles: fifteen topics of a telecom and web shop in English and Russian.

``seed_demo`` loads ``data/articles.json`` (also the labelled set's articles in
``tests/knowledge/data``), publishes them and links the translations. It is
idempotent on the articles' external ids, like the importer it goes through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from contactcenter.knowledge.importer import apply_article

ARTICLES_FILE = Path(__file__).resolve().parent / "data" / "articles.json"


def demo_articles() -> list[dict[str, Any]]:
    """Return the demo article records (translations after their originals)."""
    records: list[dict[str, Any]] = json.loads(ARTICLES_FILE.read_text(encoding="utf-8"))
    return records


def seed_demo(session: Session, settings: Any = None, index: bool = True) -> list[int]:
    """Create (or refresh) the demo articles, index them and return their ids.

    The caller commits; with ``index`` the articles are committed and indexed
    here (the index only ever holds committed state).
    """
    ids = [apply_article(session, dict(record))[1] for record in demo_articles()]
    session.flush()
    if index:
        from contactcenter.config import default_settings
        from contactcenter.knowledge.indexing import index_for, sync_articles

        session.commit()
        sync_articles(session, index_for(settings or default_settings()), ids)
        session.commit()
    return ids
