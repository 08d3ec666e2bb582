"""Load scenarios sized for a 2-core machine: L1, L3, L4, L5 and L10 of RELIABILITY.md.

Each scenario starts ``contactcenter serve`` (web + SMTP in one process, SQLite in a throwaway
data folder) on loopback, drives it with a bounded generator and reports throughput, latency
percentiles, the server's memory (RSS sampled every 0.5 s, with its slope) and errors.

* ``smtp_burst``: N messages from C concurrent SMTP clients (70% 5 KB text, 20% 200 KB HTML,
  10% with a 2 MB attachment). Pass: raw records = N, tickets = N (all distinct), 0 duplicates,
  p95 time to 250 < 1 s.
* ``agent_reads``: customers with financial values and their tickets; agents without the
  finance permission list tickets, open tickets and customers at a pinned rate. Every response
  is scanned for the raw amounts. Pass: 0 leaked amounts, p95 < 300 ms.

* ``webhook_burst``, ``chat_concurrency``, ``mixed_soak``: see ``benchmarks/_load_scenarios.py``.

``--quick`` is the CI variant (about a tenth); the defaults are the hand-run size. Prints one
JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import latency_figures  # noqa: E402

BIN = Path(sys.executable).parent / "contactcenter"
SUPPORT = "support@load.example.test"
SCENARIOS = ("smtp_burst", "webhook_burst", "chat_concurrency", "agent_reads", "mixed_soak")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """RSS of a process and its children (gunicorn's worker is the arbiter's child)."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_mb(int(child))
    except OSError:
        pass
    return total


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stop.wait(0.5):
            self.samples.append((time.perf_counter() - start, rss_mb(self.pid)))

    def figures(self) -> dict[str, Any]:
        if len(self.samples) < 2:
            return {"rss_mb_max": self.samples[-1][1] if self.samples else None}
        xs, ys = zip(*self.samples, strict=True)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0
        return {"rss_mb_start": round(ys[0], 1), "rss_mb_end": round(ys[-1], 1),
                "rss_mb_max": round(max(ys), 1), "rss_slope_mb_per_min": round(slope * 60, 2)}


class Served:
    """``contactcenter serve`` on a throwaway data folder."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cc-load-"))
        self.port, self.smtp_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CONTACTCENTER_", "PROMETHEUS_"))}
        self.env.update(CONTACTCENTER_DATA_DIR=str(self.tmp / "data"),
                        CONTACTCENTER_SECRET_KEY="load-benchmark-secret-key-0123456789",
                        CONTACTCENTER_SMTP_MAX_CONNECTIONS_PER_IP="100")
        from contactcenter.db import Database

        self.db = Database(f"sqlite:///{self.tmp / 'data' / 'contactcenter.db'}")
        (self.tmp / "data").mkdir(parents=True, exist_ok=True)
        self.db.upgrade()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import requests

        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port), "--smtp-port", str(self.smtp_port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve did not start")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.db.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)


def mail(n: int, rng: random.Random) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <s{n}@load.example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Load {n}"
    msg["Message-ID"] = f"<load{n}.{os.getpid()}@load.example.com>"
    roll = rng.random()
    if roll < 0.7:
        msg.set_content(("My router stopped working after the storm.\n" * 120)[:5000])
    elif roll < 0.9:
        msg.set_content("See the HTML part.")
        msg.add_alternative("<html><body>" + "<p>Line of <b>HTML</b> text.</p>\n" * 6000
                            + "</body></html>", subtype="html")
    else:
        msg.set_content("Photo attached.")
        msg.add_attachment(rng.randbytes(2 * 1024 * 1024), maintype="application",
                           subtype="octet-stream", filename="photo.bin")
    # SMTP lines end in CRLF: smtplib sends bytes as they are, and a body with bare LFs
    # is one long line to any SMTP server (ours answers 500 5.5.2 beyond 64 KiB).
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def smtp_burst(count: int, clients: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from contactcenter.tickets.models import Inbox, RawInbound, Ticket

    served = Served()
    try:
        with served.db.session() as session:
            session.add(Inbox(name="Load", channel="email", address=SUPPORT))
            session.commit()
        served.start()
        assert served.proc is not None
        sampler = MemorySampler(served.proc.pid)
        sampler.start()
        rng = random.Random(12)
        payloads = [mail(n, rng) for n in range(count)]
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def send(indices: list[int]) -> None:
            client = smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=60)
            try:
                for i in indices:
                    started = time.perf_counter()
                    try:
                        client.sendmail(f"s{i}@load.example.com", [SUPPORT], payloads[i])
                        with lock:
                            latencies.append(time.perf_counter() - started)
                    except smtplib.SMTPException as exc:
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            finally:
                client.quit()

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, [list(range(c, count, clients)) for c in range(clients)]))
        sent_s = time.perf_counter() - start
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with served.db.session() as session:
                tickets = session.scalar(select(func.count()).select_from(Ticket))
            if tickets >= count - len(errors):
                break
            time.sleep(0.5)
        sampler.stop.set()
        with served.db.session() as session:
            raws = session.scalar(select(func.count()).select_from(RawInbound))
            distinct = session.scalar(select(func.count(func.distinct(RawInbound.external_id))))
            tickets = session.scalar(select(func.count()).select_from(Ticket))
        lat = latency_figures(latencies)
        return {"scenario": "smtp_burst", "messages": count, "clients": clients,
                "accepted": len(latencies), "errors": len(errors), "error_samples": errors[:3],
                "messages_per_s": round(len(latencies) / sent_s, 1),
                "time_to_250": lat, "raw_records": raws, "duplicates": raws - distinct,
                "tickets": tickets, "memory": sampler.figures(),
                "pass": raws == count and tickets == count and raws == distinct
                and bool(lat) and lat["p95_ms"] < 1000
                # 20 sessions may each hold a 2 MB message while it is parsed and stored.
                and (sampler.figures().get("rss_mb_max") or 0) < 512}
    finally:
        served.close()


def agent_reads(customers: int, requests_total: int, rate: float, agents: int
                ) -> dict[str, Any]:
    import requests

    from contactcenter.accounts.service import create_user, issue_token
    from contactcenter.customers.models import Customer, CustomerIdentity
    from contactcenter.tickets.intake import ingest_inbound
    from contactcenter.channels.base import Identity, InboundContact

    served = Served()
    try:
        amounts: list[str] = []
        with served.db.session() as session:
            ids = []
            for n in range(customers):
                value = Decimal(f"{731000 + n * 7}.{n % 100:02d}")
                amounts.append(str(value))
                customer = Customer(name=f"Customer {n}", lifetime_value=value,
                                    balance=Decimal(f"-{n % 500}.17"))
                customer.identities.append(CustomerIdentity(kind="email",
                                                            address=f"c{n}@reads.example.com"))
                session.add(customer)
                ids.append(customer)
            session.commit()
            customer_ids = [c.id for c in ids]
            tokens = []
            for a in range(agents):
                user = create_user(session, f"agent{a}@reads.test", f"Agent {a}",
                                   "reads-password-123", ("agent",))
                tokens.append(issue_token(session, user, "load"))
            session.commit()
        with served.db.session() as session:
            numbers = []
            for n in range(min(customers, 2000)):
                result = ingest_inbound(session, InboundContact(
                    channel="api", external_id=f"reads-{n}",
                    sender=Identity("email", f"c{n}@reads.example.com", f"Customer {n}"),
                    subject=f"Question {n}", text="What is my balance?"))
                numbers.append(result.ticket_number)
        served.start()
        assert served.proc is not None
        sampler = MemorySampler(served.proc.pid)
        sampler.start()
        rng = random.Random(5)
        pattern = re.compile("|".join(re.escape(a) for a in amounts[:5000]))
        latencies: list[float] = []
        leaks: list[str] = []
        errors = 0
        lock = threading.Lock()
        sessions = [requests.Session() for _ in tokens]

        def one(i: int) -> None:
            nonlocal errors
            k = i % len(tokens)
            choice = rng.random()
            if choice < 0.4:
                path = f"/api/v1/customers/{rng.choice(customer_ids)}"
            elif choice < 0.7:
                path = f"/api/v1/tickets/{rng.choice(numbers)}"
            elif choice < 0.9:
                path = "/api/v1/tickets?limit=25"
            else:
                path = f"/api/v1/customers?q=Customer%20{rng.randrange(customers)}"
            started = time.perf_counter()
            try:
                answer = sessions[k].get(served.url + path, timeout=30,
                                         headers={"Authorization": f"Bearer {tokens[k]}"})
            except requests.RequestException:
                with lock:
                    errors += 1
                return
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if answer.status_code >= 400:
                    errors += 1
                found = pattern.search(answer.text)
                if found:
                    leaks.append(f"{path}: {found.group(0)}")

        start = time.perf_counter()
        with ThreadPoolExecutor(agents) as pool:
            for i in range(requests_total):  # pinned rate: the generator shares the cores
                target = start + i / rate
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, i)
        took = time.perf_counter() - start
        sampler.stop.set()
        lat = latency_figures(latencies)
        return {"scenario": "agent_reads", "customers": customers, "tickets": len(numbers),
                "requests": requests_total, "target_rate_per_s": rate,
                "achieved_rate_per_s": round(len(latencies) / took, 1), "agents": agents,
                "latency": lat, "errors": errors, "leaked_financial_values": len(leaks),
                "leak_samples": leaks[:3], "memory": sampler.figures(),
                "pass": not leaks and errors == 0 and bool(lat) and lat["p95_ms"] < 300}
    finally:
        served.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="the short CI variant")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--soak-minutes", type=float, default=None,
                        help="mixed_soak's length (default 20, quick 0.5)")
    args = parser.parse_args()
    results = []
    for name in args.scenarios.split(","):
        if name == "smtp_burst":
            results.append(smtp_burst(200 if args.quick else 2000, 20))
        elif name == "agent_reads":
            results.append(agent_reads(1000 if args.quick else 20000,
                                       100 if args.quick else 4500, 5.0, 20))
        elif name == "webhook_burst":  # L3: 50/s for 5 min by hand; 20/s for 15 s in CI
            from benchmarks._load_scenarios import webhook_burst

            results.append(webhook_burst(300 if args.quick else 15000,
                                         20.0 if args.quick else 50.0))
        elif name == "chat_concurrency":  # L4: 300 visitors by hand; 20 in CI
            from benchmarks._load_scenarios import chat_concurrency

            results.append(chat_concurrency(20 if args.quick else 300, 4 if args.quick else 20,
                                            3 if args.quick else 120, 30.0 if not args.quick
                                            else 5.0))
        elif name == "mixed_soak":  # L10: 20 min by hand (2 h with --soak-minutes 120)
            from benchmarks._load_scenarios import mixed_soak

            minutes = args.soak_minutes or (0.5 if args.quick else 20)
            results.append(mixed_soak(minutes * 60, 0.5, 2.0, 2.0))
        else:
            raise SystemExit(f"unknown scenario {name}")
    report = {"benchmark": "load", "variant": "quick" if args.quick else "full",
              "scenarios": results, "pass": all(r["pass"] for r in results),
              "notes": "generator and server share the machine; rates are pinned low"}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for r in results:
            print(r["scenario"], "pass" if r["pass"] else "FAIL", json.dumps(r, default=str))


if __name__ == "__main__":
    main()
