"""Scale-out on one machine: intake and routing with 1, 2 and 4 RQ workers, events across 2 web processes.

Part 1 (workers). A throwaway PostgreSQL database and a private redis-server. For each worker
count N, K raw API contacts are committed first (as the web tier's webhook path does), K
``intake.process_raw`` jobs are enqueued on the inbound queue, then N ``contactcenter worker
--burst`` processes drain them. Each job parses the payload, identifies the customer, threads or
creates the ticket, records events and puts the ticket in front of the router (20 available
agents in the queue, so offers and assignments happen too). Throughput is measured between the
first and the last ``processed_at`` stamped by the workers (process start-up excluded); CPU
seconds of the workers, of PostgreSQL's backends and of Redis are read from /proc, together with
PostgreSQL wait-event samples, to name the limit.

Part 2 (events). Two ``contactcenter web`` processes share Socket.IO through Redis. An agent's
socket is connected to web2 while contacts are posted to web1's API by a few client threads;
every ``ticket.created`` event's latency from the POST to its arrival on web2 is recorded.

Usage: ``benchmarks/scale.py --json`` (full), ``--quick`` (a small version). Needs PostgreSQL
(``--postgres-url``, an admin URL) and ``redis-server`` on the PATH. The machine is shared with
the generator, so figures are noisy and the client's CPU is part of the load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import latency_figures, machine, psycopg_url  # noqa: E402

BIN = Path(sys.executable).parent / "contactcenter"
DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children, from /proc (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLK


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def group_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of the whole machine."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class World:
    """The throwaway database, the private Redis and the environment for the processes."""

    def __init__(self, admin_url: str) -> None:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        self.tmp = Path(tempfile.mkdtemp(prefix="cc-scale-"))
        self.admin = psycopg_url(admin_url)
        self.name = f"bench_scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            self.pg_version = conn.execute("SHOW server_version").fetchone()[0]
        self.url = make_url(admin_url).set(database=self.name).render_as_string(False)
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        from redis import Redis

        client = Redis.from_url(self.redis_url)
        for _ in range(100):
            try:
                client.ping()
                break
            except Exception:
                time.sleep(0.05)
        client.close()
        from contactcenter.db import Database

        self.db = Database(self.url)
        self.db.upgrade()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
        env.update(CONTACTCENTER_DATA_DIR=str(self.tmp / "data"),
                   CONTACTCENTER_DATABASE_URL=self.url, CONTACTCENTER_REDIS_URL=self.redis_url,
                   CONTACTCENTER_SECRET_KEY="scale-benchmark-secret-key-0123456789")
        return env

    def settings(self) -> Any:
        from contactcenter.config import Settings

        return Settings.from_env(self.env())

    def close(self) -> None:
        import psycopg
        from psycopg import sql

        self.db.dispose()
        self.redis.kill()
        self.redis.wait()
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(self.name)))
        shutil.rmtree(self.tmp, ignore_errors=True)


def setup_routing(world: World, agents: int) -> tuple[int, list[int]]:
    """A queue with an inbox and ``agents`` available agents; return (inbox id, agent ids)."""
    from contactcenter.tickets.models import QueueMember
    from contactcenter.accounts.service import create_user
    from contactcenter.db import utcnow
    from contactcenter.routing.policy import load_policy
    from contactcenter.routing.sweep import commit_and_settle
    from contactcenter.routing.presence import set_presence
    from contactcenter.tickets.models import Inbox, Queue

    policy = load_policy(world.settings())
    with world.db.session() as session:
        queue = Queue(slug="scale", name="Scale")
        session.add(queue)
        session.flush()
        inbox = Inbox(name="Scale API", channel="api", address="scale-api", queue_id=queue.id)
        session.add(inbox)
        ids = []
        for n in range(agents):
            user = create_user(session, f"agent{n}@scale.test", f"Agent {n}",
                               "scale-password-123", ("agent",))
            session.add(QueueMember(queue_id=queue.id, user_id=user.id))
            ids.append(user.id)
        admin = create_user(session, "admin@scale.test", "Admin", "scale-password-123",
                            ("admin",))
        session.commit()
        for agent_id in ids:
            set_presence(session, agent_id, "available", utcnow(), policy)
            commit_and_settle(session, utcnow(), policy)
        del admin
        return inbox.id, ids


def contact_payload(tag: str, n: int) -> bytes:
    return json.dumps({"external_id": f"{tag}-{n}", "subject": f"Scale {tag} {n}",
                       "text": "The router blinks red since this morning. " * 5,
                       "from": {"kind": "email", "address": f"c{n % 5000}@{tag}.example.com",
                                "name": f"Customer {n}"}}).encode()


def store_raws(world: World, tag: str, count: int, inbox_id: int) -> list[int]:
    from contactcenter.tickets.models import RawInbound

    ids = []
    with world.db.session() as session:
        rows = [RawInbound(channel="api", external_id=f"{tag}-{n}", inbox_id=inbox_id,
                           payload=contact_payload(tag, n), content_type="application/json")
                for n in range(count)]
        session.add_all(rows)
        session.commit()
        ids = [r.id for r in rows]
    return ids


def pg_backend_pids(world: World) -> list[int]:
    import psycopg

    with psycopg.connect(psycopg_url(world.url)) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]


class WaitSampler(threading.Thread):
    """Sample PostgreSQL's wait events of this database's active backends every 50 ms."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.stop = threading.Event()
        self.samples = 0
        self.active = 0
        self.waits: dict[str, int] = {}

    def run(self) -> None:
        import psycopg

        with psycopg.connect(psycopg_url(self.world.url), autocommit=True) as conn:
            while not self.stop.wait(0.05):
                self.samples += 1
                for state, wtype, wevent in conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND state = 'active'"):
                    self.active += 1
                    if wtype and wtype != "Client":
                        key = f"{wtype}:{wevent}"
                        self.waits[key] = self.waits.get(key, 0) + 1


def run_workers(world: World, workers: int, count: int, inbox_id: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from contactcenter.jobs import RqJobQueue
    from contactcenter.routing.models import RoutingItem
    from contactcenter.tickets.models import RawInbound

    tag = f"w{workers}-{uuid.uuid4().hex[:6]}"
    raw_ids = store_raws(world, tag, count, inbox_id)
    queue = RqJobQueue(world.redis_url)
    pipe_start = time.perf_counter()
    for raw_id in raw_ids:
        queue.enqueue("intake.process_raw", raw_id)
    enqueue_s = time.perf_counter() - pipe_start
    queue.stop()
    redis_cpu0 = cpu_seconds(world.redis.pid)
    pg_before = {p: cpu_seconds(p) for p in pids_named("postgres")}
    busy0, total0 = machine_busy()
    sampler = WaitSampler(world)
    sampler.start()
    started = time.perf_counter()
    procs = [subprocess.Popen([str(BIN), "worker", "--queues", "inbound", "--burst"],
                              env=world.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    peak_cpu: dict[int, float] = {}
    while any(p.poll() is None for p in procs):
        for p in procs:  # RQ forks a work horse per job: the parent's waited children count
            peak_cpu[p.pid] = max(peak_cpu.get(p.pid, 0.0), cpu_seconds(p.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    busy1, total1 = machine_busy()
    # RQ's work horses are waited for by their worker: their CPU lands in the worker's cstime,
    # which /proc shows only while the worker lives; the last sample is the best we have.
    worker_cpu = sum(peak_cpu.values())
    pg_after = {p: cpu_seconds(p) for p in pids_named("postgres")}
    pg_cpu = sum(pg_after[p] - pg_before.get(p, 0.0) for p in pg_after)
    redis_cpu = cpu_seconds(world.redis.pid) - redis_cpu0
    with world.db.session() as session:
        first, last, done = session.execute(select(
            func.min(RawInbound.processed_at), func.max(RawInbound.processed_at),
            func.count()).where(RawInbound.external_id.like(f"{tag}-%"),
                                RawInbound.state == "processed")).one()
        routed = session.scalar(select(func.count()).select_from(RoutingItem))
    span = (last - first).total_seconds() if first and last and done > 1 else wall
    waits = sorted(sampler.waits.items(), key=lambda kv: -kv[1])[:5]
    machine_util = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    return {
        "workers": workers, "contacts": count, "processed": done,
        "enqueue_s": round(enqueue_s, 3), "wall_s_with_startup": round(wall, 2),
        "processing_span_s": round(span, 2),
        "contacts_per_s": round(done / span, 1) if span else None,
        "routing_items_total": routed,
        "cpu_seconds": {"workers": round(worker_cpu, 2), "postgres": round(pg_cpu, 2),
                        "redis": round(redis_cpu, 2)},
        # CPU per contact is the figure that survives a shared machine's noise: it says what
        # one contact costs each tier, whatever else the cores were doing meanwhile.
        "cpu_ms_per_contact": {
            "workers": round(worker_cpu * 1000 / done, 1) if done else None,
            "postgres": round(pg_cpu * 1000 / done, 1) if done else None,
            "redis": round(redis_cpu * 1000 / done, 1) if done else None},
        "cpu_share_of_machine": {
            "workers": round(worker_cpu / (wall * CORES), 3),
            "postgres": round(pg_cpu / (wall * CORES), 3),
            "redis": round(redis_cpu / (wall * CORES), 3)},
        "machine_cpu_busy": round(machine_util, 3),
        "postgres_active_backends_avg": round(sampler.active / max(sampler.samples, 1), 2),
        "postgres_wait_samples_top": dict(waits),
        "postgres_wait_fraction": round(sum(sampler.waits.values()) / max(sampler.active, 1), 3),
    }


def name_limit(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Name the bottleneck from what was measured at the largest worker count.

    The CPU each contact costs (workers + PostgreSQL + Redis) gives the machine's ceiling:
    ``cores x 1000 / ms per contact`` contacts/s if nothing else ran. Where the cores were
    saturated, that ceiling, not the number of workers, bounds the throughput.
    """
    top = rows[-1]
    busy = top["machine_cpu_busy"]
    shares = top["cpu_share_of_machine"]
    wait = top["postgres_wait_fraction"]
    per = top.get("cpu_ms_per_contact") or {}
    total_ms = sum(v or 0 for v in per.values())
    ceiling = round(CORES * 1000 / total_ms, 1) if total_ms else None
    base = rows[0]["contacts_per_s"] or 1
    gains = {str(r["workers"]): round((r["contacts_per_s"] or 0) / base, 2) for r in rows}
    costs = (f"one contact costs {per.get('workers')} ms of worker CPU, {per.get('postgres')} ms "
             f"of PostgreSQL and {per.get('redis')} ms of Redis, so {CORES} cores could do at "
             f"most {ceiling} contacts/s")
    ours = shares["workers"] + shares["postgres"] + shares["redis"]
    if wait >= 0.3 and ours < 0.85:
        # The cores may be busy (a shared machine), but our own processes used well under
        # them while most database work sat waiting: row locks, not CPU, held the workers.
        limit = "database"
        why = (f"{wait:.0%} of active PostgreSQL backend samples were waiting "
               f"({', '.join(top['postgres_wait_samples_top'])}) with {top['workers']} "
               f"workers, while the workers, PostgreSQL and Redis together used {ours:.0%} of "
               f"the machine ({busy:.0%} busy in all); {costs}")
    elif busy >= 0.85:
        limit = "CPU"
        why = (f"the machine's {CORES} cores were {busy:.0%} busy with {top['workers']} workers "
               f"(workers {shares['workers']:.0%}, PostgreSQL {shares['postgres']:.0%}, Redis "
               f"{shares['redis']:.0%} of the machine; the rest is other processes); {costs}; "
               "more processes only share the same cores")
    elif shares["redis"] >= 0.3:
        limit = "Redis"
        why = f"redis-server used {shares['redis']:.0%} of the machine; {costs}"
    else:
        limit = "CPU"
        why = (f"no resource saturated ({busy:.0%} CPU busy, {wait:.0%} PostgreSQL waits); "
               f"{costs}")
    return {"limit": limit, "why": why, "speedup_vs_1_worker": gains,
            "cpu_ceiling_contacts_per_s": ceiling}


def run_events(world: World, count: int, clients: int) -> dict[str, Any]:
    """Post contacts to web1; time their ticket.created events arriving on web2's socket."""
    import requests
    import socketio

    ports = [free_port(), free_port()]
    logs = [open(world.tmp / f"web{n}.log", "wb") for n in (1, 2)]  # noqa: SIM115
    procs = [subprocess.Popen([str(BIN), "web", "--bind", f"127.0.0.1:{p}", "--threads", "32"],
                              env=world.env(), stdout=log, stderr=subprocess.STDOUT)
             for p, log in zip(ports, logs)]
    web1, web2 = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        for base in (web1, web2):
            deadline = time.monotonic() + 120  # a loaded 2-core machine starts slowly
            while True:
                try:
                    if requests.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    tail = b"".join((world.tmp / f"web{n}.log").read_bytes()[-1500:]
                                    for n in (1, 2)).decode(errors="replace")
                    raise RuntimeError(f"{base} not ready: {tail}")
                time.sleep(0.2)
        from contactcenter.accounts.models import User
        from contactcenter.accounts.service import issue_token

        with world.db.session() as session:
            from sqlalchemy import select

            admin = session.scalar(select(User).where(User.email == "admin@scale.test"))
            token = issue_token(session, admin, "scale")
            session.commit()
        browser = requests.Session()
        form = browser.get(web2 + "/login", timeout=5).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf, "no login form"
        browser.post(web2 + "/login", data={"csrf_token": csrf.group(1),
                                            "email": "admin@scale.test",
                                            "password": "scale-password-123"}, timeout=10)
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        done = threading.Event()
        sio = socketio.Client(reconnection=False)

        @sio.on("event", namespace="/agent")
        def on_event(data: dict[str, Any]) -> None:
            if data.get("type") == "ticket.created":
                subject = str(data["payload"].get("subject", ""))
                arrived.setdefault(subject, time.perf_counter())
                if len(arrived) >= count:
                    done.set()

        sio.connect(web2, namespaces=["/agent"], transports=["websocket"],
                    headers={"Cookie": cookie}, wait_timeout=10)
        tag = f"ev-{uuid.uuid4().hex[:6]}"
        errors = 0
        statuses: dict[str, int] = {}
        lock = threading.Lock()

        def post_some(offset: int) -> None:
            nonlocal errors
            http = requests.Session()
            for n in range(offset, count, clients):
                body = json.loads(contact_payload(tag, n))
                sent[body["subject"]] = time.perf_counter()
                try:
                    answer = http.post(web1 + "/api/v1/contacts", json=body, timeout=30,
                                       headers={"Authorization": f"Bearer {token}"})
                    if answer.status_code >= 300:
                        with lock:
                            errors += 1
                            statuses[str(answer.status_code)] = statuses.get(
                                str(answer.status_code), 0) + 1
                except requests.RequestException as exc:
                    with lock:
                        errors += 1
                        statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1

        start = time.perf_counter()
        threads = [threading.Thread(target=post_some, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        posted_s = time.perf_counter() - start
        done.wait(30)
        elapsed = max(arrived.values(), default=start) - start
        sio.disconnect()
        latencies = [arrived[s] - sent[s] for s in sent if s in arrived]
        return {"contacts_posted": count, "post_clients": clients, "post_errors": errors,
                "post_error_kinds": statuses,
                "events_delivered_on_web2": len(latencies),
                "lost": count - len(latencies),
                "posts_per_s": round(count / posted_s, 1),
                "events_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
                "delivery_latency": latency_figures(latencies)}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a small, fast version")
    parser.add_argument("--contacts", type=int, default=None,
                        help="contacts per worker count (default 300, quick 60)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--events", type=int, default=None,
                        help="contacts posted for event delivery (default 600, quick 60)")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--no-events", action="store_true",
                        help="measure the workers only (skip the two web processes)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args()
    count = args.contacts or (60 if args.quick else 300)
    events = args.events or (60 if args.quick else 600)
    world = World(args.postgres_url)
    try:
        inbox_id, _agents = setup_routing(world, args.agents)
        rows = []
        for n in args.workers.split(","):
            rows.append(run_workers(world, int(n), count, inbox_id))
            print(f"{n} worker(s): {rows[-1]['contacts_per_s']} contacts/s", file=sys.stderr)
        report = {
            "benchmark": "scale",
            "variant": "quick" if args.quick else "full",
            "backend": "postgres",
            "intake_and_routing": rows,
            "baseline_1_worker_contacts_per_s": rows[0]["contacts_per_s"],
            "ratio_to_1_worker": {str(r["workers"]): round(
                (r["contacts_per_s"] or 0) / (rows[0]["contacts_per_s"] or 1), 2) for r in rows},
            "limit": name_limit(rows),
            "event_delivery_two_web_processes": (
                {"skipped": True} if args.no_events else run_events(world, events, clients=4)),
            "notes": ("One machine runs the generator, PostgreSQL, Redis and every process; "
                      "figures are noisy and include the client's CPU in the machine load."),
            "machine": machine(world.pg_version),
        }
    finally:
        world.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for row in report["intake_and_routing"]:
            print(f"{row['workers']} worker(s): {row['contacts_per_s']} contacts/s, "
                  f"machine CPU {row['machine_cpu_busy']:.0%}")
        print("limit:", report["limit"]["limit"], "-", report["limit"]["why"])
        ev = report["event_delivery_two_web_processes"]
        if not ev.get("skipped"):
            print(f"events web1 -> web2: {ev['events_delivered_on_web2']}/{ev['contacts_posted']}, "
                  f"p95 {ev['delivery_latency'].get('p95_ms')} ms")


if __name__ == "__main__":
    main()
