"""``contactcenter kb ...``: the knowledge package's commands (added to the main group).

``kb search`` and ``kb suggest`` print ``{"results": [{"id", "external_id",
"title", "score"}, ...]}`` best first (with ``--json``; a readable table
otherwise). ``kb reindex`` rebuilds the index from the database with a
progress bar; ``kb stale`` lists articles due for review.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

LANGS = click.Choice(["en", "ru"])


def _settings() -> Any:
    from contactcenter.cli import _settings as settings

    return settings()


def _print(hits: list[Any], as_json: bool) -> None:
    results = [{"id": h.id, "external_id": h.external_id, "title": h.title,
                "score": round(h.score, 4)} for h in hits]
    if as_json:
        click.echo(json.dumps({"results": results}, ensure_ascii=False))
        return
    for r in results:
        click.echo(f"{r['score']:8.3f}  #{r['id']:<6} {r['title']}")


@click.group("kb")
def cli() -> None:
    """The knowledge base: search, suggestions and the index."""


@cli.command("search")
@click.argument("query")
@click.option("--lang", type=LANGS, default=None, help="Only articles in this language.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--public", is_flag=True, help="Only public articles (what customers see).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def search_cmd(query: str, lang: str | None, limit: int, public: bool, as_json: bool) -> None:
    """Search live articles, best first."""
    from contactcenter.knowledge.index import Filters
    from contactcenter.knowledge.indexing import index_for

    filters = Filters(language=lang, visibility="public" if public else None)
    _print(index_for(_settings()).search(query[:500], filters, limit=limit, snippets=False),
           as_json)


@cli.command("suggest")
@click.option("--text", required=True, help="A customer's text (a ticket, a chat message).")
@click.option("--lang", type=LANGS, default=None, help="The customer's language (preferred).")
@click.option("--limit", type=click.IntRange(1, 20), default=None)
@click.option("--public", is_flag=True, help="Only public articles (deflection).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def suggest_cmd(text: str, lang: str | None, limit: int | None, public: bool,
                as_json: bool) -> None:
    """Suggest the articles that answer a text, the customer's language first."""
    from contactcenter.knowledge.suggestions import suggest_text

    _print(suggest_text(text, lang, settings=_settings(), public=public, limit=limit), as_json)


@cli.command("reindex")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def reindex_cmd(quiet: bool) -> None:
    """Rebuild the whole index from the database (one segment)."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from contactcenter.cli import _db
    from contactcenter.knowledge.indexing import count_live, index_for, rebuild_index

    settings = _settings()
    database = _db(settings)
    with database.session() as session:
        total = count_live(session)
        with tqdm(total=total, unit="article", desc="reindex", file=sys.stderr,
                  disable=quiet) as bar:
            count = rebuild_index(session, index_for(settings), on_doc=lambda: bar.update(1))
        session.commit()
    click.echo(json.dumps({"indexed": count}))


@cli.command("stale")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Default: CONTACTCENTER_KB_STALE_DAYS.")
def stale_cmd(days: int | None) -> None:
    """List live articles not reviewed or not used for a while (JSON lines)."""
    from contactcenter.cli import _db
    from contactcenter.knowledge.service import list_stale

    settings = _settings()
    with _db(settings).session() as session:
        for a in list_stale(session, days or settings.kb_stale_days):
            click.echo(json.dumps({"id": a.id, "external_id": a.external_id, "title": a.title,
                                   "reviewed_at": a.reviewed_at.isoformat() if a.reviewed_at
                                   else None,
                                   "last_used_at": a.last_used_at.isoformat()
                                   if a.last_used_at else None}, ensure_ascii=False))


@cli.command("gaps")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True)
def gaps_cmd(days: int) -> None:
    """Print frequent ticket topics that no article helped with (JSON)."""
    from contactcenter.cli import _db
    from contactcenter.knowledge.gaps import gaps_report

    settings = _settings()
    with _db(settings).session() as session:
        click.echo(json.dumps(gaps_report(session, settings, days=days), ensure_ascii=False))
