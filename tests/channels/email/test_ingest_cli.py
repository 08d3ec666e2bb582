"""``contactcenter ingest email PATH...``: files and folders through the email channel.

One JSON line per message on stdout ({"path", "status", "ticket", "customer",
"reason"}), a summary on stderr; exit 0 even with quarantined messages, 2 on usage
errors, 1 when a file cannot be read or a message cannot be stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from contactcenter.cli import main
from contactcenter.db import Database
from contactcenter.tickets.models import Inbox, RawInbound, RawState
from tests.channels.email.smtp_support import (  # noqa: F401 (fixtures by name)
    SUPPORT,
    count,
    make_message,
    raw_rows,
    stand_in_parser_fixture,
    tickets,
)
from tests.factories import make_inbox

Ingest = Callable[..., Result]


@pytest.fixture
def database(tmp_path: Path) -> Any:
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    db.upgrade()
    with db.session() as session:
        for address in ("first@example.test", SUPPORT):
            inbox = make_inbox(session, channel="email")
            inbox.address = address
        session.commit()
    yield db
    db.dispose()


@pytest.fixture
def ingest(tmp_path: Path, database: Database) -> Ingest:
    env: dict[str, str | None] = {
        "CONTACTCENTER_DATA_DIR": str(tmp_path / "data"),
        "CONTACTCENTER_DATABASE_URL": database.url,
        "CONTACTCENTER_REDIS_URL": None,
        "CONTACTCENTER_SECRET_KEY": "ingest-test-secret-key-0123",
    }

    def run(*args: str, **extra_env: str) -> Result:
        return CliRunner(env={**env, **extra_env}).invoke(main, ["ingest", "email", *args])

    return run


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def inbox_id(database: Database, address: str) -> int | None:
    with database.session() as session:
        return session.scalar(select(Inbox.id).where(Inbox.address == address))


def write(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def test_real_message_file_becomes_a_ticket_with_its_subject_and_sender(
        ingest: Ingest, database: Database, tmp_path: Path) -> None:
    raw = make_message("Invoice question", "Peter Smith <peter@example.com>").replace(b"\r\n",
                                                                                       b"\n")
    result = ingest(str(write(tmp_path / "mail" / "00001.eml", raw)))
    assert result.exit_code == 0, result.output
    [line] = lines(result)
    assert line["status"] == "created" and line["reason"] is None
    [ticket] = tickets(database)
    assert (line["ticket"], line["customer"]) == (ticket.number, ticket.customer_id)
    assert ticket.subject == "Invoice question"
    assert [i.address for i in ticket.customer.identities] == ["peter@example.com"]


@pytest.mark.usefixtures("stand_in_parser")
def test_folder_is_ingested_recursively_in_name_order(ingest: Ingest, database: Database,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    write(folder / "001.eml", make_message("First", "anna@example.com"))
    write(folder / "002.box", make_message("Second", "anna@example.com"))
    write(folder / "sub" / "003.msg", make_message("Third", "bob@example.com"))
    write(folder / "1204680122.V801I7bdM45.host:2,S", make_message("Maildir", "cy@example.com"))
    write(folder / "manifest.json", b"{}")  # data files and hidden files are not mail
    write(folder / ".hidden" / "004.eml", make_message("Hidden"))
    write(folder / "notes.md", b"# notes")
    result = ingest(str(folder))
    assert result.exit_code == 0, result.output
    got = lines(result)
    assert [Path(line["path"]).name for line in got] == [
        "001.eml", "002.box", "1204680122.V801I7bdM45.host:2,S", "003.msg"]
    assert [line["status"] for line in got] == ["created", "appended", "created", "created"]
    assert got[0]["ticket"] == got[1]["ticket"] and got[0]["customer"] == got[1]["customer"]
    assert set(got[0]) == {"path", "status", "ticket", "customer", "reason"}
    assert "4 files" in result.stderr and "3 created" in result.stderr
    assert {r.inbox_id for r in raw_rows(database)} == {inbox_id(database, "first@example.test")}

    again = ingest(str(folder))  # a second run stores nothing new
    assert {line["status"] for line in lines(again)} == {"duplicate"}
    assert count(database, RawInbound) == 4


@pytest.mark.usefixtures("stand_in_parser")
def test_quarantined_and_failed_messages_are_reported_and_exit_zero(
        ingest: Ingest, database: Database, tmp_path: Path) -> None:
    write(tmp_path / "a.eml", make_message("please quarantine me"))
    write(tmp_path / "b.eml", make_message("boom goes the parser"))
    result = ingest(str(tmp_path / "a.eml"), str(tmp_path / "b.eml"))
    assert result.exit_code == 0, result.output
    quarantined, failed = lines(result)
    assert quarantined["status"] == "quarantined" and "MIME parts" in quarantined["reason"]
    assert failed["status"] == "failed" and "injected parser bug" in failed["reason"]
    assert [r.state for r in raw_rows(database)] == [RawState.QUARANTINED, RawState.FAILED]


@pytest.mark.usefixtures("stand_in_parser")
def test_a_failure_in_a_batch_redoes_the_batch_and_loses_or_doubles_nothing(
        ingest: Ingest, database: Database, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages share a transaction without SAVEPOINTs until one fails: then the batch so far
    # is rolled back and done again, message by message in SAVEPOINTs, as is the rest. The
    # first failure comes after its ticket was written (an intake hook), the second before
    # anything was (the parser).
    from contactcenter import hooks

    def explode(ctx: hooks.IntakeContext) -> None:
        if "explode" in ctx.contact.subject:
            raise RuntimeError("injected intake hook failure")

    monkeypatch.setattr(hooks, "INTAKE_HOOKS", [*hooks.INTAKE_HOOKS, explode])
    names = ["01-ok", "02-ok", "03-explode", "04-ok", "05-quarantine", "06-ok"]
    subjects = {"03-explode": "please explode", "05-quarantine": "please quarantine me"}
    for index, name in enumerate(names):
        write(tmp_path / "in" / f"{name}.eml",
              make_message(subjects.get(name, f"Question {name}"), f"sender{index}@example.com"))
    result = ingest(str(tmp_path / "in"))
    assert result.exit_code == 0, result.output
    got = lines(result)
    assert [Path(line["path"]).stem for line in got] == names
    assert [line["status"] for line in got] == [
        "created", "created", "failed", "created", "quarantined", "created"]
    assert "injected intake hook failure" in got[2]["reason"]
    assert len({line["ticket"] for line in got if line["status"] == "created"}) == 4
    assert count(database, RawInbound) == 6  # each stored once, none lost to the redo
    assert sorted(t.subject for t in tickets(database)) == [
        "Question 01-ok", "Question 02-ok", "Question 04-ok", "Question 06-ok"]


@pytest.mark.usefixtures("stand_in_parser")
def test_inbox_option_files_messages_in_that_inbox(ingest: Ingest, database: Database,
                                                   tmp_path: Path) -> None:
    path = write(tmp_path / "m.eml", make_message("For support"))
    result = ingest("--inbox", "Support+x@Example.test", str(path))
    assert result.exit_code == 0, result.output
    [raw] = raw_rows(database)
    [ticket] = tickets(database)
    assert raw.inbox_id == ticket.inbox_id == inbox_id(database, SUPPORT)
    unknown = ingest("--inbox", "nobody@example.test", str(path))
    assert unknown.exit_code == 2 and "no email inbox" in unknown.output


def test_missing_path_is_a_usage_error(ingest: Ingest, tmp_path: Path) -> None:
    result = ingest(str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert ingest().exit_code == 2


@pytest.mark.usefixtures("stand_in_parser")
def test_unreadable_file_is_reported_and_the_rest_still_ingested(
        ingest: Ingest, database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    write(folder / "1.eml", make_message("Readable"))
    (folder / "2.eml").symlink_to(tmp_path / "gone.eml")  # a dangling link
    result = ingest(str(folder))
    assert result.exit_code == 1
    assert [line["status"] for line in lines(result)] == ["created"]
    assert "2.eml: cannot read" in result.stderr


@pytest.mark.usefixtures("stand_in_parser")
def test_file_over_the_size_limit_is_ignored_unread(ingest: Ingest, database: Database,
                                                    tmp_path: Path) -> None:
    path = write(tmp_path / "big.eml", make_message("Big", body="x" * 5000))
    result = ingest(str(path), CONTACTCENTER_SMTP_MAX_MESSAGE_BYTES="1000")
    assert result.exit_code == 0, result.output
    [line] = lines(result)
    assert line["status"] == "ignored" and "over the 1000-byte limit" in line["reason"]
    assert count(database, RawInbound) == 0


@pytest.mark.usefixtures("stand_in_parser")
def test_message_that_cannot_be_stored_is_failed_and_exits_one(
        ingest: Ingest, database: Database, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    # The database refuses every write: in the batched fast path and on its own.
    monkeypatch.setattr("contactcenter.channels.email.receive.receive_email", unavailable)
    monkeypatch.setattr("contactcenter.channels.email.receive.receive_email_nested",
                        unavailable)
    result = ingest(str(write(tmp_path / "m.eml", make_message("Lost?"))))
    assert result.exit_code == 1
    [line] = lines(result)
    assert line["status"] == "failed" and "database is locked" in line["reason"]
