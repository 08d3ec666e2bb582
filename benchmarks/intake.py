"""Measure ``ingest_inbound`` throughput on SQLite and PostgreSQL against a bare-insert floor.

Usage::

    .venv/bin/python benchmarks/intake.py --json [--n N] [--postgres-url URL] [--skip-postgres]

The workload is a deterministic mix (``random.Random(42)``) of contacts: about
40 % open a new ticket (from a new customer, or from a known customer through a
web form that always opens one) and about 60 % are threaded replies (In-Reply-To
of an earlier message's external id, an explicit ticket number, or the same
sender writing again within the reopen window), plus a few redeliveries
(duplicates). Texts run from a few hundred bytes to several KB; about a third
carry HTML that intake sanitises.

Each contact is one ``ingest_inbound`` call in its own session (one commit). The
floor is the same run's bare insert of the rows intake must write for each
contact (customer + identity when new, ticket when new, message) with plain
SQLAlchemy Core ``insert()`` statements and one commit per contact, no lookups.

With ``--json`` one JSON object is printed on stdout (see benchmarks/README.md);
otherwise a short table. PostgreSQL that cannot be reached is reported as
skipped, unless ``CI=true``, in which case the run exits non-zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import latency_figures, machine, psycopg_url  # noqa: E402

from contactcenter.channels.base import Identity, InboundContact, ThreadHints
from contactcenter.config import Settings
from contactcenter.customers.models import Customer, CustomerIdentity
from contactcenter.db import Base, Database, import_models
from contactcenter.tickets.intake import TICKET_NUMBER_START, ingest_inbound
from contactcenter.tickets.models import Direction, Message, Ticket, TicketStatus

SEED = 42
DEFAULT_N = 2000
DEFAULT_WARMUP = 50
DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=20)  # simulated time between two contacts
WINDOW_DAYS = Settings().reopen_window_days
# The workload's known customers open new tickets by web form many times an hour of its
# compressed clock; the per-sender new-ticket limit (a mail-bomb guard) would group them,
# so it is off here: what is measured is threading, not the guard.
NO_SENDER_LIMIT = 0
RECENT_TICKETS = 300  # replies go to one of the most recent tickets


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


WORDS = _split(
    "router modem invoice account password reset login error screen blinks red green light "
    "internet connection slow fast cable fibre technician visit appointment tomorrow today "
    "yesterday morning evening week refund charge billing plan upgrade downgrade contract "
    "cancel renew order delivery package tracking number address phone email support ticket "
    "please help urgent still again problem issue works does not since after before update "
    "firmware restart power outlet adapter wifi signal bedroom office laptop printer tv box "
    "app mobile version android iphone settings menu button click page loads blank message "
    "code customer service manager thanks regards hello kind best sorry waiting answer reply "
    "the a an and or but with without for from to of in on at by is are was were have has "
    "had be been it this that these those my your our their we you they i he she"
)
FIRST = _split("Anna Ivan Maria Olga John Sarah Li Wei Ahmed Fatima Carlos Lucia Peter Eva "
               "Tomas Nina Yuki Hana Omar Lena")
LAST = _split("Petrova Ivanov Smith Garcia Chen Novak Kowalski Muller Rossi Silva Kim Sato "
              "Hansen Dubois Jensen Horvat")
DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "example.co.uk")


# --- workload -------------------------------------------------------------------------

@dataclass
class TicketModel:
    """What the generator knows of a ticket it expects intake to create."""

    idx: int
    customer: int
    channel: str
    last_activity: dt.datetime
    email_message_ids: list[str] = field(default_factory=list)


@dataclass
class Spec:
    """One contact of the workload and what intake is expected to do with it."""

    i: int
    now: dt.datetime
    kind: str  # new_customer | new_ticket_known | in_reply_to | explicit | same_sender | duplicate
    channel: str
    external_id: str
    address: str
    name: str
    subject: str
    text: str
    html: str
    customer: int  # logical customer index
    ticket: int  # logical ticket index it lands on
    expect_status: str  # created | appended | duplicate
    new_customer: bool
    in_reply_to: tuple[str, ...] = ()
    explicit_ticket: int | None = None  # logical ticket index whose number is sent
    thread_on_open_ticket: bool = True
    duplicate_of: int | None = None


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + rng.choice(".?!.")


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    paras: list[str] = []
    total = 0
    while total < size:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))
        paras.append(para)
        total += len(para) + 2
    return paras


def _body_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.randint(200, 800)
    if roll < 0.9:
        return rng.randint(800, 3000)
    return rng.randint(3000, 8000)


def _html(rng: random.Random, paras: list[str]) -> str:
    parts = ['<html><head><style>p{margin:0}</style></head><body>',
             '<div dir="ltr" style="font-family:Arial">']
    for para in paras:
        if rng.random() < 0.2:
            para = f'{para} <a href="https://status.example.com/{rng.randint(1, 999)}" ' \
                   f'onclick="track()">status</a>'
        if rng.random() < 0.2:
            para = f"<b>{para[:40]}</b>{para[40:]}"
        parts.append(f"<p>{para}</p>")
    if rng.random() < 0.3:
        parts.append(f'<img src="cid:img{rng.randint(1, 99)}@example.com" alt="photo">')
    if rng.random() < 0.1:
        parts.append("<script>alert(document.cookie)</script>")
    parts.append('<div class="signature">-- <br>Sent from my phone</div></div></body></html>')
    return "".join(parts)


def _content(rng: random.Random, quote: str = "") -> tuple[str, str]:
    paras = _paragraphs(rng, _body_size(rng))
    text_body = "\n\n".join(paras)
    if quote:
        text_body += "\n\n" + "\n".join("> " + line for line in quote[:600].splitlines())
    html = _html(rng, paras) if rng.random() < 0.33 else ""
    return text_body, html


def build_workload(n: int, seed: int = SEED, tag: str = "b") -> list[Spec]:
    """Return ``n`` contact specs with their expected outcome (deterministic per seed)."""
    rng = random.Random(seed)
    customers: list[tuple[str, str]] = []  # (address, name)
    tickets: list[TicketModel] = []
    email_tickets: list[int] = []  # tickets holding an email message, by creation
    specs: list[Spec] = []
    subjects: dict[int, str] = {}
    last_text: dict[int, str] = {}

    def latest_email_ticket(customer: int, now: dt.datetime) -> TicketModel | None:
        mine = [t for t in tickets if t.customer == customer and t.channel == "email"]
        if not mine:
            return None
        best = max(mine, key=lambda t: t.last_activity)
        return best if now - best.last_activity <= dt.timedelta(days=WINDOW_DAYS) else None

    for i in range(n):
        now = START + STEP * i
        ext = f"<{tag}-{seed}-{i}.{rng.getrandbits(32):08x}@mail.example.com>"
        roll = rng.random()
        if specs and roll < 0.03:
            src = specs[rng.randrange(max(0, len(specs) - 100), len(specs))]
            while src.duplicate_of is not None:
                src = specs[src.duplicate_of]
            specs.append(Spec(**{**src.__dict__, "i": i, "now": now, "kind": "duplicate",
                                 "expect_status": "duplicate", "new_customer": False,
                                 "duplicate_of": src.i}))
            continue
        kind = "new"
        if tickets:
            r = rng.random()
            if r < 0.40:
                kind = "new"
            elif r < 0.70:
                kind = "in_reply_to"
            elif r < 0.85:
                kind = "explicit"
            else:
                kind = "same_sender"
        if kind == "in_reply_to" and not email_tickets:
            kind = "explicit"
        lo = max(0, len(tickets) - RECENT_TICKETS)
        if kind == "new":
            if not customers or rng.random() < 0.6:
                cust = len(customers)
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                address = f"{name.split()[0].lower()}.{cust}.{rng.randint(1, 9999)}@" \
                          f"{rng.choice(DOMAINS)}"
                customers.append((address, name))
                spec_kind, channel, new_cust, thread_open = "new_customer", "email", True, True
            else:
                cust = rng.randrange(len(customers))
                spec_kind, channel, new_cust, thread_open = "new_ticket_known", "form", False, \
                    False
            subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))).capitalize()
            body, html = _content(rng)
            t = TicketModel(len(tickets), cust, channel, now)
            tickets.append(t)
            subjects[t.idx] = subject
            if channel == "email":
                t.email_message_ids.append(ext)
                email_tickets.append(t.idx)
            last_text[t.idx] = body
            address, name = customers[cust]
            specs.append(Spec(i, now, spec_kind, channel, ext, address, name, subject, body,
                              html, cust, t.idx, "created", new_cust,
                              thread_on_open_ticket=thread_open))
            continue
        in_reply_to: tuple[str, ...] = ()
        explicit = None
        if kind == "in_reply_to":
            target = tickets[rng.choice(email_tickets[-RECENT_TICKETS:])]
            ids = target.email_message_ids
            ref = ids[-1] if rng.random() < 0.7 else rng.choice(ids)
            in_reply_to = (ref,) if rng.random() < 0.5 else tuple(ids[-3:][::-1])
            if ref not in in_reply_to:
                in_reply_to = (ref,)
        elif kind == "explicit":
            target = tickets[rng.randrange(lo, len(tickets))]
            explicit = target.idx
        else:
            pick = tickets[rng.randrange(lo, len(tickets))]
            target = latest_email_ticket(pick.customer, now)  # type: ignore[assignment]
            if target is None:  # the customer only has form tickets: mention the number
                kind, explicit, target = "explicit", pick.idx, pick
        cust = target.customer
        address, name = customers[cust]
        subject = "Re: " + subjects[target.idx]
        if explicit is not None:
            subject = f"{subject} [#{{number}}]"
        body, html = _content(rng, quote=last_text[target.idx])
        last_text[target.idx] = body
        target.last_activity = now
        target.email_message_ids.append(ext)
        if target.idx not in email_tickets:
            email_tickets.append(target.idx)
        specs.append(Spec(i, now, kind, "email", ext, address, name, subject, body, html, cust,
                          target.idx, "appended", False, in_reply_to=in_reply_to,
                          explicit_ticket=explicit, thread_on_open_ticket=True))
    return specs


def describe_workload(specs: list[Spec]) -> dict[str, Any]:
    kinds = Tally(s.kind for s in specs)
    return {
        "seed": SEED,
        "n": len(specs),
        "kinds": dict(sorted(kinds.items())),
        "mean_text_bytes": round(statistics.fmean(len(s.text.encode()) for s in specs)),
        "max_text_bytes": max(len(s.text.encode()) for s in specs),
        "html_fraction": round(sum(1 for s in specs if s.html) / len(specs), 3),
        "mean_html_bytes": round(statistics.fmean([len(s.html) for s in specs if s.html] or [0])),
        "simulated_seconds_between_contacts": STEP.total_seconds(),
    }


# --- runners --------------------------------------------------------------------------

def _contact(spec: Spec, numbers: dict[int, int]) -> InboundContact:
    number = numbers[spec.explicit_ticket] if spec.explicit_ticket is not None else None
    subject = spec.subject.replace("{number}", str(number)) if number is not None else spec.subject
    return InboundContact(
        channel=spec.channel, external_id=spec.external_id,
        sender=Identity("email", spec.address, spec.name),
        subject=subject, text=spec.text, html=spec.html,
        thread=ThreadHints(ticket_number=number, in_reply_to=spec.in_reply_to,
                           thread_on_open_ticket=spec.thread_on_open_ticket),
    )


def run_intake(db: Database, specs: list[Spec], settings: Settings) -> dict[str, Any]:
    """Ingest every spec, one session and one commit each; check the outcome against the model."""
    numbers: dict[int, int] = {}  # logical ticket -> ticket number
    ticket_ids: dict[int, int] = {}  # logical ticket -> ticket id
    customer_ids: dict[int, int] = {}
    built: dict[int, InboundContact] = {}
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    statuses: Tally[str] = Tally()
    rules: Tally[str] = Tally()
    mismatches: list[str] = []
    started = time.perf_counter()
    for spec in specs:
        contact = built[spec.duplicate_of] if spec.duplicate_of is not None \
            else _contact(spec, numbers)
        built[spec.i] = contact
        t0 = time.perf_counter()
        with db.session() as session:
            result = ingest_inbound(session, contact, settings=settings, now=spec.now)
        latencies.append(time.perf_counter() - t0)
        by_kind.setdefault(spec.kind, []).append(latencies[-1])
        statuses[result.status] += 1
        rules[result.rule] += 1
        if result.status == "created":
            numbers[spec.ticket] = result.ticket_number  # type: ignore[assignment]
            ticket_ids[spec.ticket] = result.ticket_id  # type: ignore[assignment]
        if spec.new_customer:
            customer_ids[spec.customer] = result.customer_id  # type: ignore[assignment]
        if (result.status != spec.expect_status
                or ticket_ids.get(spec.ticket) != result.ticket_id
                or customer_ids.get(spec.customer, result.customer_id) != result.customer_id):
            mismatches.append(f"contact {spec.i} ({spec.kind}): expected {spec.expect_status} "
                              f"on ticket #{spec.ticket}, got {result.status} {result.rule} "
                              f"ticket id {result.ticket_id}")
    elapsed = time.perf_counter() - started
    for line in mismatches[:10]:
        print("workload mismatch:", line, file=sys.stderr)
    return {
        "n": len(specs),
        "contacts_per_s": round(len(specs) / elapsed, 1),
        **latency_figures(latencies),
        "elapsed_s": round(elapsed, 3),
        "status_counts": {k: statuses.get(k, 0) for k in ("created", "appended", "duplicate")},
        "rule_counts": dict(sorted(rules.items())),
        "customers_created": len(customer_ids),
        "p50_ms_by_kind": {k: round(statistics.median(v) * 1000, 3)
                           for k, v in sorted(by_kind.items())},
        "workload_mismatches": len(mismatches),
    }


def run_floor(db: Database, specs: list[Spec]) -> dict[str, Any]:
    """Insert the rows intake writes for each contact with Core ``insert()``, no lookups."""
    customers_t = Customer.__table__
    identities_t = CustomerIdentity.__table__
    tickets_t = Ticket.__table__
    messages_t = Message.__table__
    customer_ids: dict[int, int] = {}
    ticket_ids: dict[int, int] = {}
    latencies: list[float] = []
    rows = 0
    engine = db.engine
    started = time.perf_counter()
    for spec in specs:
        if spec.expect_status == "duplicate":
            latencies.append(0.0)  # intake writes nothing for a redelivery
            continue
        t0 = time.perf_counter()
        with engine.begin() as conn:
            if spec.new_customer:
                cid = conn.execute(insert(customers_t).values(name=spec.name, language=None)
                                   ).inserted_primary_key[0]
                customer_ids[spec.customer] = cid
                conn.execute(insert(identities_t).values(customer_id=cid, kind="email",
                                                         address=spec.address))
                rows += 2
            cid = customer_ids[spec.customer]
            if spec.expect_status == "created":
                tid = conn.execute(insert(tickets_t).values(
                    number=TICKET_NUMBER_START + spec.ticket, subject=spec.subject[:500],
                    channel=spec.channel, customer_id=cid, reply_token=uuid.uuid4().hex[:16],
                    status=TicketStatus.NEW, last_activity_at=spec.now,
                    last_customer_message_at=spec.now,
                )).inserted_primary_key[0]
                ticket_ids[spec.ticket] = tid
                rows += 1
            conn.execute(insert(messages_t).values(
                ticket_id=ticket_ids[spec.ticket], direction=Direction.INBOUND,
                channel=spec.channel, customer_id=cid, sender=spec.address,
                subject=spec.subject[:500], text=spec.text, html=spec.html,
                external_id=spec.external_id, received_at=spec.now,
            ))
            rows += 1
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {"n": len(specs), "rows": rows, "rows_per_s": round(rows / elapsed, 1),
            "contacts_per_s": round(len(specs) / elapsed, 1),
            **latency_figures([x for x in latencies if x > 0]),
            "elapsed_s": round(elapsed, 3)}


def clear(db: Database) -> None:
    """Empty every table (ids restart) so that a timed run starts from an empty database."""
    import_models()
    tables = Base.metadata.sorted_tables
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())


def measure(db: Database, specs: list[Spec], warmup: list[Spec], settings: Settings
            ) -> dict[str, Any]:
    """Warm up, then time intake and the floor on the same (emptied) database."""
    db.upgrade()
    if warmup:
        run_intake(db, warmup, settings)
        clear(db)
    result = run_intake(db, specs, settings)
    clear(db)
    if warmup:
        run_floor(db, warmup)
        clear(db)
    result["floor"] = run_floor(db, specs)
    result["ratio_to_floor"] = round(result["contacts_per_s"] / result["floor"]["contacts_per_s"],
                                     3)
    return result


def bench_sqlite(specs: list[Spec], warmup: list[Spec]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        path = Path(tmp) / "intake.db"
        settings = Settings(data_dir=Path(tmp) / "data", database_url=f"sqlite:///{path}",
                            new_ticket_sender_limit=NO_SENDER_LIMIT)
        db = Database(settings.effective_database_url)
        try:
            with db.engine.connect() as conn:
                journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            result = {"database": f"file in a temp dir, journal_mode={journal}, "
                                  f"synchronous={sync}", **measure(db, specs, warmup, settings)}
        finally:
            db.dispose()
    return result


def bench_postgres(admin_url: str, specs: list[Spec], warmup: list[Spec]
                   ) -> tuple[dict[str, Any], str | None]:
    """Return the figures and the server version; raise ``ConnectionError`` if unreachable."""
    import psycopg
    from psycopg import sql

    try:
        admin = psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise ConnectionError(str(exc).strip().splitlines()[0] if str(exc).strip()
                              else repr(exc)) from exc
    name = f"bench_intake_{uuid.uuid4().hex[:10]}"
    with admin:
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
            settings = Settings(data_dir=Path(tmp) / "data", database_url=url,
                                new_ticket_sender_limit=NO_SENDER_LIMIT)
            with db.engine.connect() as conn:
                sync = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
            result = {"database": f"throwaway database on {make_url(admin_url).host}:"
                                  f"{make_url(admin_url).port or 5432}, "
                                  f"synchronous_commit={sync}",
                      **measure(db, specs, warmup, settings)}
    finally:
        db.dispose()
        with psycopg.connect(psycopg_url(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
    return result, version


def print_table(report: dict[str, Any]) -> None:
    print(f"intake benchmark: n={report['workload']['n']} contacts per backend, "
          f"seed {report['workload']['seed']}")
    header = f"{'backend':<10}{'contacts/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}" \
             f"{'floor c/s':>11}{'floor rows/s':>14}{'ratio':>8}  created/appended/duplicate"
    print(header)
    print("-" * len(header))
    for key in ("sqlite", "postgres"):
        r = report.get(key)
        if r is None:
            continue
        if "contacts_per_s" not in r:
            print(f"{key:<10}  skipped: {r.get('reason') or r.get('error')}")
            continue
        s = r["status_counts"]
        print(f"{key:<10}{r['contacts_per_s']:>12.1f}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
              f"{r['p99_ms']:>9.2f}{r['floor']['contacts_per_s']:>11.1f}"
              f"{r['floor']['rows_per_s']:>14.1f}{r['ratio_to_floor']:>8.3f}  "
              f"{s['created']}/{s['appended']}/{s['duplicate']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="contacts per backend")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help="untimed contacts run first (then deleted) to warm caches")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN,
                        help="admin URL of the PostgreSQL server (a throwaway database is made)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    import logging

    logging.disable(logging.INFO)  # intake logs at INFO; keep stdout/stderr quiet
    import_models()
    specs = build_workload(args.n)
    warmup = build_workload(args.warmup, seed=SEED + 1, tag="warm") if args.warmup > 0 else []
    in_ci = os.environ.get("CI") == "true"
    report: dict[str, Any] = {"benchmark": "intake", "machine": {},
                              "workload": describe_workload(specs)}
    report["sqlite"] = bench_sqlite(specs, warmup)
    pg_version = None
    failed = False
    if args.skip_postgres:
        report["postgres"] = {"skipped": True, "reason": "--skip-postgres given"}
    else:
        try:
            report["postgres"], pg_version = bench_postgres(args.postgres_url, specs, warmup)
        except ConnectionError as exc:
            reason = f"PostgreSQL not reachable at {make_url(args.postgres_url).host}: {exc}"
            report["postgres"] = ({"skipped": False, "error": reason + " (required when CI=true)"}
                                  if in_ci else {"skipped": True, "reason": reason})
            failed = in_ci
    report["machine"] = machine(pg_version)
    for key in ("sqlite", "postgres"):
        if report[key].get("workload_mismatches"):
            failed = True
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
