"""The Whoosh search index of live articles: analysis, writing, search and suggestions.

This is the only module that touches Whoosh (STYLE.md).

Analysis: one analyzer serves both languages. Tokens are lower-cased, ``ё`` is
folded to ``е``, English and Russian stop words are dropped, and each token is
stemmed by the Snowball stemmer of its own script (Cyrillic: Russian, otherwise
English), so a mixed-language ticket and either language's query work without
knowing the language first. Snowball alone does not join every Russian form
(«денег» and «денежных» stem to «денег» and «денежн»), so a Russian query stem
also matches the index's terms that share its stem minus the last two letters
(at least four), at a lower weight; a query word absent from the index is
matched to words one edit away (typo tolerance, only when cheap: on misses).

What is indexed: only live articles (published and not archived), with the
content of their published version. Drafts and in-review versions never reach
the index, so no search, snippet or suggestion can leak them. ``visibility`` is
a filter field: the portal always filters on ``public``.

Speed (target p95 <= 20 ms on 10,000 articles): no positions are stored
(``phrase=False``); analysis is one pass per token (``BilingualAnalyzer``)
with memoised stems; one searcher is kept open and replaced only when the
index generation changes; filter document sets and prefix/typo expansions
are cached per searcher; and ranking uses ``TermImpacts``, a cache of each
term's BM25 impacts read from Whoosh's posting lists, instead of Whoosh's
per-document matcher trees (``KnowledgeIndex.scorer = "whoosh"`` switches
back, for comparison). Searches are serialised by a lock: a Whoosh searcher
shares file handles.
"""

from __future__ import annotations

import heapq
import html
import math
import re
import threading
import time
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh import query as Q
from whoosh import scoring
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import ID, KEYWORD, NUMERIC, STORED, TEXT, Schema
from whoosh.lang import stemmer_for_language, stopwords_for_language

INDEX_NAME = "kb"
SNIPPET_SOURCE_CHARS = 1500
MAX_QUERY_TERMS = 24
REFRESH_SECONDS = 1.0

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem one lower-cased word with the Snowball stemmer of its script."""
    if _CYRILLIC.search(word):
        return _RU_STEM(word.replace("ё", "е"))
    return _EN_STEM(word)


_RU_STEM: Callable[[str], str] = stemmer_for_language("ru")
_EN_STEM: Callable[[str], str] = stemmer_for_language("en")
STOP_WORDS = frozenset(stopwords_for_language("en")) | frozenset(stopwords_for_language("ru")) \
    | frozenset({"hi", "hello", "thanks", "thank", "please", "здравствуйте", "добрый", "день",
                 "спасибо", "пожалуйста"})


class BilingualAnalyzer(Tokenizer):  # type: ignore[misc]
    """Split, lower-case, drop stop words and stem by script, in one pass.

    The same steps as a ``RegexTokenizer | LowercaseFilter | StopFilter |
    StemFilter`` chain, without the three generator layers per token, which
    were most of the index build's time. ``analyse`` below is the same
    function for query text.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BilingualAnalyzer)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, tokenize: bool = True, mode: str = "",
                 **kwargs: Any) -> Iterator[Any]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = t.text = value
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        pos = start_pos
        for match in _WORD.finditer(value):
            word = match.group().lower()
            if len(word) < 2 or word in STOP_WORDS:
                if removestops:
                    continue
                t.stopped = True
            else:
                t.stopped = False
            t.text = stem(word)
            t.boost = 1.0
            if keeporiginal:
                t.original = word
            if positions:
                t.pos = pos
                pos += 1
            if chars:
                t.startchar = start_char + match.start()
                t.endchar = start_char + match.end()
            yield t


def make_analyzer() -> Any:
    """Return the analyzer of titles and bodies in both languages."""
    return BilingualAnalyzer()


def make_schema() -> Schema:
    """Return the schema of the article index."""
    analyzer = make_analyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        external_id=STORED(),
        title=TEXT(analyzer=analyzer, phrase=False, stored=True, field_boost=3.0),
        body=TEXT(analyzer=analyzer, phrase=False),
        snippet=STORED(),
        language=ID(stored=True),
        category=ID(stored=True),
        visibility=ID(stored=True),
        tags=KEYWORD(lowercase=True, commas=True, scorable=False),
        products=KEYWORD(lowercase=True, commas=True, scorable=False),
        group=STORED(),
        boost=STORED(),
        revision=NUMERIC(stored=True),
    )


def analyse(text: str) -> list[str]:
    """Return the stems of a text's words as the index sees them (stop words dropped)."""
    out = []
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if len(word) < 2 or word in STOP_WORDS:
            continue
        out.append(stem(word))
    return out


@dataclass(frozen=True)
class IndexDoc:
    """What the index holds about one live article."""

    id: int
    title: str
    body: str
    language: str
    visibility: str
    category: str = ""
    tags: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    external_id: str | None = None
    group: int | None = None
    boost: float = 1.0
    revision: int = 0


@dataclass
class SearchHit:
    """One found article: its id, title, score and a highlighted snippet (escaped HTML)."""

    id: int
    title: str
    score: float
    language: str
    visibility: str
    category: str
    external_id: str | None = None
    snippet: str = ""
    group: int | None = None
    boost: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """Search filters; ``visibility`` None means internal and public (agents)."""

    language: str | None = None
    category: str | None = None
    product: str | None = None
    tag: str | None = None
    visibility: str | None = None

    def terms(self) -> list[Any]:
        terms = []
        for name in ("language", "category", "visibility"):
            value = getattr(self, name)
            if value:
                terms.append(Q.Term(name, value))
        if self.product:
            terms.append(Q.Term("products", self.product.lower()))
        if self.tag:
            terms.append(Q.Term("tags", self.tag.lower()))
        return terms


def _doc_fields(doc: IndexDoc) -> dict[str, Any]:
    return {
        "id": str(doc.id), "external_id": doc.external_id, "title": doc.title,
        "body": doc.body, "snippet": doc.body[:SNIPPET_SOURCE_CHARS], "language": doc.language,
        "category": doc.category.lower(), "visibility": doc.visibility,
        "tags": ",".join(doc.tags), "products": ",".join(doc.products),
        "group": doc.group, "boost": float(doc.boost), "revision": doc.revision,
    }


K1 = 1.2
FIELD_B = {"title": 0.4, "body": 0.6}
MAX_CACHED_POSTINGS = 4_000_000
Clause = list[tuple[str, str, float]]


class TermImpacts:
    """Per-searcher caches for ranking: document lengths, deletions and term impacts.

    Whoosh's matcher trees score a disjunction document by document in Python,
    with several method calls per posting per clause. Here each term's posting
    list is read once per searcher and turned into its BM25 impacts (one float
    per posting, computed with the same formula as Whoosh's BM25F), cached in
    an LRU bounded by the total number of postings. A query is then a sum of
    cached arrays into a dict: the cost is one addition per posting, and the
    common words of a language are paid for once, not on every query.
    """

    def __init__(self, searcher: Any) -> None:
        self.reader = searcher.reader()
        self.total = int(self.reader.doc_count_all())
        self.live = max(1, int(self.reader.doc_count()))
        self.deleted: set[int] = set()
        if self.reader.has_deletions():
            self.deleted = set(range(self.total)) - set(self.reader.all_doc_ids())
        self._lengths: dict[str, list[int]] = {}
        self._avg: dict[str, float] = {}
        self._terms: OrderedDict[tuple[str, str], tuple[array[int], array[float]]] = \
            OrderedDict()
        self._size = 0

    def _field_lengths(self, field: str) -> list[int]:
        lengths = self._lengths.get(field)
        if lengths is None:
            reader = self.reader
            lengths = [reader.doc_field_length(d, field) for d in range(self.total)]
            self._lengths[field] = lengths
            self._avg[field] = max(1.0, reader.field_length(field) / self.live)
        return lengths

    def impacts(self, field: str, term: str) -> tuple[array[int], array[float]]:
        """Return (document numbers, BM25 impacts) of a term in a field (cached)."""
        key = (field, term)
        cached = self._terms.get(key)
        if cached is not None:
            self._terms.move_to_end(key)
            return cached
        ids: array[int] = array("i")
        scores: array[float] = array("f")
        df = self.reader.doc_frequency(field, term)
        if df:
            lengths = self._field_lengths(field)
            avg = self._avg[field]
            b = FIELD_B.get(field, 0.75)
            idf = math.log(1.0 + (self.live - df + 0.5) / (df + 0.5))
            deleted = self.deleted
            m = self.reader.postings(field, term)
            while m.is_active():
                docnum = m.id()
                if docnum not in deleted:
                    tf = m.weight()
                    norm = K1 * (1.0 - b + b * lengths[docnum] / avg)
                    ids.append(docnum)
                    scores.append(idf * tf * (K1 + 1.0) / (tf + norm))
                m.next()
        self._terms[key] = (ids, scores)
        self._size += len(ids) + 1
        while self._size > MAX_CACHED_POSTINGS and self._terms:
            _key, (old_ids, _old) = self._terms.popitem(last=False)
            self._size -= len(old_ids) + 1
        return ids, scores

    def rank(self, clauses: list[Clause], allowed: set[int] | None, limit: int
             ) -> list[tuple[int, float]]:
        """Return the best (docnum, score) pairs of a disjunction of clauses.

        A clause is one query word with its alternatives (the same stem in the
        title and the body, other forms, typo corrections), each with a weight.
        Documents matching more of the query's words get a coordination bonus:
        the summed score times ``0.5 + 0.5 * matched / clauses``.
        """
        acc: dict[int, float] = {}
        clause_docs: list[set[int]] = []
        for clause in clauses:
            docs: set[int] = set()
            for fieldname, term, weight in clause:
                ids, scores = self.impacts(fieldname, term)
                if not ids:
                    continue
                get = acc.get
                for docnum, score in zip(ids, scores, strict=True):
                    acc[docnum] = get(docnum, 0.0) + score * weight
                docs.update(ids)
            clause_docs.append(docs)
        if allowed is not None:
            acc = {d: v for d, v in acc.items() if d in allowed}
        if not acc:
            return []
        top = heapq.nlargest(max(limit * 5, 50), acc.items(), key=lambda item: item[1])
        if len(clauses) > 1:
            n = len(clauses)
            top = [(d, v * (0.5 + 0.5 * sum(1 for c in clause_docs if d in c) / n))
                   for d, v in top]
            top.sort(key=lambda item: -item[1])
        return top[:limit]


class KnowledgeIndex:
    """One on-disk Whoosh index with a shared, refreshed searcher and small caches."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ix: Any = None
        self._searcher: Any = None
        self._checked = 0.0
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._filters: dict[Filters, Any] = {}
        self._impacts: TermImpacts | None = None
        self.scorer = "impact"  # or "whoosh": Whoosh's own matchers (for comparison)
        self._expansions: OrderedDict[tuple[str, str, bool], tuple[str, ...]] = OrderedDict()

    # --- opening and writing ---------------------------------------------------------

    def open(self) -> Any:
        """Open the index, creating an empty one when the folder has none."""
        with self._lock:
            if self._ix is None:
                self.path.mkdir(parents=True, exist_ok=True)
                if whoosh_index.exists_in(str(self.path), INDEX_NAME):
                    self._ix = whoosh_index.open_dir(str(self.path), indexname=INDEX_NAME)
                else:
                    self._ix = whoosh_index.create_in(str(self.path), make_schema(),
                                                      indexname=INDEX_NAME)
            return self._ix

    def exists(self) -> bool:
        """Whether the folder holds an index (nothing was ever indexed otherwise)."""
        return self._ix is not None or whoosh_index.exists_in(str(self.path), INDEX_NAME)

    def _writer(self, **kwargs: Any) -> Any:
        # Another process's writer (a worker) holds the lock for at most a commit.
        return self.open().writer(timeout=30.0, delay=0.05, **kwargs)

    def update(self, docs: Iterable[IndexDoc] = (), delete_ids: Iterable[int] = ()) -> None:
        """Add or replace some articles and delete others, in one commit."""
        with self._write_lock:
            writer = self._writer()
            try:
                for article_id in delete_ids:
                    writer.delete_by_term("id", str(article_id))
                for doc in docs:
                    writer.update_document(**_doc_fields(doc))
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
        self.invalidate()

    def rebuild(self, docs: Iterable[IndexDoc], on_doc: Callable[[], None] | None = None) -> int:
        """Replace the whole index with ``docs`` (one segment); return how many were written."""
        count = 0
        with self._write_lock:
            self.open()
            writer = self._writer(limitmb=256)
            try:
                # A fresh segment list: everything indexed before goes with this commit.
                for doc in docs:
                    writer.add_document(**_doc_fields(doc))
                    count += 1
                    if on_doc is not None:
                        on_doc()
            except BaseException:
                writer.cancel()
                raise
            from whoosh.writing import CLEAR

            writer.commit(mergetype=CLEAR)
        self.invalidate()
        return count

    def invalidate(self) -> None:
        """Make the next search see the latest commit (this process's writes)."""
        with self._lock:
            self._checked = 0.0

    def stamps(self) -> dict[int, int]:
        """Return {article id: indexed revision} of every indexed article."""
        with self._lock:
            searcher = self._current()
            return {int(f["id"]): int(f.get("revision") or 0)
                    for f in searcher.all_stored_fields()}

    def doc_count(self) -> int:
        with self._lock:
            return int(self._current().doc_count())

    # --- searching -------------------------------------------------------------------

    def _current(self) -> Any:
        now = time.monotonic()
        if self._searcher is None:
            self._searcher = self.open().searcher(weighting=scoring.BM25F(B=0.6, K1=1.2))
            self._checked = now
            self._impacts = None
        elif now - self._checked >= REFRESH_SECONDS or self._checked == 0.0:
            self._checked = now
            if not self._searcher.up_to_date():
                # A new searcher, not ``refresh()``: a refreshed searcher reuses the
                # reader of a segment whose deletions changed and still finds them.
                old = self._searcher
                self._searcher = self.open().searcher(weighting=scoring.BM25F(B=0.6, K1=1.2))
                old.close()
                self._filters.clear()
                self._expansions.clear()
                self._impacts = None
        return self._searcher

    def _filter_docs(self, searcher: Any, filters: Filters) -> Any:
        terms = filters.terms()
        if not terms:
            return None
        docs = self._filters.get(filters)
        if docs is None:
            docs = set(searcher.docs_for_query(Q.And(terms) if len(terms) > 1 else terms[0]))
            if len(self._filters) > 256:
                self._filters.clear()
            self._filters[filters] = docs
        return docs

    def _expand(self, searcher: Any, fieldname: str, term: str, morph: bool = True
                ) -> tuple[str, ...]:
        """Return index terms standing for a query stem besides itself (cached)."""
        key = (fieldname, term, morph)
        cached = self._expansions.get(key)
        if cached is not None:
            return cached
        reader = searcher.reader()
        found: list[str] = []
        if morph and _CYRILLIC.search(term) and len(term) >= 5:
            prefix = term[:max(4, len(term) - 2)]
            for other in reader.expand_prefix(fieldname, prefix):
                text = other.decode("utf-8") if isinstance(other, bytes) else other
                if text != term:
                    found.append(text)
                if len(found) >= 6:
                    break
        if not found and len(term) >= 4 and reader.doc_frequency(fieldname, term) == 0:
            for other in reader.terms_within(fieldname, term, 1, prefix=1):
                found.append(other.decode("utf-8") if isinstance(other, bytes) else other)
                if len(found) >= 4:
                    break
        result = tuple(found)
        self._expansions[key] = result
        if len(self._expansions) > 20_000:
            self._expansions.popitem(last=False)
        return result

    def _clauses(self, searcher: Any, stems: list[str], title_weight: float,
                 morph: bool) -> list[Clause]:
        clauses = []
        for term in stems:
            clause = [("title", term, title_weight), ("body", term, 1.0)]
            for other in self._expand(searcher, "body", term, morph):
                clause.append(("body", other, 0.5))
                clause.append(("title", other, 0.5 * title_weight))
            clauses.append(clause)
        return clauses

    def _run(self, searcher: Any, stems: list[str], title_weight: float, morph: bool,
             docs: set[int] | None, limit: int) -> list[tuple[int, float]]:
        """Rank with the impact scorer, or Whoosh's matchers when ``scorer`` says so."""
        if self.scorer == "whoosh":
            # The schema already weighs the title 3x (field_boost).
            query = self._build_query(searcher, stems, title_weight / 3.0, morph)
            results = searcher.search(query, limit=limit, filter=docs, terms=False)
            return [(r.docnum, r.score) for r in results]
        if self._impacts is None:
            self._impacts = TermImpacts(searcher)
        return self._impacts.rank(self._clauses(searcher, stems, title_weight, morph), docs,
                                  limit)

    def _build_query(self, searcher: Any, stems: list[str], title_weight: float = 1.0,
                     morph: bool = True) -> Any:
        clauses = []
        for term in stems:
            parts = [Q.Term("title", term, boost=title_weight), Q.Term("body", term)]
            for other in self._expand(searcher, "body", term, morph):
                parts.append(Q.Term("body", other, boost=0.5))
                parts.append(Q.Term("title", other, boost=0.5 * title_weight))
            clauses.append(Q.Or(parts))
        if len(clauses) == 1:
            return clauses[0]
        return Q.Or(clauses)

    def search(self, text: str, filters: Filters | None = None, limit: int = 10,
               snippets: bool = True) -> list[SearchHit]:
        """Return the best live articles for a query, best first."""
        stems = list(dict.fromkeys(analyse(text)))[:MAX_QUERY_TERMS]
        if not stems or not self.exists():
            return []
        with self._lock:
            searcher = self._current()
            docs = self._filter_docs(searcher, filters or Filters())
            if docs is not None and not docs:
                return []
            ranked = self._run(searcher, stems, 3.0, True, docs, limit)
            hits = [self._hit(searcher, docnum, score) for docnum, score in ranked]
        if snippets:
            wanted = set(stems)
            for hit in hits:
                hit.snippet = make_snippet(hit.extra.pop("text", ""), wanted)
        else:
            for hit in hits:
                hit.extra.pop("text", None)
        return hits

    def suggest(self, text: str, filters: Filters | None = None, limit: int = 5,
                prefer_language: str | None = None, use_boost: bool = True) -> list[SearchHit]:
        """Return articles answering a customer's text (a ticket, a chat, a form), best first.

        The text's most distinctive words (by inverse document frequency) make
        the query. Then, re-ranked: the preferred language's articles are worth
        double, the first-contact-resolution boost stored with each article
        multiplies its score (bounded, see ``service.fcr_boost``), and of a
        group of translations only the best-placed one is kept.
        """
        counts = Counter(analyse(text))
        if not counts or not self.exists():
            return []
        with self._lock:
            searcher = self._current()
            total = max(1, searcher.doc_count())
            scored = []
            for term, tf in counts.items():
                df = searcher.doc_frequency("body", term) + searcher.doc_frequency("title", term)
                if df == 0 and not self._expand(searcher, "body", term, False):
                    continue
                idf = 1.0 + max(0.0, math.log(total / (1 + df)))
                scored.append((min(tf, 3) * idf, term))
            scored.sort(reverse=True)
            # A ticket's ten most distinctive words carry its topic; more words cost
            # time (every posting list is scored in Python) and add little.
            stems = [term for _, term in scored[:10]]
            if not stems:
                return []
            docs = self._filter_docs(searcher, filters or Filters())
            if docs is not None and not docs:
                return []
            ranked = self._run(searcher, stems, 1.5, False, docs, max(limit * 4, 20))
            hits = [self._hit(searcher, docnum, score) for docnum, score in ranked]
        for hit in hits:
            hit.extra.pop("text", None)
            if use_boost:
                hit.score *= hit.boost
            if prefer_language and hit.language == prefer_language:
                hit.score *= 2.0
        hits.sort(key=lambda h: -h.score)
        seen_groups: set[int] = set()
        out = []
        for hit in hits:
            if hit.group is not None:
                if hit.group in seen_groups:
                    continue
                seen_groups.add(hit.group)
            out.append(hit)
            if len(out) >= limit:
                break
        return out

    def _hit(self, searcher: Any, docnum: int, score: float) -> SearchHit:
        f = searcher.stored_fields(docnum)
        return SearchHit(id=int(f["id"]), title=f.get("title", ""), score=round(float(score), 4),
                         language=f.get("language", ""), visibility=f.get("visibility", ""),
                         category=f.get("category", ""), external_id=f.get("external_id"),
                         group=f.get("group"), boost=float(f.get("boost") or 1.0),
                         extra={"text": f.get("snippet", "")})

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
            self._ix = None


def make_snippet(text: str, stems: set[str], width: int = 28) -> str:
    """Return an escaped fragment of ``text`` around its densest run of query words.

    Matching words are wrapped in ``<mark>``; everything else is HTML-escaped,
    so the snippet is safe to insert as HTML.
    """
    if not text:
        return ""
    words = list(_WORD.finditer(text))
    if not words:
        return ""
    prefixes = tuple(s[:max(4, len(s) - 2)] for s in stems if _CYRILLIC.search(s) and len(s) >= 5)
    hits = []
    for i, m in enumerate(words):
        s = stem(m.group().lower())
        if s in stems or (prefixes and s.startswith(prefixes)):
            hits.append(i)
    best_start = 0
    if hits:
        best = -1
        for i in hits:
            count = sum(1 for j in hits if i <= j < i + width)
            if count > best:
                best, best_start = count, max(0, i - 3)
    end_word = min(len(words), best_start + width)
    start_char = words[best_start].start()
    end_char = words[end_word - 1].end()
    marked = set(hits)
    out = []
    pos = start_char
    for i in range(best_start, end_word):
        m = words[i]
        out.append(html.escape(text[pos:m.start()]))
        word = html.escape(m.group())
        out.append(f"<mark>{word}</mark>" if i in marked else word)
        pos = m.end()
    out.append(html.escape(text[pos:end_char]))
    prefix = "… " if start_char > 0 else ""
    suffix = " …" if end_char < len(text) else ""
    return prefix + "".join(out).strip() + suffix


_INDEXES: OrderedDict[Path, KnowledgeIndex] = OrderedDict()
_INDEXES_LOCK = threading.Lock()
MAX_OPEN_INDEXES = 8


def get_index(path: Path) -> KnowledgeIndex:
    """Return the process-wide index object of a folder (one searcher per folder).

    A process normally has one folder; tests and tools that open many keep only
    the most recently used few open (each holds file handles).
    """
    key = Path(path).resolve()
    evicted = []
    with _INDEXES_LOCK:
        ix = _INDEXES.get(key)
        if ix is None:
            ix = _INDEXES[key] = KnowledgeIndex(key)
            while len(_INDEXES) > MAX_OPEN_INDEXES:
                evicted.append(_INDEXES.popitem(last=False)[1])
        else:
            _INDEXES.move_to_end(key)
    for old in evicted:
        old.close()
    return ix


def drop_index(path: Path) -> None:
    """Forget (and close) the index object of a folder (tests, after a folder is removed)."""
    key = Path(path).resolve()
    with _INDEXES_LOCK:
        ix = _INDEXES.pop(key, None)
    if ix is not None:
        ix.close()
