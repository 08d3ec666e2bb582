"""Benchmark the knowledge index: build, incremental update, search and suggestion latency.

Generates a deterministic corpus of articles in English and Russian (10,000 by
default) from topic vocabularies and sentence patterns, adds the 30 demo
articles, and measures in one run:

- ``whoosh``: full build time, incremental update time (one article written and
  committed, then visible to the next search), search p50/p95 (with snippets,
  as the API answers; half of them with the public filter; also without
  snippets, and with the term-impact cache emptied before each query),
  suggestion p50/p95 for ticket-length texts;
- ``baseline``: SQLite FTS5 (``unicode61`` tokenizer, bm25 with the title
  weighted 3) over the same articles: build time, search and suggestion
  latency for the same queries (OR of the same words, with ``snippet()``);
- ``quality``: hit@1, hit@3 and MRR of the labelled set, on the 30 demo
  articles alone and with the whole generated corpus around them.

Usage: ``python benchmarks/kb.py --json [--n 10000] [--quick]``. Figures are
from a shared 2-core machine and noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import latency_figures
from contactcenter.knowledge.demo import demo_articles
from contactcenter.knowledge.evaluate import evaluate, load_cases
from contactcenter.knowledge.index import Filters, IndexDoc, KnowledgeIndex, analyse
from contactcenter.knowledge.text import plain_text

TOPICS_EN = [
    ("refund", "refunds money card return order cancelled bank days payment account"),
    ("password", "password login sign account locked link email reset code security"),
    ("delivery", "delivery parcel courier tracking address shipping order days express warehouse"),
    ("router", "router internet connection light cable modem restart signal outage port"),
    ("tariff", "tariff plan speed price month upgrade discount contract minutes data"),
    ("billing", "invoice bill charge payment balance debt receipt statement fee autopay"),
    ("wifi", "wifi wireless network speed room channel frequency extender mesh signal"),
    ("technician", "technician visit appointment slot engineer installation cable repair home"),
    ("warranty", "warranty repair device broken replacement receipt service centre defect"),
    ("mobile", "sim number roaming operator transfer calls sms balance coverage network"),
    ("tv", "television channels box remote picture subscription package sound screen"),
    ("account", "profile email phone details settings verification documents passport"),
]
TOPICS_RU = [
    ("возврат", "возврат деньги карта заказ отмена банк дней оплата счёт средства"),
    ("пароль", "пароль вход кабинет блокировка ссылка почта сброс код безопасность"),
    ("доставка", "доставка посылка курьер трек адрес отправка заказ дней экспресс склад"),
    ("роутер", "роутер интернет подключение индикатор кабель модем перезагрузка сигнал авария"),
    ("тариф", "тариф план скорость цена месяц скидка договор минуты трафик подключение"),
    ("счёт", "счёт квитанция списание оплата баланс задолженность чек выписка автоплатёж"),
    ("wifi", "wifi беспроводная сеть скорость комната канал частота усилитель покрытие"),
    ("мастер", "мастер выезд визит интервал инженер установка кабель ремонт квартира"),
    ("гарантия", "гарантия ремонт устройство поломка замена чек сервис дефект возврат"),
    ("мобильная", "сим номер роуминг оператор перенос звонки смс баланс покрытие связь"),
    ("телевидение", "телевидение каналы приставка пульт изображение подписка пакет звук"),
    ("профиль", "профиль почта телефон данные настройки проверка документы паспорт"),
]
FILLER_EN = ("please check the following before you contact us the customer can do this in "
             "the personal account our team will help within working days if the problem "
             "remains you may also ask an agent").split()
FILLER_RU = ("пожалуйста проверьте следующее прежде чем обращаться клиент может сделать это в "
             "личном кабинете наша команда поможет в течение рабочих дней если проблема "
             "останется вы можете также спросить оператора").split()


def _sentence(rng: random.Random, words: list[str], filler: list[str]) -> str:
    parts = [rng.choice(words) if rng.random() < 0.45 else rng.choice(filler)
             for _ in range(rng.randint(7, 14))]
    return " ".join(parts).capitalize() + "."


def generate(n: int, seed: int = 7) -> list[IndexDoc]:
    """Return n generated articles, half English and half Russian."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        ru = i % 2 == 1
        name, vocab = rng.choice(TOPICS_RU if ru else TOPICS_EN)
        words = vocab.split()
        filler = FILLER_RU if ru else FILLER_EN
        title = " ".join([name.capitalize(), *rng.sample(words, 3)])
        body = " ".join(_sentence(rng, words, filler) for _ in range(rng.randint(8, 16)))
        docs.append(IndexDoc(id=100_000 + i, title=title, body=body, language="ru" if ru else "en",
                             visibility="public" if rng.random() < 0.7 else "internal",
                             category=name, external_id=f"gen-{i}", revision=1))
    return docs


def demo_docs() -> tuple[list[IndexDoc], dict[str, int]]:
    """Return the demo articles as index documents and their ids by external id."""
    records = demo_articles()
    ids = {r["external_id"]: i + 1 for i, r in enumerate(records)}
    docs = [IndexDoc(id=ids[r["external_id"]], title=r["title"], body=plain_text(r["body"]),
                     language=r["language"], visibility=r["visibility"],
                     category=r["category"], external_id=r["external_id"],
                     group=ids.get(r.get("translation_of") or r["external_id"]), revision=1)
            for r in records]
    return docs, ids


def queries(rng: random.Random, count: int) -> list[str]:
    out = []
    for i in range(count):
        _name, vocab = rng.choice(TOPICS_RU if i % 2 else TOPICS_EN)
        out.append(" ".join(rng.sample(vocab.split(), rng.randint(1, 3))))
    return out


def tickets(rng: random.Random, count: int) -> list[str]:
    out = []
    for i in range(count):
        ru = i % 2 == 1
        _name, vocab = rng.choice(TOPICS_RU if ru else TOPICS_EN)
        filler = FILLER_RU if ru else FILLER_EN
        out.append(" ".join(_sentence(rng, vocab.split(), filler) for _ in range(4)))
    return out


def timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def fts_build(docs: list[IndexDoc]) -> tuple[sqlite3.Connection, float]:
    conn = sqlite3.connect(":memory:")
    start = time.perf_counter()
    conn.execute("CREATE VIRTUAL TABLE kb USING fts5(title, body, visibility UNINDEXED, "
                 "tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO kb(rowid, title, body, visibility) VALUES (?, ?, ?, ?)",
                     [(d.id, d.title, d.body, d.visibility) for d in docs])
    conn.commit()
    return conn, time.perf_counter() - start


def fts_query(words: list[str]) -> str:
    return " OR ".join('"' + w.replace('"', "") + '"' for w in words if w)


def fts_search(conn: sqlite3.Connection, text: str, public: bool, limit: int = 10) -> list[Any]:
    import re

    words = re.findall(r"\w+", text.lower())[:24]
    if not words:
        return []
    sql = ("SELECT rowid, title, snippet(kb, 1, '<mark>', '</mark>', '…', 20), "
           "bm25(kb, 3.0, 1.0) AS s FROM kb WHERE kb MATCH ?"
           + (" AND visibility = 'public'" if public else "") + " ORDER BY s LIMIT ?")
    return conn.execute(sql, (fts_query(words), limit)).fetchall()


def fts_suggest(conn: sqlite3.Connection, text: str) -> list[Any]:
    import re
    from collections import Counter

    counts = Counter(w for w in re.findall(r"\w+", text.lower()) if len(w) > 3)
    words = [w for w, _ in counts.most_common(16)]
    if not words:
        return []
    return conn.execute("SELECT rowid, title, bm25(kb, 3.0, 1.0) AS s FROM kb WHERE kb MATCH ? "
                        "ORDER BY s LIMIT 20", (fts_query(words),)).fetchall()


def run(n: int, n_queries: int) -> dict[str, Any]:
    rng = random.Random(11)
    generated = generate(n)
    demo, ids = demo_docs()
    docs = demo + generated
    qs = queries(rng, n_queries)
    ts = tickets(rng, max(50, n_queries // 2))
    cases = load_cases()
    with tempfile.TemporaryDirectory() as tmp:
        small = KnowledgeIndex(Path(tmp) / "demo")
        small.rebuild(demo)
        quality_demo = evaluate(small, cases, ids.get).to_json()
        small.close()

        ix = KnowledgeIndex(Path(tmp) / "kb")
        start = time.perf_counter()
        ix.rebuild(docs)
        build_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "kb").iterdir())
        for q in qs[:30]:  # warm the searcher and the stem cache
            ix.search(q)
        public = Filters(visibility="public")
        search_lat = timed(lambda i: ix.search(qs[i], public if i % 2 else None, limit=10),
                           list(range(len(qs))))
        plain_lat = timed(lambda i: ix.search(qs[i], public if i % 2 else None, limit=10,
                                              snippets=False), list(range(len(qs))))
        # Every term read from its posting list again (no impact cache): the cost of a
        # query whose words no earlier query used.
        def cold(i: int) -> None:
            if ix._impacts is not None:
                ix._impacts._terms.clear()
                ix._impacts._size = 0
            ix.search(qs[i], public if i % 2 else None, limit=10)

        cold_lat = timed(cold, list(range(min(len(qs), 200))))
        suggest_lat = timed(lambda t: ix.suggest(t, limit=5, prefer_language="ru"
                                                 if analyse(t[:20]) and
                                                 any("\u0400" <= c <= "\u04ff" for c in t[:20])
                                                 else "en"), ts)
        updates = []
        for i in range(20):
            doc = generated[i]
            changed = IndexDoc(**{**doc.__dict__, "title": doc.title + " updated",
                                  "revision": 2 + i})
            start = time.perf_counter()
            ix.update([changed])
            ix.search(changed.title)
            updates.append(time.perf_counter() - start)
        quality_full = evaluate(ix, cases, ids.get).to_json()
        ix.close()

    conn, fts_build_s = fts_build(docs)
    for q in qs[:30]:
        fts_search(conn, q, False)
    fts_search_lat = timed(lambda i: fts_search(conn, qs[i], bool(i % 2)), list(range(len(qs))))
    fts_suggest_lat = timed(lambda t: fts_suggest(conn, t), ts)
    conn.close()

    search = latency_figures(search_lat)
    base_search = latency_figures(fts_search_lat)
    suggest = latency_figures(suggest_lat)
    base_suggest = latency_figures(fts_suggest_lat)
    return {
        "benchmark": "kb",
        "n": len(docs), "queries": len(qs), "tickets": len(ts),
        "whoosh": {
            "build_s": round(build_s, 3), "build_docs_per_s": round(len(docs) / build_s, 1),
            "index_bytes": size,
            "incremental_update": latency_figures(updates),
            "search": search, "search_without_snippets": latency_figures(plain_lat),
            "search_uncached_terms": latency_figures(cold_lat),
            "suggest": suggest,
        },
        "baseline": {"engine": "sqlite fts5 (unicode61, bm25 title 3)",
                     "sqlite_version": sqlite3.sqlite_version,
                     "build_s": round(fts_build_s, 3), "search": base_search,
                     "suggest": base_suggest},
        "ratio_to_baseline": {
            "build": round(build_s / fts_build_s, 2),
            "search_p50": round(search["p50_ms"] / base_search["p50_ms"], 2),
            "search_p95": round(search["p95_ms"] / base_search["p95_ms"], 2),
            "suggest_p50": round(suggest["p50_ms"] / base_suggest["p50_ms"], 2),
            "suggest_p95": round(suggest["p95_ms"] / base_suggest["p95_ms"], 2),
        },
        "quality": {"demo_only": quality_demo, "with_generated_corpus": quality_full},
        "machine": _machine(),
    }


def _machine() -> dict[str, Any]:
    import os
    import platform

    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "note": "shared 2-core machine: other work ran at the same time; figures are noisy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=10_000, help="generated articles")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="1,000 articles, 100 queries")
    args = parser.parse_args()
    n, nq = (1000, 100) if args.quick else (args.n, args.queries)
    result = run(n, nq)
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
