"""Suggestion quality on the labelled set (70 customer texts in Russian and English)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contactcenter.knowledge.demo import seed_demo
from contactcenter.knowledge.evaluate import evaluate, load_cases
from contactcenter.knowledge.index import KnowledgeIndex
from contactcenter.knowledge.models import Article


def test_labelled_set_hit_rates(session: Any, settings: Any, kb_index: KnowledgeIndex) -> None:
    seed_demo(session, settings)
    ids = dict(session.execute(select(Article.external_id, Article.id)).all())
    cases = load_cases()
    assert len(cases) >= 60
    assert {c["lang"] for c in cases} == {"en", "ru"}
    result = evaluate(kb_index, cases, ids.get)
    print(result.to_json(), result.misses)
    assert result.hit_at_1 >= 0.8, result.misses
    assert result.hit_at_3 >= 0.9, result.misses
    assert result.mrr >= 0.85
