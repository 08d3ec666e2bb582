"""Measure suggestion quality on a labelled set: hit rate at 1 and 3, mean reciprocal rank.

A labelled case is a customer's text, its language and the external id of the
article that answers it. The benchmark and the tests both call ``evaluate``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contactcenter.knowledge.index import KnowledgeIndex

LABELLED_FILE = Path(__file__).resolve().parents[2] / "tests" / "knowledge" / "data" \
    / "labelled.jsonl"


@dataclass
class Evaluation:
    """Suggestion quality figures and the cases that missed the top 3."""

    cases: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    misses: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "hit_at_1": round(self.hit_at_1, 4),
                "hit_at_3": round(self.hit_at_3, 4), "mrr": round(self.mrr, 4)}


def load_cases(path: Path = LABELLED_FILE) -> list[dict[str, Any]]:
    """Read a labelled set (JSON lines of ``{"text", "lang", "answer"}``)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(index: KnowledgeIndex, cases: Iterable[dict[str, Any]],
             id_of: Callable[[str], int | None], limit: int = 10,
             public: bool = False) -> Evaluation:
    """Suggest for each case's text and score where its answer ranks."""
    from contactcenter.knowledge.index import Filters

    filters = Filters(visibility="public") if public else Filters()
    total = hits1 = hits3 = 0
    rr = 0.0
    misses = []
    for case in cases:
        total += 1
        wanted = id_of(case["answer"])
        ranked = [h.id for h in index.suggest(case["text"], filters, limit=limit,
                                              prefer_language=case.get("lang"))]
        rank = ranked.index(wanted) + 1 if wanted in ranked else None
        if rank is not None:
            rr += 1.0 / rank
            hits1 += rank == 1
            hits3 += rank <= 3
        if rank is None or rank > 3:
            misses.append({"text": case["text"], "answer": case["answer"], "rank": rank})
    total = max(total, 1)
    return Evaluation(total, hits1 / total, hits3 / total, rr / total, misses)
