"""Signed Twilio webhooks per second: inbound SMS and ringing calls, SQLite and PostgreSQL.

Each request is built from Twilio's parameter set, signed with the configured
Auth Token exactly as Twilio signs it, and sent through the whole app in
process (WSGI, signature check, raw storage, intake or call record, TwiML).
Every SMS has a new MessageSid from one of ``--senders`` numbers (so most
thread onto an open ticket), every call a new CallSid. The floor is the same
app answering ``/healthz`` (one trivial query) in the same run:
``ratio_to_floor`` is how many of those one webhook costs. Figures on a shared
machine are noisy.

An inbound SMS is answered once its raw body is stored; intake runs in the
``phone.ingest_message`` job. ``sms`` is therefore the webhook alone (what
Twilio waits for), and ``sms_with_intake`` the webhook followed by its job in
this process (the whole cost of one message).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twilio.request_validator import RequestValidator  # noqa: E402

from benchmarks._common import latency_figures, machine, psycopg_url  # noqa: E402

DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TOKEN = "benchmark-auth-token-0123456789ab"
PUBLIC = "https://cc.example.test"
LINE, SMS_LINE = "+12025550100", "+12025550101"


def _settings(database_url: str, data_dir: Path) -> Any:
    from contactcenter.config import Settings

    return Settings(data_dir=data_dir, database_url=database_url, testing=True,
                    secret_key="benchmark-secret-key-not-for-production", public_url=PUBLIC,
                    twilio_account_sid="AC" + "0" * 32, twilio_auth_token=TOKEN,
                    twilio_ivr_menu="1:support:support,2:billing:billing")


class DeferredJobs:
    """Jobs are kept, not run: the figures are the webhook's own (RQ runs them elsewhere).

    ``drain`` runs the kept intake jobs in this process, for the end-to-end figure.
    """

    def __init__(self) -> None:
        self.count = 0
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self.ctx: Any = None

    def enqueue(self, name: str, *args: Any, key: str | None = None) -> None:
        self.count += 1
        if name == "phone.ingest_message":
            self.pending.append((name, args))

    def drain(self) -> None:
        from contactcenter.jobs import run_registered

        while self.pending:
            name, args = self.pending.pop(0)
            run_registered(self.ctx, name, args)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _app(settings: Any) -> Any:
    from contactcenter.app import create_app
    from contactcenter.channels.base import load_builtin_adapters
    from contactcenter.db import Database
    from contactcenter.jobs import JobContext
    from contactcenter.tickets.models import Inbox, Queue

    db = Database(settings.effective_database_url)
    db.create_all()
    jobs = DeferredJobs()
    app = create_app(settings, db=db, jobs=jobs)
    jobs.ctx = JobContext(db=db, settings=settings, registry=load_builtin_adapters())
    with db.session() as session:
        support = Queue(slug="support", name="Support")
        session.add_all([support, Queue(slug="billing", name="Billing")])
        session.flush()
        session.add_all([Inbox(name="Hotline", channel="phone", address=LINE, queue_id=support.id),
                         Inbox(name="SMS", channel="sms", address=SMS_LINE, queue_id=support.id)])
        session.commit()
    return app, db


def _post(client: Any, path: str, params: dict[str, str]) -> Any:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    return client.post(path, data=urlencode(params),
                       content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature})


def _sms(n: int, senders: int) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "MessageSid": sid,
            "SmsSid": sid, "SmsMessageSid": sid, "SmsStatus": "received", "NumMedia": "0",
            "NumSegments": "1", "From": f"+1415555{n % senders:04d}", "To": SMS_LINE,
            "FromCountry": "US", "ToCountry": "US",
            "Body": f"Привет! Message {n}: my router blinks red again 😢"}


def _call(n: int, senders: int) -> dict[str, str]:
    return {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01",
            "CallSid": "CA" + uuid.uuid4().hex, "CallStatus": "ringing", "Direction": "inbound",
            "From": f"+1415556{n % senders:04d}", "To": LINE, "Caller": f"+1415556{n % senders:04d}",
            "Called": LINE, "CallerCountry": "US", "CalledCountry": "US"}


def _measure(func: Any, n: int) -> dict[str, Any]:
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        response = func(i)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.get_data(as_text=True)[:200]}")
    elapsed = time.perf_counter() - started
    return {"n": n, "per_s": round(n / elapsed, 1), **latency_figures(latencies)}


def measure(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the three measurements on one database."""
    with tempfile.TemporaryDirectory() as tmp:
        app, db = _app(_settings(database_url, Path(tmp) / "data"))
        client = app.test_client()
        jobs = app.extensions["contactcenter"].jobs
        for i in range(args.warmup):
            _post(client, "/twilio/sms", _sms(10_000 + i, args.senders))
            _post(client, "/twilio/voice", _call(10_000 + i, args.senders))
        jobs.drain()
        floor = _measure(lambda i: client.get("/healthz"), args.n)

        def sms_and_intake(i: int) -> Any:
            response = _post(client, "/twilio/sms", _sms(i, args.senders))
            jobs.drain()
            return response

        # The webhook plus its intake job, run right after it in this process: the whole
        # cost of an SMS, comparable with runs from before intake became a job.
        ingested = _measure(sms_and_intake, args.n)
        sms = _measure(lambda i: _post(client, "/twilio/sms", _sms(args.n + i, args.senders)),
                       args.n)
        jobs.drain()
        calls = _measure(lambda i: _post(client, "/twilio/voice", _call(i, args.senders)), args.n)
        db.dispose()
    block: dict[str, Any] = {
        "sms": {"sms_per_s": sms.pop("per_s"), **sms},
        "sms_with_intake": {"sms_per_s": ingested.pop("per_s"), **ingested},
        "calls": {"calls_per_s": calls.pop("per_s"), **calls},
        "floor": {"healthz_per_s": floor.pop("per_s"), **floor},
    }
    block["ratio_to_floor"] = {
        "sms_p50": round(block["sms"]["p50_ms"] / block["floor"]["p50_ms"], 2),
        "sms_with_intake_p50": round(block["sms_with_intake"]["p50_ms"]
                                     / block["floor"]["p50_ms"], 2),
        "calls_p50": round(block["calls"]["p50_ms"] / block["floor"]["p50_ms"], 2)}
    return block


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=2000, help="requests of each kind")
    parser.add_argument("--quick", action="store_true", help="a small run (n=200)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args()
    if args.quick:
        args.n, args.warmup = 200, 20
    logging.disable(logging.CRITICAL)
    from contactcenter.db import import_models

    import_models()
    report: dict[str, Any] = {"benchmark": "twilio_webhooks",
                              "workload": {"n": args.n, "warmup": args.warmup,
                                           "senders": args.senders,
                                           "transport": "in-process WSGI (Flask test client)"}}
    version = None
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                report["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", args)
        elif backend == "postgres":
            import psycopg
            from psycopg import sql
            from sqlalchemy.engine import make_url

            name = f"bench_twilio_{uuid.uuid4().hex[:8]}"
            admin = psycopg_url(args.postgres_url)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                version = conn.execute("SHOW server_version").fetchone()[0]
            try:
                url = make_url(args.postgres_url).set(database=name).render_as_string(False)
                report["postgres"] = measure(url, args)
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)")
                                 .format(sql.Identifier(name)))
    report["machine"] = machine(version)
    print(json.dumps(report, indent=2 if args.json else None, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
