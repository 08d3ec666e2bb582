"""The ``contactcenter`` command through click's CliRunner, on a SQLite file in a data dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contactcenter.cli import main
from contactcenter.config import Settings
from contactcenter.db import Database
from tests.factories import bearer, make_contact

SECRET = "cli-test-secret-key-0123456789"
PASSWORD = "a long enough password"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(data_dir: Path) -> Any:
    """Run the CLI with the data dir and secret key set, and nothing else leaking in."""
    env: dict[str, str | None] = {
        "CONTACTCENTER_DATA_DIR": str(data_dir),
        "CONTACTCENTER_SECRET_KEY": SECRET,
        "CONTACTCENTER_DATABASE_URL": None,
        "CONTACTCENTER_REDIS_URL": None,
    }
    runner = CliRunner(env=env)

    def run(*args: str, input: str | None = None, ok: bool = True) -> Any:
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


@pytest.fixture
def settings_for(data_dir: Path) -> Settings:
    """The settings the CLI reads from its environment (for building an app on the same DB)."""
    return Settings(data_dir=data_dir, secret_key=SECRET, testing=True)


@pytest.fixture
def database(cli: Any, settings_for: Settings) -> Iterator[Database]:
    cli("db", "upgrade")
    db = Database(settings_for.effective_database_url)
    yield db
    db.dispose()


def test_db_upgrade_creates_the_sqlite_file(cli: Any, data_dir: Path) -> None:
    result = cli("db", "upgrade")
    assert "database at head" in result.stdout
    assert (data_dir / "contactcenter.db").is_file()
    # Running it again is harmless.
    assert cli("db", "upgrade").exit_code == 0


def test_user_create_with_password_option(cli: Any, database: Database) -> None:
    from contactcenter.accounts.models import User
    from contactcenter.accounts.service import authenticate

    result = cli("user", "create", "--email", "Agent@Example.test", "--name", "Agent A",
                 "--role", "agent", "--password", PASSWORD)
    assert "agent@example.test" in result.stdout and "(agent)" in result.stdout
    with database.session() as session:
        user = session.query(User).filter_by(email="agent@example.test").one()
        assert sorted(user.role_names) == ["agent"]
        assert user.financial_access is False
        assert authenticate(session, "agent@example.test", PASSWORD).id == user.id


def test_user_create_prompts_for_the_password_twice(cli: Any, database: Database) -> None:
    from contactcenter.accounts.service import authenticate

    result = cli("user", "create", "--email", "sup@example.test", "--role", "supervisor",
                 "--role", "agent", "--financial", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "Password" in result.output
    assert PASSWORD not in result.output           # hidden input is not echoed
    with database.session() as session:
        user = authenticate(session, "sup@example.test", PASSWORD)
        assert sorted(user.role_names) == ["agent", "supervisor"]
        assert user.financial_access is True


def test_user_create_mismatched_confirmation_asks_again(cli: Any, database: Database) -> None:
    result = cli("user", "create", "--email", "x@example.test", "--role", "agent",
                 input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert "do not match" in result.output.lower() or "must match" in result.output.lower()


@pytest.mark.parametrize("args,message", [
    (["--email", "not-an-email", "--password", PASSWORD], "not an email"),
    (["--email", "short@example.test", "--password", "short"], "at least"),
])
def test_user_create_errors(cli: Any, database: Database, args: list[str],
                            message: str) -> None:
    result = cli("user", "create", "--role", "agent", *args, ok=False)
    assert result.exit_code == 1
    assert message in result.output


def test_user_create_duplicate_is_an_error(cli: Any, database: Database) -> None:
    cli("user", "create", "--email", "dup@example.test", "--password", PASSWORD)
    result = cli("user", "create", "--email", "dup@example.test", "--password", PASSWORD, ok=False)
    assert result.exit_code == 1
    assert "exists" in result.output


def test_user_create_unknown_role_is_a_usage_error(cli: Any, database: Database) -> None:
    result = cli("user", "create", "--email", "r@example.test", "--role", "god",
                 "--password", PASSWORD, ok=False)
    assert result.exit_code == 2


def test_token_create_for_unknown_user_is_an_error(cli: Any, database: Database) -> None:
    result = cli("token", "create", "--email", "ghost@example.test", ok=False)
    assert result.exit_code == 1
    assert "no user" in result.output


def _ingest(database: Database, settings: Settings, **kwargs: Any) -> int:
    from contactcenter.tickets.intake import ingest_inbound

    with database.session() as session:
        result = ingest_inbound(session, make_contact(**kwargs), settings=settings)
    assert result.ticket_number is not None
    return result.ticket_number


def test_ticket_show_json_matches_the_api(cli: Any, database: Database,
                                          settings_for: Settings) -> None:
    from contactcenter.app import create_app

    cli("user", "create", "--email", "sup@example.test", "--role", "supervisor",
        "--password", PASSWORD)
    token = cli("token", "create", "--email", "sup@example.test").stdout.strip()
    assert token.startswith("cc_")
    number = _ingest(database, settings_for, subject="Router down — ünïcode",
                     text="It blinks red.\nSecond line.", sender="anna@example.com",
                     name="Anna Petrova")

    shown = cli("ticket", "show", str(number), "--json")
    from_cli = json.loads(shown.stdout)

    app = create_app(settings_for)
    try:
        response = app.test_client().get(f"/api/v1/tickets/{number}", headers=bearer(token))
    finally:
        app.extensions["contactcenter"].db.dispose()
    assert response.status_code == 200
    assert from_cli == response.get_json()
    assert from_cli["number"] == number
    assert from_cli["subject"] == "Router down — ünïcode"
    assert [m["text"] for m in from_cli["messages"]] == ["It blinks red.\nSecond line."]
    assert "ünïcode" in shown.stdout                # printed as UTF-8, not \\u escapes


def test_ticket_show_text(cli: Any, database: Database, settings_for: Settings) -> None:
    number = _ingest(database, settings_for, subject="Plain view", text="Body text")
    out = cli("ticket", "show", str(number)).stdout
    assert f"#{number} [new] Plain view" in out
    assert "Body text" in out


def test_ticket_show_unknown_number(cli: Any, database: Database) -> None:
    result = cli("ticket", "show", "99999", "--json", ok=False)
    assert result.exit_code != 0
    assert "no ticket #99999" in result.output
    assert result.stdout == ""


def test_ticket_show_non_numeric(cli: Any, database: Database) -> None:
    result = cli("ticket", "show", "abc", ok=False)
    assert result.exit_code == 2


def test_replay_processes_a_failed_raw_payload(cli: Any, database: Database,
                                               settings_for: Settings) -> None:
    from contactcenter.tickets.intake import store_raw
    from contactcenter.tickets.models import RawInbound, RawState

    good = json.dumps({"external_id": "crm-1", "from": {"kind": "email",
                                                         "address": "anna@example.com"},
                       "subject": "Replayed", "text": "hello"}).encode()
    bad = json.dumps({"external_id": "crm-2", "from": {"kind": "email",
                                                        "address": "no-at-sign"},
                      "text": "x"}).encode()
    with database.session() as session:
        raw_good, _ = store_raw(session, "api", "crm-1", good)
        raw_bad, _ = store_raw(session, "api", "crm-2", bad)
        # The first failed for a passing reason (a crash, a locked database).
        raw_good.state = RawState.FAILED
        raw_good.error = "OperationalError: database is locked"
        raw_bad.state = RawState.FAILED
        session.commit()
        good_id, bad_id = raw_good.id, raw_bad.id

    result = cli("replay")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    by_id = {line["raw_id"]: line for line in lines}
    assert set(by_id) == {good_id, bad_id}
    assert by_id[good_id]["status"] == "created"
    assert by_id[bad_id]["status"] == "failed"

    with database.session() as session:
        assert session.get(RawInbound, good_id).state == RawState.PROCESSED
        assert session.get(RawInbound, bad_id).state == RawState.FAILED
        assert session.get(RawInbound, bad_id).attempts == 1
        ticket_number = by_id[good_id]["ticket"]
    assert "Replayed" in cli("ticket", "show", str(ticket_number)).stdout

    # Nothing failed is left but the bad one; a second replay only tries that again.
    again = [json.loads(line) for line in cli("replay").stdout.splitlines() if line.strip()]
    assert [line["raw_id"] for line in again] == [bad_id]


def test_replay_by_channel(cli: Any, database: Database) -> None:
    assert cli("replay", "--channel", "email").stdout.strip() == ""


def test_bad_setting_is_a_clean_error(cli: Any, data_dir: Path) -> None:
    runner = CliRunner(env={"CONTACTCENTER_DATA_DIR": str(data_dir),
                            "CONTACTCENTER_PORT": "eighty"})
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "CONTACTCENTER_PORT must be an integer" in result.output
