"""The ``contactcenter`` command: serve, workers, migrations, import, users and look-ups."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from contactcenter.config import Settings, SettingsError, default_settings


def _settings(**overrides: Any) -> Settings:
    try:
        settings = default_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**changes) if changes else settings


def _db(settings: Settings, upgrade: bool = True) -> Any:
    from contactcenter.db import Database

    db = Database(settings.effective_database_url)
    if upgrade:
        db.upgrade()
    return db


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """An omnichannel contact center and service desk."""
    if os.environ.get("CONTACTCENTER_LOG_FORMAT", "text").strip().lower() == "json":
        # Structured lines with request and contact ids for every process of a deployment.
        from contactcenter.ops.logs import configure_logging

        configure_logging("json", logging.DEBUG if verbose else logging.INFO)
    else:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # aiosmtpd logs every SMTP command line (addresses included) at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)


@main.command()
@click.option("--demo", is_flag=True, help="Load the demo data set on first start.")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Web port (default 5000).")
@click.option("--smtp-port", type=int, default=None, help="Inbound SMTP port (default 2525).")
@click.option("--threads", type=int, default=64, show_default=True,
              help="Worker threads (each live socket holds one).")
def serve(demo: bool, host: str | None, port: int | None, smtp_port: int | None,
          threads: int) -> None:
    """Run everything in one process on the embedded default."""
    from contactcenter.server import run_server

    settings = _settings(host=host, port=port, smtp_port=smtp_port, demo=demo or None)
    db = _db(settings)
    if demo:
        from contactcenter.demo import load_demo

        created = load_demo(db, settings)
        if created:
            click.echo(created)
    click.echo(f"Contact center on http://{settings.host}:{settings.port}/ "
               f"(database {db.engine.url.render_as_string(hide_password=True)})")
    click.echo(f"Inbound SMTP on {settings.smtp_host}:{settings.smtp_port}")
    if demo:
        from contactcenter.demo import DEMO_PASSWORD, DEMO_USERS

        for email, role in DEMO_USERS:
            click.echo(f"  sign in as {email} / {DEMO_PASSWORD} ({role})")
    db.dispose()
    run_server(settings, threads=threads)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    settings = _settings()
    database = _db(settings, upgrade=False)
    database.upgrade(revision)
    click.echo(f"database at {revision}")


@main.group()
def user() -> None:
    """Users and their roles."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--role", "roles", multiple=True, default=["admin"], show_default=True,
              type=click.Choice(["agent", "supervisor", "knowledge_editor", "admin"]))
@click.option("--financial/--no-financial", default=False,
              help="Grant the right to see customers' financial data.")
@click.password_option(confirmation_prompt=True)
def user_create(email: str, name: str, roles: tuple[str, ...], financial: bool,
                password: str) -> None:
    """Create a user (the first admin, for example)."""
    from contactcenter.accounts.errors import AccountError
    from contactcenter.accounts.service import create_user
    from contactcenter.customers.errors import InvalidIdentityError

    database = _db(_settings())
    with database.session() as session:
        try:
            created = create_user(session, email, name, password, roles,
                                  financial_access=financial)
        except (AccountError, InvalidIdentityError) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"user {created.id} {created.email} ({', '.join(roles)})")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", show_default=True)
def token_create(email: str, name: str) -> None:
    """Issue an API token and print it once."""
    from sqlalchemy import select

    from contactcenter.accounts.models import User
    from contactcenter.accounts.service import issue_token

    database = _db(_settings())
    with database.session() as session:
        found = session.scalar(select(User).where(User.email == email.strip().lower()))
        if found is None:
            raise click.ClickException(f"no user {email}")
        value = issue_token(session, found, name)
        session.commit()
        click.echo(value)


@main.group()
def ticket() -> None:
    """Tickets."""


@ticket.command("show")
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def ticket_show(number: int, as_json: bool) -> None:
    """Show a ticket with its customer and messages."""
    from contactcenter.tickets.errors import TicketNotFoundError
    from contactcenter.tickets.serialize import serialize_ticket
    from contactcenter.tickets.service import get_ticket

    database = _db(_settings())
    with database.session() as session:
        try:
            found = get_ticket(session, number)
        except TicketNotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
        data = serialize_ticket(session, found)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"#{data['number']} [{data['status']}] {data['subject']}")
    click.echo(f"customer {data['customer']['id']}: {data['customer']['name']}")
    for message in data["messages"]:
        click.echo(f"--- {message['direction']} via {message['channel']} "
                   f"at {message['received_at']}")
        click.echo(message["text"])


@main.command("import")
@click.argument("kind", type=click.Choice(
    ["customers", "products", "purchases", "contracts", "articles"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-row error report here as JSON lines.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_cmd(kind: str, file: Path, report: Path | None, quiet: bool) -> None:
    """Import records from CSV or JSON, idempotent on their external id."""
    from contactcenter.customers.importer import ImportFileError, import_file

    settings = _settings()
    database = _db(settings)
    try:
        if kind == "articles":
            from contactcenter.knowledge.importer import import_articles_file

            result = import_articles_file(database, file, progress=not quiet)
        else:
            result = import_file(database, kind, file, progress=not quiet,
                                 defaults={"country": settings.phone_region})
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in result.errors:
        click.echo(f"{file}:{problem.line}: {problem.message}", err=True)
    if report is not None:
        with report.open("w", encoding="utf-8") as fh:
            for problem in result.errors:
                fh.write(json.dumps({"line": problem.line, "error": problem.message},
                                    ensure_ascii=False) + "\n")
    click.echo(json.dumps(result.summary()))
    if result.errors and not result.created and not result.updated and not result.unchanged:
        sys.exit(1)


@main.command()
@click.option("--channel", default=None, help="Only this channel's failed payloads.")
@click.option("--limit", type=int, default=1000, show_default=True)
def replay(channel: str | None, limit: int) -> None:
    """Process failed raw payloads again; one JSON line each."""
    from contactcenter.channels.base import load_builtin_adapters
    from contactcenter.tickets.intake import replay_failed

    settings = _settings()
    database = _db(settings)
    registry = load_builtin_adapters()
    with database.session() as session:
        for raw_id, result in replay_failed(session, registry, settings, channel, limit):
            click.echo(json.dumps({"raw_id": raw_id,
                                   **(result.to_json() if result else {"status": "failed"})}))


MAIL_SUFFIXES_SKIPPED = {".json", ".yml", ".yaml", ".csv", ".md", ".py", ".sh"}
INGEST_BATCH = 100  # messages per transaction of `ingest email` ...
INGEST_BATCH_S = 0.5  # ... or fewer, so that a batch never waits long for its commit
INGEST_POOL_MIN = 64  # from this many files on, reading and parsing run in worker processes

_worker_registry: Any = None


_worker_files: tuple[Path, int] | None = None  # (data folder, attachment size limit)


def _parse_worker_init(files: tuple[Path, int] | None = None) -> None:
    """Set a parse worker up: its own adapters; its failures are the writer's to report.

    ``files`` given: it also stores each message's attachments (the writer's own work
    otherwise), so that the writer only writes rows.
    """
    global _worker_registry, _worker_files
    from contactcenter.channels.base import load_builtin_adapters

    logging.disable(logging.CRITICAL)  # the writer parses a failed message again and logs it
    _worker_registry = load_builtin_adapters()
    _worker_files = files


def _read_mail(path: Path, limit: int) -> tuple[Path, int, bytes, str | None]:
    """Return (path, size, bytes or b"" over the limit, the read error or None)."""
    try:
        size = path.stat().st_size
        return path, size, (path.read_bytes() if size <= limit else b""), None
    except OSError as exc:
        return path, 0, b"", str(exc.strerror or exc)


def _read_and_parse(job: tuple[Path, int]) -> tuple[Path, int, bytes, str | None, Any]:
    """Read one file and parse it (in a worker); a message that fails to parse gets None."""
    path, size, raw, error = _read_mail(*job)
    contact = None
    if error is None and raw:
        try:
            contact = _worker_registry.get("email").to_inbound(raw, inbox_id=None, raw_id=None)
        except Exception:  # the writer parses it again and keeps it failed or quarantined
            contact = None
    if contact is not None:
        from contactcenter.channels.email.loops import ACK_HEADER_REASON, header_reason

        # What the acknowledgement's loop rules read of the header block, read here.
        contact = dataclasses.replace(contact, metadata={**contact.metadata,
                                                         ACK_HEADER_REASON: header_reason(raw)})
    if contact is not None and _worker_files is not None:
        from contactcenter.tickets.intake import store_attachments_ahead

        try:
            contact = store_attachments_ahead(contact, *_worker_files)
        except OSError:  # e.g. a full disk: the writer tries again and reports it
            pass
    return path, size, raw, error, contact


def _parsed_mail(files: list[Path], limit: int, store: tuple[Path, int] | None = None
                 ) -> Iterator[tuple[Path, int, bytes, str | None, Any]]:
    """Yield each file read (and, for a large run, parsed ahead in worker processes).

    The single writer then only writes: on a multi-core machine the parsing of the next
    messages overlaps the transactions of the current ones. Order is kept. ``store``
    (the data folder and the attachment size limit): the workers store attachments too.
    """
    import multiprocessing
    import os

    workers = max(1, min(4, (os.cpu_count() or 2) - 1))
    if len(files) < INGEST_POOL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        for path in files:
            yield (*_read_mail(path, limit), None)
        return
    with multiprocessing.get_context("fork").Pool(workers, _parse_worker_init,
                                                  (store,)) as pool:
        yield from pool.imap(_read_and_parse, ((path, limit) for path in files), chunksize=8)


INGEST_LOOKAHEAD = 50  # messages whose stored copies one query looks up


def _looked_up(session: Any, mail: Iterator[tuple[Path, int, bytes, str | None, Any]],
               limit: int, seen: set[str]
               ) -> Iterator[tuple[Path, int, bytes, str | None, Any, str | None, bool]]:
    """Add each message's id and whether a copy may be stored, one query per chunk.

    ``stored`` is False only when the chunk's query found no copy and the id was not
    met before in this run (a repeated id, or any doubt, is looked up one by one).
    """
    import itertools

    from contactcenter.channels.email.receive import existing_raw, message_id_of

    while chunk := list(itertools.islice(mail, INGEST_LOOKAHEAD)):
        ids: list[str | None] = []
        for _path, size, raw, error, contact in chunk:
            if error is not None or size > limit or not raw:
                ids.append(None)
            elif contact is not None and contact.channel == "email":
                ids.append(contact.external_id)
            else:
                ids.append(message_id_of(raw))
        found: dict[str, Any] | None = None
        try:  # in a SAVEPOINT: a failure must not roll the batch in progress back
            with session.begin_nested():
                found = existing_raw(session, [i for i in ids if i is not None])
        except Exception:  # e.g. a locked database: every message is looked up alone
            logging.getLogger(__name__).debug("look-up of %s stored messages failed",
                                              len(chunk), exc_info=True)
            found = None
        for item, external_id in zip(chunk, ids, strict=True):
            stored = True
            if external_id is not None:
                key = external_id[:500]
                stored = found is None or key in found or key in seen
                seen.add(key)
            yield (*item, external_id, stored)


def _mail_files(paths: tuple[Path, ...]) -> Iterator[Path]:
    """Yield each named file, and every file under each named folder in name order.

    In folders, hidden files and data files (manifests, notes) are skipped: ``.eml``,
    ``.box``, ``.msg``, Maildir names and any other file are taken as one message each.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for found in sorted(path.rglob("*")):
            relative = found.relative_to(path).parts
            if any(part.startswith(".") for part in relative):
                continue
            if found.suffix.lower() in MAIL_SUFFIXES_SKIPPED:
                continue
            if found.is_file() or (found.is_symlink() and not found.exists()):
                yield found


@main.group()
def ingest() -> None:
    """Feed contacts in from files."""


@ingest.command("email")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--inbox", "inbox_address", default=None, metavar="ADDRESS",
              help="The email inbox to file them in (default: the first email inbox).")
def ingest_email(paths: tuple[Path, ...], inbox_address: str | None) -> None:
    """Feed raw RFC 5322 files (or folders of them) through the email channel.

    Each message is stored and processed exactly as the SMTP server does it; one JSON
    line per message on stdout ({"path", "status", "ticket", "customer", "reason"}) and
    a summary on stderr. Exit 0 even if some are quarantined; 1 if a file could not be
    read or a message could not be stored.
    """
    import itertools
    import time
    from collections import Counter

    from sqlalchemy import select

    from contactcenter.channels.base import load_builtin_adapters
    from contactcenter.channels.email import receive
    from contactcenter.channels.email.receive import Received, find_inbox
    from contactcenter.jobs import JobQueue
    from contactcenter.tickets.models import Inbox

    settings = _settings()
    limit = settings.smtp_max_message_bytes
    # Started before the database is opened: the forked parse workers hold no connection.
    mail = _parsed_mail(list(_mail_files(paths)), limit,
                        (settings.data_dir, settings.attachment_max_bytes))
    first = next(mail, None)
    database = _db(settings)
    registry = load_builtin_adapters()
    jobs: JobQueue | None = None
    if settings.redis_url:  # events reach the desks, acknowledgements the outbox, via Redis
        from contactcenter.app import build_job_context
        from contactcenter.jobs import RqJobQueue

        build_job_context(settings, db=database)
        jobs = RqJobQueue(settings.redis_url)
    with database.session() as session:
        if inbox_address:
            found = find_inbox(session, inbox_address)
            if found is None:
                raise click.BadParameter(f"no email inbox has the address {inbox_address}",
                                         param_hint="--inbox")
            inbox_id: int | None = found.id
        else:
            inbox_id = session.scalar(select(Inbox.id).where(Inbox.channel == "email")
                                      .order_by(Inbox.id).limit(1))
    counts: Counter[str] = Counter()
    trouble = 0
    started = time.monotonic()
    log = logging.getLogger(__name__)
    # Several messages commit together. A message whose fast path fails is then stored
    # and processed on its own (failed or quarantined, replayable). Until the first such
    # failure no message gets a SAVEPOINT (a fast path that fails is rare): that failure
    # rolls the batch back, its messages are done again each in a SAVEPOINT, and so is
    # every message after it, whose failure then rolls back alone. Lines are printed,
    # and acknowledgements enqueued, only once their batch has committed. The files stay
    # on disk, so a batch lost to a crash is simply ingested again by the next run.
    batch: list[tuple[dict[str, Any], bytes | None, Received | None, dict[str, Any]]] = []
    batch_started = time.monotonic()
    careful = False

    def finish(line: dict[str, Any]) -> None:
        counts[line["status"]] += 1
        click.echo(json.dumps(line))

    def one_by_one(line: dict[str, Any], raw: bytes) -> None:
        nonlocal trouble
        try:
            with database.session() as single:
                received = receive.receive_email(single, raw, registry, settings, inbox_id,
                                                 jobs=jobs)
            line.update(received.to_json())
        except Exception as exc:  # stored or not, say so and go on with the rest
            log.exception("ingest of %s failed", line["path"])
            line["reason"] = f"{type(exc).__name__}: {exc}"[:500]
            trouble += 1
        finish(line)

    def commit_batch() -> None:
        nonlocal batch_started
        done, batch[:] = list(batch), []
        batch_started = time.monotonic()
        try:  # always: a rolled-back savepoint still holds SQLite's write lock
            session.commit()
        except Exception:
            log.exception("a batch of %s messages could not be committed; they are "
                          "ingested one by one", len(done))
            session.rollback()
            for line, raw, _received, _again in done:
                if raw is None:
                    finish(line)
                else:
                    one_by_one(line, raw)
            return
        for line, _raw, received, _again in done:
            if received is not None:
                line.update(received.to_json())
                receive.enqueue_delivery(jobs, received.acknowledgement)
            finish(line)

    def nested(raw: bytes, again: dict[str, Any]) -> Received | None:
        """The fast path of one message in the batch; None: it goes alone."""
        nonlocal careful
        try:
            return receive.receive_email_nested(session, raw, registry, settings, inbox_id,
                                                savepoint=careful, **again)
        except Exception:  # e.g. the database refused a read: this message goes alone
            log.debug("batched ingest of %s failed", again.get("external_id"), exc_info=True)
            if not careful:  # the batch so far is rolled back with it: do it again
                careful = True
                redo_batch()
            return None

    def redo_batch() -> None:
        session.rollback()
        redo, batch[:] = list(batch), []
        for line, raw, _received, again in redo:
            if raw is None:
                batch.append((line, raw, None, again))
                continue
            received = nested(raw, again)
            if received is None:
                commit_batch()
                one_by_one(line, raw)
                continue
            batch.append((line, raw, received, again))

    seen: set[str] = set()  # external ids met in this run: looked up one by one
    with database.session() as session:
        for path, size, raw, error, contact, external_id, stored in _looked_up(
                session, itertools.chain([first] if first else [], mail), limit, seen):
            line: dict[str, Any] = {"path": str(path), "status": "failed", "ticket": None,
                                    "customer": None, "reason": None}
            if error is not None:
                click.echo(f"{path}: cannot read: {error}", err=True)
                counts["unreadable"] += 1
                trouble += 1
                continue
            if size > limit:
                line.update(status="ignored", reason=f"{size} bytes is over the {limit}-byte "
                            "limit (CONTACTCENTER_SMTP_MAX_MESSAGE_BYTES)")
                batch.append((line, None, None, {}))
                continue
            again = {"contact": contact, "external_id": external_id, "known_new": not stored}
            received = nested(raw, again)
            if received is None:  # needs the slow path: commit what we have, then alone
                commit_batch()
                one_by_one(line, raw)
                continue
            batch.append((line, raw, received, again))
            if len(batch) >= INGEST_BATCH or time.monotonic() - batch_started > INGEST_BATCH_S:
                commit_batch()
        commit_batch()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    click.echo(f"{total} files in {elapsed:.1f} s ({total / elapsed if elapsed else 0:.0f}/s): "
               + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), err=True)
    database.dispose()
    if trouble:
        sys.exit(1)


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 2525).")
def smtp(host: str | None, port: int | None) -> None:
    """Run the inbound SMTP server on its own (the scaled deployment)."""
    import signal
    import threading

    from contactcenter.channels.base import load_builtin_adapters
    from contactcenter.channels.email.smtp import SmtpServer
    from contactcenter.jobs import JobQueue, RqJobQueue

    settings = _settings(smtp_host=host, smtp_port=port)
    database = _db(settings)
    jobs: JobQueue | None = None
    if settings.redis_url:  # follow-up jobs go to RQ, events to the desks through Redis
        from contactcenter.app import build_job_context

        build_job_context(settings, db=database)
        jobs = RqJobQueue(settings.redis_url)
    server = SmtpServer(database, load_builtin_adapters(), settings, jobs=jobs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {server.host}:{server.port}: {exc}"
                                   ) from exc
    click.echo(f"Inbound SMTP on {server.host}:{server.port}")
    try:
        server.serve_until(stop)  # stops the server on the way out, however it ends
    except KeyboardInterrupt:
        pass
    finally:
        database.dispose()


@main.command()
def imap() -> None:
    """Poll the configured IMAP mailboxes until stopped."""
    from contactcenter.channels.email.imap import run_poller

    try:
        run_poller(_settings(), stop=None)  # SIGTERM and SIGINT stop it
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--queues", default="inbound,outbound,sla,search,default", show_default=True)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(queues: str, burst: bool) -> None:
    """Run an RQ worker (scaled deployment)."""
    from workers.rq_worker import run_worker

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("CONTACTCENTER_REDIS_URL is not set: jobs run in `serve`")
    run_worker(settings, [q.strip() for q in queues.split(",") if q.strip()], burst=burst)


@main.command()
def scheduler() -> None:
    """Enqueue periodic jobs into RQ (scaled deployment)."""
    from contactcenter.jobs import RqJobQueue, run_scheduler

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("CONTACTCENTER_REDIS_URL is not set: `serve` schedules jobs")
    click.echo("scheduler running")
    run_scheduler(RqJobQueue(settings.redis_url))


def _add_package_commands() -> None:
    from contactcenter.field.cli import cli as field_cli
    from contactcenter.knowledge.cli import cli as kb_cli
    from contactcenter.sales.cli import cli as sales_cli
    from contactcenter.sla.cli import cli as sla_cli

    from contactcenter.reports.cli import staffing

    from contactcenter.ops.cli import COMMANDS as ops_commands

    for command in (sla_cli, kb_cli, sales_cli, field_cli, staffing, *ops_commands):
        main.add_command(command)
    main.add_command(__import__("contactcenter.channels.forms.cli", fromlist=["cli"]).cli)


_add_package_commands()


if __name__ == "__main__":
    main()
