"""Measure the email channel end to end on a generated corpus, against a floor and django-helpdesk.

Usage::

    .venv/bin/python benchmarks/email_ingest.py --json [--n N] [--seed S] [--skip-smtp]
                                                [--skip-peer] [--senders K]

A corpus of ``--n`` messages (default 2000, seed 42) is generated with
``../shared/gen_emails.py`` into a temp folder, with its manifest of senders,
charsets, kinds and reply links. The same files then go through:

- ``pipeline_cli``: ``contactcenter ingest email DIR`` as a subprocess on a fresh data
  folder (SQLite, migrated with ``contactcenter db upgrade``, one email inbox for the
  corpus's recipient), timed wall clock including process start-up;
- ``pipeline_smtp``: ``contactcenter smtp`` as a subprocess on a free loopback port and a
  fresh data folder, fed by ``smtplib`` over ``--senders`` reused connections (each
  sender's customers always go through it, so a thread's messages keep their order),
  timed until every raw message is processed;
- ``floor``: the standard library's parse (``email.message_from_bytes`` with
  ``policy.default``, then the body) plus one SQLite insert and commit per message;
- ``peer``: django-helpdesk's local-folder import in a throwaway virtualenv (see
  ``benchmarks/_email_peer.py``).

Each pipeline run is checked against the manifest: every message ingested, replies on
the ticket of the message they answer, every new thread its own ticket, one customer
per sender address, auto-replies flagged and never answered, subjects and attachments
as sent. With ``--json`` one JSON object is printed on stdout (see
benchmarks/README.md); otherwise a short table. The exit status is 1 when the
pipeline did not do what the manifest says (``mismatches`` > 0) or a variant failed.
"""

from __future__ import annotations

import argparse
import collections
import email
import email.policy
import json
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _email_corpus import (
    EXAMPLES,
    SUPPORT_ADDRESS,
    Corpus,
    check_outcome,
    generate_corpus,
)
from _email_peer import PeerUnavailable, ensure_peer_venv

SEED = 42
DEFAULT_N = 2000
DEFAULT_SENDERS = 2
REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO.parent / "shared" / "gen_emails.py"
PEER_SCRIPT = Path(__file__).resolve().parent / "_email_peer.py"
CRLF_RE = re.compile(rb"\r?\n")
TARGETS = {"ratio_to_floor": 0.5, "ratio_to_peer": 4.0}


def _log(message: str) -> None:
    print(f"[email_ingest] {message}", file=sys.stderr, flush=True)


def _latency_figures(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 \
        else [ordered[0]] * 99
    return {"p50_ms": round(q[49] * 1000, 3), "p95_ms": round(q[94] * 1000, 3),
            "p99_ms": round(q[98] * 1000, 3), "max_ms": round(ordered[-1] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


# --- the product: data folders, the CLI, the database -----------------------------------

def contactcenter_command() -> list[str]:
    """The ``contactcenter`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "contactcenter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "contactcenter.cli"]


def product_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a product subprocess: embedded default on a fresh data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env.update({"CONTACTCENTER_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **extra})
    return env


def prepare_data_dir(data_dir: Path) -> dict[str, Any]:
    """Migrate a fresh data folder with the CLI and create the corpus's email inbox."""
    from contactcenter.config import Settings
    from contactcenter.db import Database
    from contactcenter.tickets.models import Inbox

    started = time.perf_counter()
    done = subprocess.run([*contactcenter_command(), "db", "upgrade"], env=product_env(data_dir),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"contactcenter db upgrade failed: {done.stderr.strip()[-1500:]}")
    upgrade_s = time.perf_counter() - started
    db = Database(Settings(data_dir=data_dir).effective_database_url)
    try:
        with db.session() as session:
            session.add(Inbox(name="Support", channel="email", address=SUPPORT_ADDRESS))
            session.commit()
    finally:
        db.dispose()
    return {"upgrade_s": round(upgrade_s, 2)}


def read_outcome(data_dir: Path) -> dict[str, Any]:
    """Read back what the pipeline stored: raw rows, messages, tickets and attachments."""
    from sqlalchemy import func, select

    from contactcenter.config import Settings
    from contactcenter.db import Database
    from contactcenter.tickets.models import Attachment, Message, RawInbound, Ticket

    db = Database(Settings(data_dir=data_dir).effective_database_url)
    try:
        with db.session() as session:
            raws = [dict(r) for r in session.execute(select(
                RawInbound.id, RawInbound.external_id, RawInbound.state, RawInbound.error
            )).mappings()]
            messages = [dict(r) for r in session.execute(select(
                Message.id, Message.ticket_id.label("ticket"),
                Message.customer_id.label("customer"), Message.direction, Message.external_id,
                Message.auto_submitted, Message.subject, Message.sender, Message.raw_id,
                Message.channel)).mappings()]
            tickets = {r.id: {"number": r.number, "customer": r.customer_id}
                       for r in session.execute(select(Ticket.id, Ticket.number,
                                                       Ticket.customer_id))}
            attachments: dict[int, list[int]] = collections.defaultdict(list)
            for message_id, size in session.execute(select(Attachment.message_id,
                                                           Attachment.size)):
                attachments[message_id].append(size)
            raw_bytes = session.scalar(select(func.sum(func.length(RawInbound.payload)))) or 0
    finally:
        db.dispose()
    return {"raws": raws, "messages": messages, "tickets": tickets,
            "attachments": attachments, "raw_bytes": int(raw_bytes)}


# --- pipeline_cli ------------------------------------------------------------------------

def run_cli(paths: list[str], data_dir: Path) -> dict[str, Any]:
    """Run ``contactcenter ingest email PATHS``; time it and every output line's arrival."""
    arrivals: list[float] = []
    lines: list[str] = []
    started = time.perf_counter()
    proc = subprocess.Popen([*contactcenter_command(), "ingest", "email", *paths],
                            env=product_env(data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()),  # type: ignore
                              daemon=True)
    reader.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        arrivals.append(time.perf_counter())
        lines.append(line)
    rc = proc.wait()
    wall = time.perf_counter() - started
    reader.join(5)
    records = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return {"rc": rc, "wall_s": wall, "started": started, "arrivals": arrivals,
            "records": records, "stderr": (err[0] if err else "")[-2000:]}


def bench_cli(corpus: Corpus, tmp: Path) -> dict[str, Any]:
    """Time the CLI over the whole folder (after a one-file run that measures start-up)."""
    warm_dir, data_dir = tmp / "cli-startup", tmp / "cli-data"
    prepare_data_dir(warm_dir)
    setup = prepare_data_dir(data_dir)
    one = run_cli([str(corpus.folder / corpus.files[0])], warm_dir)
    if one["rc"] != 0 or len(one["records"]) != 1:
        return {"error": f"contactcenter ingest email (1 file) exited {one['rc']} with "
                         f"{len(one['records'])} JSON lines: {one['stderr'][-1500:]}"}
    startup = one["wall_s"]
    run = run_cli([str(corpus.folder)], data_dir)
    n = len(corpus.files)
    result: dict[str, Any] = {"n": n, "command": "contactcenter ingest email DIR",
                              "database": "SQLite file in a fresh data folder (WAL, "
                                          "synchronous=NORMAL)", **setup}
    if run["rc"] != 0:
        result["error"] = f"contactcenter ingest email exited {run['rc']}"
        result["stderr_tail"] = run["stderr"][-1500:]
    wall = run["wall_s"]
    gaps = [b - a for a, b in zip(run["arrivals"], run["arrivals"][1:], strict=False)]
    result.update({
        "messages_per_s": round(n / wall, 1),
        "wall_s": round(wall, 3),
        "startup_s": round(startup, 3),
        "messages_per_s_excl_startup": round(n / (wall - startup), 1) if wall > startup
        else None,
        "first_line_after_s": round(run["arrivals"][0] - run["started"], 3)
        if run["arrivals"] else None,
        "json_lines": len(run["records"]),
        "status_counts": dict(sorted(collections.Counter(
            r.get("status") for r in run["records"]).items())),
        # Time between consecutive JSON lines (stdout unbuffered): one message's processing.
        "latency_note": "p*_ms: gaps between consecutive output lines (one message each)",
        **_latency_figures(gaps),
    })
    statuses = {Path(r.get("path") or "").name: r.get("status") for r in run["records"]}
    outcome = read_outcome(data_dir)
    result["raw_bytes_stored"] = outcome["raw_bytes"]
    result["check"] = check_outcome(corpus, outcome, statuses)
    reasons = collections.Counter(r.get("reason") for r in run["records"]
                                  if r.get("status") not in ("created", "appended"))
    result["check"]["non_ingest_reasons"] = {str(k): v for k, v in reasons.most_common(EXAMPLES)}
    return result


# --- pipeline_smtp -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"contactcenter smtp exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


def _split_by_sender(corpus: Corpus, senders: int) -> list[list[dict[str, Any]]]:
    """Give each customer address to one connection, so each thread's order is kept."""
    parts: list[list[dict[str, Any]]] = [[] for _ in range(senders)]
    for m in corpus.messages:
        parts[zlib.crc32(m["customer"].lower().encode()) % senders].append(m)
    return parts


def _send_all(wire: dict[str, bytes], port: int, part: list[dict[str, Any]],
              latencies: list[float], codes: collections.Counter[str], errors: list[str]
              ) -> None:
    """Send one share of the corpus over one reused connection, timing DATA to its reply."""
    if not part:
        return
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.ehlo("bench.example")
        size_ok = client.has_extn("size")
        for m in part:
            raw = wire[m["file"]]
            try:
                options = [f"SIZE={len(raw)}"] if size_ok else []
                code, answer = client.mail(m["customer"], options)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, answer)
                code, answer = client.rcpt(SUPPORT_ADDRESS)
                if code not in (250, 251):
                    raise smtplib.SMTPResponseException(code, answer)
                t0 = time.perf_counter()
                code, answer = client.data(raw)  # returns the final reply, 250 or not
                elapsed = time.perf_counter() - t0
                if code != 250:
                    raise smtplib.SMTPResponseException(code, answer)
                latencies.append(elapsed)
                codes[str(code)] += 1
            except smtplib.SMTPResponseException as exc:
                codes[str(exc.smtp_code)] += 1
                errors.append(f"{m['file']}: {exc.smtp_code} {exc.smtp_error[:200]!r}")
                client.rset()


def _pending(db_path: Path) -> tuple[int, int]:
    """(raw rows, raw rows still pending), read without the ORM."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        total, pending = conn.execute(
            "SELECT count(*), coalesce(sum(state = 'pending'), 0) FROM raw_inbound").fetchone()
    finally:
        conn.close()
    return int(total), int(pending)


def bench_smtp(corpus: Corpus, tmp: Path, senders: int) -> dict[str, Any]:
    """Send the corpus to ``contactcenter smtp`` and time it until every message is processed."""
    from contactcenter.config import Settings

    data_dir = tmp / "smtp-data"
    setup = prepare_data_dir(data_dir)
    db_path = Path(Settings(data_dir=data_dir).effective_database_url.split("///", 1)[1])
    port = free_port()
    log_path = tmp / "smtp-server.log"
    with log_path.open("wb") as server_log:
        proc = subprocess.Popen(
            [*contactcenter_command(), "smtp"], stdout=server_log, stderr=subprocess.STDOUT,
            env=product_env(data_dir, CONTACTCENTER_SMTP_HOST="127.0.0.1",
                            CONTACTCENTER_SMTP_PORT=str(port)),
            start_new_session=True)
        try:
            wait_port(port, proc)
            parts = _split_by_sender(corpus, senders)
            # The files are LF-terminated (as in a Maildir); on the wire lines end in CRLF,
            # and smtplib converts line ends of str messages only: convert them up front.
            wire = {name: CRLF_RE.sub(b"\r\n", (corpus.folder / name).read_bytes())
                    for name in corpus.files}
            latencies: list[list[float]] = [[] for _ in parts]
            codes: collections.Counter[str] = collections.Counter()
            errors: list[str] = []
            started = time.perf_counter()
            threads = [threading.Thread(target=_send_all, args=(wire, port, part,
                                                               latencies[i], codes, errors))
                       for i, part in enumerate(parts)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent_s = time.perf_counter() - started
            n = len(corpus.files)
            deadline = time.perf_counter() + max(120.0, sent_s * 5)
            total, pending = _pending(db_path)
            while (pending or total < n - len(errors)) and time.perf_counter() < deadline:
                time.sleep(0.02)
                total, pending = _pending(db_path)
            done_s = time.perf_counter() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
    all_latencies = [x for part in latencies for x in part]
    result: dict[str, Any] = {
        "n": n, "server": "contactcenter smtp (subprocess) on 127.0.0.1, fresh data folder",
        "senders": len(parts), "messages_per_sender": [len(p) for p in parts], **setup,
        "messages_per_s": round(n / done_s, 1),
        "elapsed_s": round(done_s, 3),
        "all_250_after_s": round(sent_s, 3),
        "processing_tail_s": round(done_s - sent_s, 3),
        "raw_rows_at_end": total, "pending_at_end": pending,
        "smtp_codes": dict(sorted(codes.items())), "smtp_errors": errors[:EXAMPLES],
        "latency_note": "p*_ms: time from DATA sent to the final reply (250) received",
        **_latency_figures(all_latencies),
    }
    if pending or total < n:
        result["error"] = f"{pending} still pending and {total} of {n} stored at the deadline"
    outcome = read_outcome(data_dir)
    result["raw_bytes_stored"] = outcome["raw_bytes"]
    result["check"] = check_outcome(corpus, outcome)
    server_tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    if server_tail:
        result["server_log_tail"] = server_tail
    return result


# --- floor -------------------------------------------------------------------------------

def bench_floor(corpus: Corpus, tmp: Path) -> dict[str, Any]:
    """Standard library parse and one SQLite insert + commit per message (same pragmas)."""
    db_path = tmp / "floor.db"
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT UNIQUE, "
                 "sender TEXT, subject TEXT, body TEXT)")
    latencies: list[float] = []
    bodyless = 0
    started = time.perf_counter()
    for name in corpus.files:
        t0 = time.perf_counter()
        raw = (corpus.folder / name).read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        bodyless += part is None
        conn.execute("BEGIN")
        conn.execute("INSERT INTO messages (message_id, sender, subject, body) VALUES (?,?,?,?)",
                     (str(msg["Message-ID"]), str(msg["From"]), str(msg["Subject"]), body))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    conn.close()
    return {"n": len(corpus.files), "method": "email.message_from_bytes(policy=default), "
            "get_body(plain, html).get_content(), one INSERT and COMMIT per message into a "
            "SQLite file (WAL, synchronous=NORMAL), in-process",
            "messages_per_s": round(len(corpus.files) / elapsed, 1),
            "elapsed_s": round(elapsed, 3), "without_body": bodyless,
            **_latency_figures(latencies)}


# --- peer --------------------------------------------------------------------------------

PEER_METHOD = (
    "django-helpdesk {version} (Django {django}) from PyPI in a throwaway virtualenv (cached "
    "under {cache}); a minimal Django project on a freshly migrated SQLite file; EMAIL_BACKEND "
    "locmem (acknowledgements rendered, not sent); .csv and .log added to "
    "HELPDESK_VALID_EXTENSIONS so every attachment is stored, as ours are. One Queue with "
    "email_box_type='local' over a copy of the corpus, imported by "
    "helpdesk.email.process_queue (which deletes each file it imported, in os.listdir order). "
    "Its importer opens files in text mode (UTF-8), so a raw 8-bit non-UTF-8 message raises "
    "UnicodeDecodeError and ends the pass: we record the file it opened last, move it aside as "
    "failed and start process_queue again on what is left ({passes} passes, {aborts} aborted). "
    "messages_per_s = messages imported / time inside process_queue over all passes (Django "
    "start-up and migration excluded). The headline run uses Django's own SQLite settings "
    "(rollback journal, synchronous=FULL), as it ships; same_pragmas repeats the import with "
    "the product's settings (WAL, synchronous=NORMAL)."
)
PEER_KEEP = ("messages_per_s", "imported", "failed", "aborted_passes", "passes", "elapsed_s",
             "tickets", "followups", "attachments", "sqlite_pragmas")


def _run_peer_once(python: Path, corpus: Corpus, tmp: Path, pragmas: str) -> dict[str, Any]:
    files = tmp / "peer-files.json"
    files.write_text(json.dumps(corpus.files))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
    env.update({"PYTHONUTF8": "1", "LC_ALL": "C.UTF-8"})
    done = subprocess.run([str(python), str(PEER_SCRIPT), "--corpus", str(corpus.folder),
                           "--work", str(tmp / f"peer-{pragmas}"), "--files", str(files),
                           "--pragmas", pragmas],
                          capture_output=True, text=True, env=env, check=False, timeout=3600)
    if done.returncode != 0:
        raise PeerUnavailable(f"the peer run failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def bench_peer(corpus: Corpus, tmp: Path, version: str | None) -> dict[str, Any]:
    """Install (or reuse) django-helpdesk and time its import of the same files, twice."""
    python, info = ensure_peer_venv(version, log=_log)
    result = _run_peer_once(python, corpus, tmp, "django")
    same = _run_peer_once(python, corpus, tmp, "product")
    placed = result.pop("ticket_of_message_id")
    result["method"] = PEER_METHOD.format(
        version=result["django_helpdesk"], django=result["django"],
        cache=Path(info["venv"]).parent, passes=result["passes"],
        aborts=result["aborted_passes"])
    result["same_pragmas"] = {k: same[k] for k in PEER_KEEP if k in same}
    # How the peer threaded the corpus, for context (its rate is what is compared).
    by_root: dict[str, set[int]] = collections.defaultdict(set)
    for mid, root in corpus.root.items():
        ticket = placed.get(f"<{mid}>")
        if ticket is not None:
            by_root[root].add(ticket)
    result["threads_split_over_tickets"] = sum(len(t) - 1 for t in by_root.values())
    result["install_s_first_run"] = info.get("install_s")
    return result


# --- report ------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    import aiosmtpd
    import sqlalchemy

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "memory_gib": round(memory / 2**30, 1) if memory else None,
            "python": platform.python_version(), "sqlite_version": sqlite3.sqlite_version,
            "sqlalchemy": sqlalchemy.__version__,
            "aiosmtpd": getattr(aiosmtpd, "__version__", None),
            # Other work on the same cores skews every rate; the ratios (same run) less so.
            "load_average_at_start": _load()}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _rate(block: dict[str, Any] | None, key: str = "messages_per_s") -> float | None:
    if not block or "skipped" in block or "error" in block and key not in block:
        return None
    value = block.get(key)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def assemble(report: dict[str, Any]) -> None:
    """Add the ratios, the targets and the total of mismatches."""
    floor = _rate(report.get("floor"))
    peer = _rate(report.get("peer"))
    for key in ("pipeline_cli", "pipeline_smtp"):
        block = report.get(key)
        if not block or "skipped" in block or "messages_per_s" not in block:
            continue
        block["ratio_to_floor"] = _ratio(_rate(block), floor)
        block["ratio_to_peer"] = _ratio(_rate(block), peer)
        if key == "pipeline_cli":
            block["ratio_to_floor_excl_startup"] = _ratio(
                _rate(block, "messages_per_s_excl_startup"), floor)
    peer_same = _rate((report.get("peer") or {}).get("same_pragmas"))
    cli = _rate(report.get("pipeline_cli"))
    report["ratio_to_floor"] = _ratio(cli, floor)
    report["ratio_to_peer"] = _ratio(cli, peer)
    report["ratio_to_peer_same_pragmas"] = _ratio(cli, peer_same)
    report["ratios_note"] = (
        "top-level ratios use pipeline_cli.messages_per_s: wall clock of `contactcenter ingest "
        "email DIR` including process start-up; ratio_to_peer is against django-helpdesk on "
        "Django's SQLite defaults, ratio_to_peer_same_pragmas against it on the product's")
    report["targets"] = {
        **TARGETS,
        "ratio_to_floor_met": None if report["ratio_to_floor"] is None
        else report["ratio_to_floor"] >= TARGETS["ratio_to_floor"],
        "ratio_to_peer_met": None if report["ratio_to_peer"] is None
        else report["ratio_to_peer"] >= TARGETS["ratio_to_peer"],
    }
    report["mismatches"] = sum(
        report[key]["check"]["mismatches"] + report[key]["check"]["failed"]
        for key in ("pipeline_cli", "pipeline_smtp")
        if isinstance(report.get(key), dict) and "check" in report[key])


def print_table(report: dict[str, Any]) -> None:
    c = report["corpus"]
    print(f"email ingest benchmark: n={c['n']} messages ({c['total_bytes'] / 2**20:.1f} MiB), "
          f"seed {c['seed']}, {c['threads']} threads, {c['replies']} replies")
    header = f"{'variant':<15}{'msg/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}" \
             f"{'x floor':>9}{'x peer':>8}  notes"
    print(header)
    print("-" * len(header))

    def fmt(value: Any, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "-".rjust(
            int(spec.split(".")[0].lstrip(">")))

    for key in ("pipeline_cli", "pipeline_smtp", "floor", "peer"):
        r = report.get(key) or {}
        if "skipped" in r or ("error" in r and "messages_per_s" not in r):
            print(f"{key:<15}  {'skipped' if 'skipped' in r else 'error'}: "
                  f"{r.get('skipped') or r.get('error')}")
            continue
        notes = ""
        if key == "pipeline_cli":
            notes = (f"start-up {r['startup_s']:.2f} s, {r['messages_per_s_excl_startup']} msg/s "
                     f"without it; mismatches {r['check']['mismatches']}")
        elif key == "pipeline_smtp":
            notes = f"{r['senders']} senders; mismatches {r['check']['mismatches']}"
        elif key == "peer":
            notes = (f"imported {r['imported']}, failed {r['failed']}, {r['passes']} passes; "
                     f"{r['same_pragmas']['messages_per_s']} msg/s with our SQLite pragmas")
        print(f"{key:<15}{fmt(r.get('messages_per_s'), '>9.1f')}{fmt(r.get('p50_ms'), '>9.2f')}"
              f"{fmt(r.get('p95_ms'), '>9.2f')}{fmt(r.get('p99_ms'), '>9.2f')}"
              f"{fmt(r.get('ratio_to_floor'), '>9.3f')}{fmt(r.get('ratio_to_peer'), '>8.2f')}  "
              f"{notes}")
    print(f"ratio_to_floor {report['ratio_to_floor']} (target {TARGETS['ratio_to_floor']}), "
          f"ratio_to_peer {report['ratio_to_peer']} (target {TARGETS['ratio_to_peer']}; "
          f"{report['ratio_to_peer_same_pragmas']} against the peer on our pragmas), "
          f"mismatches {report['mismatches']}")
    for key in ("pipeline_cli", "pipeline_smtp"):
        check = (report.get(key) or {}).get("check") or {}
        for line in check.get("mismatch_examples", [])[:EXAMPLES]:
            print(f"  {key}: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="messages in the corpus")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS,
                        help="concurrent SMTP connections")
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--peer-version", default=None,
                        help="django-helpdesk version (default: the newest on the index)")
    parser.add_argument("--generator", type=Path, default=GENERATOR)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (path on stderr)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.senders < 1:
        parser.error("--n and --senders must be at least 1")
    if not args.generator.is_file():
        parser.error(f"generator not found: {args.generator}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-email-"))
    report: dict[str, Any] = {"benchmark": "email_ingest", "machine": machine()}
    failed = False
    try:
        _log(f"generating {args.n} messages (seed {args.seed}) in {tmp}")
        corpus = generate_corpus(tmp, args.n, args.seed, args.generator)
        report["corpus"] = corpus.describe()
        _log("pipeline_cli")
        try:
            report["pipeline_cli"] = bench_cli(corpus, tmp)
        except Exception as exc:  # noqa: BLE001 - reported, and the run fails
            report["pipeline_cli"] = {"error": f"{type(exc).__name__}: {exc}"}
        if args.skip_smtp:
            report["pipeline_smtp"] = {"skipped": "--skip-smtp given"}
        else:
            _log("pipeline_smtp")
            try:
                report["pipeline_smtp"] = bench_smtp(corpus, tmp, args.senders)
            except Exception as exc:  # noqa: BLE001
                report["pipeline_smtp"] = {"error": f"{type(exc).__name__}: {exc}"}
        _log("floor")
        report["floor"] = bench_floor(corpus, tmp)
        if args.skip_peer:
            report["peer"] = {"skipped": "--skip-peer given"}
        else:
            _log("peer (django-helpdesk)")
            try:
                report["peer"] = bench_peer(corpus, tmp, args.peer_version)
            except (PeerUnavailable, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                report["peer"] = {"skipped": str(exc)[-1500:]}
        assemble(report)
        report["machine"]["load_average_at_end"] = _load()
        for key in ("pipeline_cli", "pipeline_smtp"):
            if "error" in report[key]:
                failed = True
        failed = failed or report["mismatches"] > 0
    finally:
        if args.keep:
            _log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
