"""Knowledge articles suggested to a visitor while they type (deflection).

One small seam over the knowledge base: public articles only, and nothing at
all (not an error) when the knowledge package or its index is not there.
"""

from __future__ import annotations

import logging
from typing import Any

from contactcenter.config import Settings

log = logging.getLogger(__name__)

MIN_TEXT = 4


def suggest_articles(settings: Settings, text: str, language: str | None = None,
                     limit: int = 3) -> list[dict[str, Any]]:
    """Return up to ``limit`` public articles for a visitor's text: id, title and link."""
    text = (text or "")[:2000]
    if len(text.strip()) < MIN_TEXT:
        return []
    try:
        from contactcenter.knowledge.service import suggest_text
    except ImportError:
        return []
    try:
        hits = suggest_text(text, language, settings=settings, public=True, limit=limit)
    except Exception:  # a missing or locked index must not break the widget
        log.warning("knowledge suggestions failed", exc_info=True)
        return []
    base = settings.public_url.rstrip("/")
    return [{"id": h.id, "title": h.title, "url": f"{base}/help/articles/{h.id}"}
            for h in hits[:limit]]
