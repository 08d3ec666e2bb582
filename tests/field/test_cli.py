"""``contactcenter field ...`` through click's CliRunner on a SQLite file in a data dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from contactcenter.accounts.service import create_user
from contactcenter.db import Database
from contactcenter.field.cli import cli

SECRET = "test-secret-key-not-for-production"


def test_technician_suggest_sweep_and_report_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner(env={"CONTACTCENTER_DATA_DIR": str(data),
                            "CONTACTCENTER_SECRET_KEY": SECRET,
                            "CONTACTCENTER_DATABASE_URL": None,
                            "CONTACTCENTER_REDIS_URL": None})

    def run(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return json.loads(result.output) if ok else result.output

    assert run("sweep") == {"warned": 0, "breached": 0}
    db = Database(f"sqlite:///{data / 'contactcenter.db'}")
    with db.session() as session:
        create_user(session, "tech@example.test", "Tess Tech", "pw-long-enough-1",
                    ["technician"])
        create_user(session, "agent@example.test", "Al Agent", "pw-long-enough-1", ["agent"])
        session.commit()
    db.dispose()
    assert run("technician", "tech@example.test", "--skills", "router,fiber",
               "--areas", "north")["saved"] is True
    assert "technician role" in run("technician", "agent@example.test", ok=False)
    assert "no visit" in run("suggest", "999", ok=False)
    assert run("report", "--days", "7")["visits"] == 0
