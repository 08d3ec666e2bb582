"""The knowledge commands: import articles, kb search, kb suggest, kb reindex and kb stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from contactcenter.cli import main
from contactcenter.knowledge.demo import ARTICLES_FILE
from contactcenter.knowledge.index import drop_index


def test_import_search_suggest_and_reindex(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    runner = CliRunner(env={"CONTACTCENTER_DATA_DIR": str(data_dir),
                            "CONTACTCENTER_SECRET_KEY": "x" * 32,
                            "CONTACTCENTER_DATABASE_URL": None,
                            "CONTACTCENTER_REDIS_URL": None})

    def run(*args: str) -> Any:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    try:
        imported = json.loads(run("import", "articles", str(ARTICLES_FILE), "--quiet")
                              .stdout.strip().splitlines()[-1])
        assert imported["created"] == 30 and imported["errors"] == 0
        again = json.loads(run("import", "articles", str(ARTICLES_FILE), "--quiet")
                           .stdout.strip().splitlines()[-1])
        assert again["created"] == 0 and again["unchanged"] == 30
        found = json.loads(run("kb", "search", "возврат денег", "--json").stdout)
        first = found["results"][0]
        assert set(first) == {"id", "external_id", "title", "score"}
        assert first["external_id"] == "refund-ru"
        scores = [r["score"] for r in found["results"]]
        assert scores == sorted(scores, reverse=True)
        limited = json.loads(run("kb", "search", "router", "--lang", "en", "--limit", "1",
                                 "--json").stdout)
        assert [r["external_id"] for r in limited["results"]] == ["router-en"]
        suggested = json.loads(run("kb", "suggest", "--text", "I forgot my password",
                                   "--json").stdout)
        assert suggested["results"][0]["external_id"] == "password-en"
        rebuilt = json.loads(run("kb", "reindex", "--quiet").stdout)
        assert rebuilt == {"indexed": 30}
        assert run("kb", "stale").stdout == ""
    finally:
        drop_index(data_dir / "search" / "kb")
