"""Measure the agent desktop: live event delivery to connected agents, and workspace render.

Usage::

    .venv/bin/python benchmarks/desktop.py --json            # 300 agents, all variants
    .venv/bin/python benchmarks/desktop.py --quick --json    # smoke run: embedded + SQLite only
    .venv/bin/python benchmarks/desktop.py --quick --all-variants --keep   # keep the logs
    .venv/bin/python benchmarks/desktop.py --agents 100 --events 50 --skip-redis --skip-postgres

On the shared 2-core machine (load average 8-15 from other work) the full run took about
3 minutes and ``--quick`` 30-45 s; both are mostly fixed costs (server start-up, 300
sign-ins, seeding through the product). Progress goes to stderr.

**Live events** (``live_events``): the real product runs in a process of its own as
production runs it (``contactcenter serve``: gunicorn gthread, one worker, Flask-SocketIO
in threading mode, ``--threads`` = agents + 64, a SQLite file database in a temp data
folder, ``CONTACTCENTER_TESTING=true`` so that no periodic job runs). ``--agents`` agents
of one queue are created first with the models; each then signs in through the login
form with its own HTTP session and connects a real ``socketio.Client`` (websocket
transport) to the ``/agent`` namespace with that cookie, from ``--client-procs`` client
processes (``_desktop_world.py clients``). Then, one at a time (the next once every
agent has the previous one, after ``warmup`` untimed ones), events are committed:

- ``embedded``: ``POST /api/v1/contacts`` with a bearer token appends a message to a
  ticket of the agents' queue; intake commits and the server publishes
  ``message.created`` to ``queue:<id>`` (among its rooms) after the commit;
- ``redis``: the same server with ``CONTACTCENTER_REDIS_URL`` (a private
  ``redis-server`` on a free port, dropped at the end); the benchmark process commits
  ``record_event`` rows into the same database through a ``Database`` whose on-commit
  hook publishes with ``SocketIOPublisher(SocketIO(message_queue=url))``, as worker
  processes do (``contactcenter.app.build_job_context``).

Latency (``p50_ms``... at the top of a variant) runs from the end of the COMMIT to the
client's ``time.time()`` on receipt, for every agent and event (same machine, same
clock). To know when COMMIT returned, the served process (and, for ``redis``, the
benchmark's ``Database``) carries one listener of ours: at ``after_commit``, ahead of
the product's publishing hook, it writes ``time.time()`` into each committed event's
payload as ``bench_committed_at`` (in memory; the stored row is unchanged).
``event_at_to_client`` starts at the envelope's ``at`` instead (the row's ``created_at``,
stamped when the row is inserted: in the API path routing and hooks still run after
that in the same transaction), ``request_to_client`` when the trigger was sent.
``fanout_spread_ms`` is, per event, the last agent's receipt minus the first's.
``deliveries_per_s`` counts deliveries over the time from each trigger until the last
agent had it; ``burst`` sends ``burst_events`` triggers back to back without waiting.

**Baseline** (``baseline`` in each variant, ``ratio_to_baseline`` = p50 / baseline p50):
for ``embedded`` the bare Socket.IO fan-out floor: a Flask-SocketIO app with nothing
else under the same gunicorn gthread settings (``_desktop_world.py floor-server``) to
which the same number of the same clients connect (no sign-in), where ``POST /emit``
emits a timestamped envelope to the same rooms; for ``redis`` a timestamped envelope
emitted straight through Redis by the same write-only ``SocketIO`` without any
database, interleaved with the product's events on the same server and clients.

**Workspace render** (``workspace``): in this process, the Flask test client of
``create_app`` on SQLite (file, WAL) and on a throwaway PostgreSQL database; one
customer with ``50`` earlier tickets (email, chat, phone, SMS, WhatsApp, form, API;
most solved or closed) and a ticket of ``200`` messages (inbound over four channels,
some HTML, some attachments; replies and internal notes), all written through the
product (``ingest_inbound``, ``add_reply``, ``change_status``) on SQLite, plus other
customers' tickets in the queue; the PostgreSQL database (created and migrated while
SQLite is seeded) gets a row-for-row copy and ``ANALYZE``. An ordinary agent of the queue signs in; ``GET
/desk/api/tickets/<n>/workspace`` is timed (warm-up first). ``baseline``: the bare
queries the view needs (the ticket, its messages and their attachments, the customer and
identities, the customer's other tickets and their channels) with SQLAlchemy Core on
one connection, interleaved with the requests.

Sign-in passwords are hashed with cheap argon2 parameters in the benchmark and in the
served process (as ``tests/conftest.py`` does), so that 300 sign-ins take seconds; no
measured path hashes a password. The machine (2 cores) is shared: ``machine`` records
the load average, and every client runs on the same cores as the server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORLD = HERE / "_desktop_world.py"
sys.path.insert(0, str(HERE))

from _common import latency_figures, machine  # noqa: E402
from _desktop_world import (  # noqa: E402
    PASSWORD,
    STAMP,
    build_workspace_world,
    install_commit_stamp,
)

DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AGENT_EMAIL = "agent{:04d}@desk.bench"
CUSTOMER_EMAIL = "anna.petrova@example.com"
SECRET = "desk-benchmark-secret-key-0123456789"
# Starts the product's own `contactcenter serve` after making argon2 cheap (sign-in only)
# and installing the commit stamp (see _desktop_world.install_commit_stamp).
BOOT = """
import sys
sys.path.insert(0, sys.argv[4])
from sqlalchemy.orm import Session
from _desktop_world import install_commit_stamp
install_commit_stamp(Session)
from argon2 import PasswordHasher
from contactcenter.accounts import service
cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
service._hasher = cheap
service._DUMMY_HASH = cheap.hash("not-a-real-password-at-all")
from contactcenter.cli import main
main(["serve", "--port", sys.argv[1], "--smtp-port", sys.argv[2], "--threads", sys.argv[3]],
     prog_name="contactcenter")
"""


def log(message: str) -> None:
    print(f"[desktop {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cheap_passwords() -> None:
    """Hash passwords with cheap argon2 parameters in this process (as the tests do)."""
    from argon2 import PasswordHasher

    from contactcenter.accounts import service

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    service._hasher = cheap  # type: ignore[attr-defined]
    service._DUMMY_HASH = cheap.hash("not-a-real-password-at-all")  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port} after {timeout} s")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def iso_ts(value: str) -> float:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --- processes this benchmark starts -------------------------------------------------------

class Proc:
    """A process started in a session (process group) of its own; stopped by its group id."""

    def __init__(self, name: str, args: list[str], logfile: Path, env: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        self.name = name
        self.logfile = logfile
        self._log = open(logfile, "w")  # noqa: SIM115 - closed in stop()
        self._lock = threading.Lock()
        self.popen = subprocess.Popen(args, stdout=kwargs.pop("stdout", self._log),
                                      stderr=self._log, env=env, cwd=REPO,
                                      start_new_session=True, **kwargs)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after ``grace``; safe to call more than once.

        The group is only signalled while its leader is not yet reaped, so its id cannot
        belong to anyone else by then.
        """
        with self._lock:
            if self.popen.poll() is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(grace)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.popen.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.popen.wait(5)
            if not self._log.closed:
                self._log.close()


class Fleet:
    """The agents' Socket.IO clients, spread over a few client processes."""

    def __init__(self, url: str, agents: int, procs: int, login: bool, workdir: Path,
                 tag: str, connect_threads: int = 6) -> None:
        self.url, self.agents, self.login = url, agents, login
        self.workdir, self.tag = workdir, tag
        self.procs = max(1, min(procs, agents))
        self.connect_threads = connect_threads
        self.cond = threading.Condition()
        self.ready: dict[int, dict[str, Any]] = {}
        self.bye: dict[int, dict[str, Any]] = {}
        self.done: Counter[str] = Counter()
        self.done_at: dict[str, float] = {}
        self.workers: list[Proc] = []
        self.active = 0

    def _read(self, index: int, proc: Proc) -> None:
        assert proc.popen.stdout is not None
        for line in proc.popen.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                if "done" in obj:
                    self.done[obj["done"]] += 1
                    if self.done[obj["done"]] >= self.active:
                        self.done_at[obj["done"]] = time.time()
                elif "ready" in obj:
                    self.ready[index] = obj
                elif "bye" in obj:
                    self.bye[index] = obj
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def start(self, timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        share, extra = divmod(self.agents, self.procs)
        first = 1
        for w in range(self.procs):
            count = share + (1 if w < extra else 0)
            args = [sys.executable, str(WORLD), "clients", "--url", self.url,
                    "--email-format", AGENT_EMAIL, "--first", str(first), "--count", str(count),
                    "--records", str(self.workdir / f"{self.tag}-records-{w}.json"),
                    "--connect-threads", str(self.connect_threads)]
            if self.login:
                args.append("--login")
            proc = Proc(f"clients-{w}", args, self.workdir / f"{self.tag}-clients-{w}.log",
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            self.workers.append(proc)
            threading.Thread(target=self._read, args=(w, proc), daemon=True).start()
            first += count
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.ready) < self.procs:
                if any(p.popen.poll() is not None for p in self.workers):
                    dead = next(p for p in self.workers if p.popen.poll() is not None)
                    raise RuntimeError(f"{dead.name} exited: {tail(dead.logfile)}")
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"clients not connected after {timeout} s "
                                       f"({len(self.ready)}/{self.procs} processes ready)")
                self.cond.wait(min(left, 0.5))
        self.active = sum(1 for r in self.ready.values() if r["ready"] > 0)
        connected = sum(r["ready"] for r in self.ready.values())
        sign_in = [x for r in self.ready.values() for x in r["sign_in_s"]]
        connect = [x for r in self.ready.values() for x in r["connect_s"]]
        info = {"agents_connected": connected,
                "agents_failed": sum(r["failed"] for r in self.ready.values()),
                "connect_wall_s": round(time.perf_counter() - t0, 2),
                "connect_p50_ms": latency_figures(connect).get("p50_ms")}
        if self.login:
            info["sign_in_p50_ms"] = latency_figures(sign_in).get("p50_ms")
        errors = [e for r in self.ready.values() for e in r["errors"]]
        if errors:
            info["connect_errors"] = errors[:3]
        self.connected = connected
        return info

    def wait(self, key: str, timeout: float) -> float | None:
        """Wait until every client has the marker event ``key``; return when (or None)."""
        end = time.monotonic() + timeout
        with self.cond:
            while self.done[key] < self.active:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.done_at.get(key, time.time())

    def stop(self, timeout: float = 30.0) -> tuple[list[list[Any]], int]:
        """Ask every client process for what it received; return records and disconnects."""
        for proc in self.workers:
            if proc.popen.poll() is None and proc.popen.stdin is not None:
                try:
                    proc.popen.stdin.write("stop\n")
                    proc.popen.stdin.flush()
                except OSError:
                    pass
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.bye) < len(self.workers):
                left = end - time.monotonic()
                if left <= 0 or all(p.popen.poll() is not None for p in self.workers
                                    if self.workers.index(p) not in self.bye):
                    break
                self.cond.wait(min(left, 0.5))
        records: list[list[Any]] = []
        disconnects = 0
        for w in range(len(self.workers)):
            path = self.workdir / f"{self.tag}-records-{w}.json"
            if path.exists():
                data = json.loads(path.read_text())
                records.extend(data["records"])
                disconnects += data["disconnects"]
        return records, disconnects

    def kill(self) -> None:
        for proc in self.workers:
            proc.stop(grace=2)


# --- the live-event measurement ------------------------------------------------------------

Trigger = Callable[[int], tuple[str, float]]  # i -> (marker key, time.time() when sent)


def drive(fleet: Fleet, triggers: dict[str, Trigger], events: int, warmup: int, burst: int,
          timeout: float) -> dict[str, dict[str, Any]]:
    """Send the triggers one at a time (each name in turn), then a burst of each."""
    plan: dict[str, dict[str, Any]] = {
        name: {"keys": [], "sent": {}, "busy_s": 0.0, "missed": 0, "burst_keys": [],
               "burst_window": (0.0, 0.0)} for name in triggers}
    names = list(triggers)
    for i in range(warmup + events):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.time()
            key, sent = triggers[name](i)
            got = fleet.wait(key, timeout)
            p = plan[name]
            p["sent"][key] = sent
            if got is None:
                p["missed"] += 1
            if i >= warmup:
                p["keys"].append(key)
                p["busy_s"] += (got or time.time()) - t0
    base = warmup + events
    for name in names:
        p = plan[name]
        t0 = time.time()
        keys = []
        for j in range(burst):
            key, sent = triggers[name](base + j)
            p["sent"][key] = sent
            keys.append(key)
        last = t0
        for key in keys:
            got = fleet.wait(key, timeout)
            if got is None:
                p["missed"] += 1
            last = max(last, got or time.time())
        p["burst_keys"] = keys
        p["burst_window"] = (t0, last)
        base += burst
    return plan


def figures(records: list[list[Any]], keys: list[str], sent: dict[str, float],
            agents: int) -> dict[str, Any]:
    """Latency of every delivery of the given marker events."""
    by_key: dict[str, list[tuple[float, float | None, float | None]]] = defaultdict(list)
    wanted = set(keys)
    for received, _kind, key, at, committed in records:
        if key in wanted:
            by_key[key].append((received, committed, iso_ts(at) if at else None))
    commit, from_at, request, spread = [], [], [], []
    for key in keys:
        rows = by_key.get(key, [])
        for received, committed, at in rows:
            if committed is not None:
                commit.append(received - committed)
            if at is not None:
                from_at.append(received - at)
            request.append(received - sent[key])
        if rows:
            times = [r for r, _, _ in rows]
            spread.append(max(times) - min(times))
    expected = agents * len(keys)
    return {"events": len(keys), "deliveries": len(request),
            "missing_deliveries": expected - len(request),
            "deliveries_without_commit_stamp": len(request) - len(commit),
            **latency_figures(commit),
            "request_to_client": latency_figures(request),
            "event_at_to_client": latency_figures(from_at),
            "fanout_spread_ms": {k: v for k, v in latency_figures(spread).items()
                                 if k in ("p50_ms", "p95_ms", "max_ms")}}


def summarise(records: list[list[Any]], plan: dict[str, Any], agents: int) -> dict[str, Any]:
    result = figures(records, plan["keys"], plan["sent"], agents)
    result["deliveries_per_s"] = (round(result["deliveries"] / plan["busy_s"], 1)
                                  if plan["busy_s"] else None)
    result["events_per_s"] = (round(len(plan["keys"]) / plan["busy_s"], 2)
                              if plan["busy_s"] else None)
    if plan["burst_keys"]:
        burst = figures(records, plan["burst_keys"], plan["sent"], agents)
        t0, t1 = plan["burst_window"]
        result["burst"] = {"events": burst["events"], "deliveries": burst["deliveries"],
                           "missing_deliveries": burst["missing_deliveries"],
                           "deliveries_per_s": round(burst["deliveries"] / (t1 - t0), 1)
                           if t1 > t0 else None,
                           "wall_s": round(t1 - t0, 3),
                           **{k: burst[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
                              if k in burst}}
    result["events_not_complete_within_timeout"] = plan["missed"]
    return result


def seed_live_world(data_dir: Path, agents: int) -> dict[str, Any]:
    """Agents of one queue, an integrator with a token, and one ticket in the queue."""
    from contactcenter.accounts.service import create_user, issue_token
    from contactcenter.channels.base import Identity, InboundContact, ThreadHints
    from contactcenter.config import Settings
    from contactcenter.db import Database
    from contactcenter.tickets.intake import ingest_inbound
    from contactcenter.tickets.models import Inbox, Queue, QueueMember

    t0 = time.perf_counter()
    settings = Settings(data_dir=data_dir, testing=True)
    db = Database(settings.effective_database_url)
    try:
        db.upgrade()
        with db.session() as s:
            queue = Queue(slug="support", name="Support")
            s.add(queue)
            s.flush()
            inbox = Inbox(name="Support mail", channel="email", address="support@desk.bench",
                          queue_id=queue.id)
            s.add(inbox)
            for i in range(1, agents + 1):
                user = create_user(s, AGENT_EMAIL.format(i), f"Agent {i}", PASSWORD, ["agent"])
                s.add(QueueMember(queue_id=queue.id, user_id=user.id))
            admin = create_user(s, "integrator@desk.bench", "Integrator", PASSWORD, ["admin"])
            token = issue_token(s, admin, "desk benchmark")
            s.commit()
            queue_id, inbox_id = queue.id, inbox.id
        with db.session() as s:
            result = ingest_inbound(s, InboundContact(
                channel="email", external_id="desk-bench-seed",
                sender=Identity("email", CUSTOMER_EMAIL, "Anna Petrova"),
                subject="Router keeps rebooting", text="It reboots every ten minutes.",
                inbox_id=inbox_id, thread=ThreadHints(thread_on_open_ticket=False)),
                settings=settings)
        return {"database_url": settings.effective_database_url, "token": token,
                "queue_id": queue_id, "ticket_id": result.ticket_id,
                "ticket_number": result.ticket_number, "customer_id": result.customer_id,
                "seed_s": round(time.perf_counter() - t0, 2)}
    finally:
        db.dispose()


def launch_product(workdir: Path, data_dir: Path, threads: int, tag: str,
                   redis_url: str | None = None) -> tuple[Proc, str]:
    """Start ``contactcenter serve`` (not waiting for it); return the process and its URL."""
    port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env.update({"CONTACTCENTER_DATA_DIR": str(data_dir), "CONTACTCENTER_TESTING": "true",
                "PYTHONUNBUFFERED": "1", **private_runtime_dir(workdir, tag)})
    if redis_url:
        env.update({"CONTACTCENTER_REDIS_URL": redis_url, "CONTACTCENTER_SECRET_KEY": SECRET})
    proc = Proc(f"serve-{tag}", [sys.executable, "-c", BOOT, str(port), str(smtp_port),
                                 str(threads), str(HERE)], workdir / f"serve-{tag}.log", env=env)
    proc.started = time.perf_counter()  # type: ignore[attr-defined]
    return proc, f"http://127.0.0.1:{port}"


def ready(proc: Proc, url: str, timeout: float = 90.0) -> None:
    if getattr(proc, "answered", False):
        return
    wait_http(f"{url}/healthz", timeout, proc)
    proc.answered = True  # type: ignore[attr-defined]
    took = time.perf_counter() - getattr(proc, "started", time.perf_counter())
    log(f"{proc.name}: answering ({took:.1f} s after start)")


def private_runtime_dir(workdir: Path, tag: str) -> dict[str, str]:
    """Give a gunicorn of ours its own XDG_RUNTIME_DIR.

    gunicorn 27 opens a control socket at ``$XDG_RUNTIME_DIR/gunicorn.ctl`` (else
    ``~/.gunicorn/gunicorn.ctl``); a private folder keeps ours from taking over, or
    removing, the socket of anyone else's server on this machine.
    """
    path = workdir / f"run-{tag}"
    path.mkdir(mode=0o700, exist_ok=True)
    return {"XDG_RUNTIME_DIR": str(path)}


def wait_http(url: str, timeout: float, proc: Proc) -> None:
    import requests

    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}): "
                               f"{tail(proc.logfile)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url} not answering after {timeout} s ({last}): {tail(proc.logfile)}")


def live_phase(name: str, workdir: Path, url: str, agents: int, args: argparse.Namespace,
               login: bool, make_triggers: Callable[[], dict[str, Trigger]],
               before_events: Callable[[], None] | None = None) -> dict[str, Any]:
    """Connect the agents, (let ``before_events`` finish), drive the triggers, collect."""
    fleet = Fleet(url, agents, args.client_procs, login, workdir, name)
    try:
        log(f"{name}: connecting {agents} agents from {fleet.procs} client processes")
        info = fleet.start(timeout=args.connect_timeout)
        log(f"{name}: {info['agents_connected']} connected in {info['connect_wall_s']} s")
        if before_events is not None:
            before_events()
        triggers = make_triggers()
        log(f"{name}: sending {args.warmup_events}+{args.events} events one at a time, then "
            f"a burst of {args.burst_events}")
        plan = drive(fleet, triggers, args.events, args.warmup_events, args.burst_events,
                     args.event_timeout)
        log(f"{name}: collecting what the clients received")
        records, disconnects = fleet.stop()
    finally:
        fleet.kill()
    markers = {"message.created", "floor"}
    others = Counter(r[1] for r in records if r[1] not in markers)
    out: dict[str, Any] = {}
    for trig in triggers:
        out[trig] = summarise(records, plan[trig], fleet.connected)
    out["_clients"] = {**info, "client_processes": fleet.procs,
                       "unexpected_disconnects": disconnects,
                       "other_events_received": dict(others)}
    return out


class Background:
    """Stop processes on threads of their own while the run goes on; join before timing."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def stop(self, *procs: Proc | None) -> None:
        """Stop the processes one after the other (a server before its Redis) on a thread."""
        def run() -> None:
            for proc in procs:
                if proc is not None:
                    proc.stop()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
        self.threads.clear()


def measure_live(args: argparse.Namespace, root: Path, background: Background
                 ) -> dict[str, Any]:
    """Floor, embedded and redis, one after the other on the same clients' code.

    Servers boot and shut down while nothing is being timed: the next variant's server
    starts while the current one's clients connect and must answer before its events
    start; a finished server is stopped on a thread while the next clients connect.
    """
    import requests

    agents = args.agents
    threads = agents + 64
    data_dir = root / "live-data"
    report: dict[str, Any] = {}
    procs: list[Proc | None] = []
    world: dict[str, Any] = {}
    try:
        floor_port = free_port()
        floor = Proc("floor", [sys.executable, str(WORLD), "floor-server", "--port",
                               str(floor_port), "--threads", str(threads)], root / "floor.log",
                     env={**os.environ, **private_runtime_dir(root, "floor")})
        floor.started = time.perf_counter()  # type: ignore[attr-defined]
        procs.append(floor)
        floor_url = f"http://127.0.0.1:{floor_port}"
        log(f"seeding {agents} agents")
        world = seed_live_world(data_dir, agents)
        log(f"seeded in {world['seed_s']} s")
        embedded, embedded_url = launch_product(root, data_dir, threads, "embedded")
        procs.append(embedded)
        floor_block: dict[str, Any] | None = None

        # -- the floor: a bare Flask-SocketIO server under the same gunicorn settings
        try:
            ready(floor, floor_url)
            http = requests.Session()

            def floor_triggers() -> dict[str, Trigger]:
                def emit(i: int) -> tuple[str, float]:
                    sent = time.time()
                    http.post(f"{floor_url}/emit", json={"seq": i}, timeout=30
                              ).raise_for_status()
                    return f"floor:{i}", sent
                return {"floor": emit}

            got = live_phase("floor", root, floor_url, agents, args, False, floor_triggers,
                             before_events=lambda: ready(embedded, embedded_url))
            floor_block = {
                "server": "Flask-SocketIO app with nothing else (threading mode) under "
                          f"gunicorn gthread, 1 worker, {threads} threads",
                "trigger": "POST /emit: emit one envelope to the rooms the clients joined on "
                           "connect (no sign-in, no database)",
                **got["floor"], "clients": got["_clients"]}
        except Exception as exc:  # noqa: BLE001 - reported; the product variants still run
            floor_block = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"floor failed: {exc}")
        background.stop(floor)

        # -- the next variant's server boots while the embedded clients connect
        redis_proc = redis_product = None
        redis_url = redis_product_url = ""
        redis_reason = None
        if args.skip_redis:
            redis_reason = args.skip_redis_reason
        elif shutil.which("redis-server") is None:
            redis_reason = "redis-server not installed"
        else:
            redis_port = free_port()
            (root / "redis").mkdir()
            redis_proc = Proc("redis", ["redis-server", "--port", str(redis_port), "--bind",
                                        "127.0.0.1", "--save", "", "--appendonly", "no",
                                        "--dir", str(root / "redis")], root / "redis.log")
            procs.append(redis_proc)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            wait_port(redis_port, 10, redis_proc.popen)
            redis_product, redis_product_url = launch_product(root, data_dir, threads, "redis",
                                                              redis_url=redis_url)
            procs.append(redis_product)

        # -- embedded: the product on SQLite, events committed by the server itself
        try:
            ready(embedded, embedded_url)
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {world['token']}"
            run = uuid.uuid4().hex[:8]

            def product_triggers() -> dict[str, Trigger]:
                def post(i: int) -> tuple[str, float]:
                    body = {"external_id": f"desk-bench-{run}-{i}",
                            "from": {"kind": "email", "address": CUSTOMER_EMAIL,
                                     "name": "Anna Petrova"},
                            "subject": f"Still rebooting ({i})",
                            "text": f"Update {i}: it rebooted again after the firmware update.",
                            "ticket_number": world["ticket_number"]}
                    sent = time.time()
                    answer = api.post(f"{embedded_url}/api/v1/contacts", json=body, timeout=30)
                    answer.raise_for_status()
                    data = answer.json()
                    if data.get("status") != "appended":
                        raise RuntimeError(f"intake answered {data}")
                    return f"message.created:{data['message_id']}", sent
                return {"embedded": post}

            def redis_ready() -> None:
                if redis_product is not None:
                    ready(redis_product, redis_product_url)

            got = live_phase("embedded", root, embedded_url, agents, args, True,
                             product_triggers, before_events=redis_ready)
            block = {"server": f"contactcenter serve (gunicorn gthread, 1 worker, {threads} "
                               "threads), SQLite WAL file, no Redis, CONTACTCENTER_TESTING=true",
                     "trigger": "POST /api/v1/contacts (bearer token) appending a message to a "
                                "ticket of the agents' queue: intake commits, the server "
                                "publishes message.created to the ticket/customer/queue/"
                                "supervisors rooms after the commit",
                     **got["embedded"], "clients": got["_clients"]}
            block["baseline"] = floor_block
            if floor_block is not None and "p50_ms" in floor_block and "p50_ms" in block:
                block["ratio_to_baseline"] = round(block["p50_ms"] / floor_block["p50_ms"], 3)
                block["ratio_to_baseline_p99"] = round(block["p99_ms"] / floor_block["p99_ms"],
                                                       3)
                block["ratio_to_baseline_request_to_client_p50"] = round(
                    block["request_to_client"]["p50_ms"]
                    / floor_block["request_to_client"]["p50_ms"], 3)
            report["embedded"] = block
        except Exception as exc:  # noqa: BLE001
            log(f"embedded failed: {exc}")
            report["embedded"] = {"error": f"{type(exc).__name__}: {exc}",
                                  "baseline": floor_block}
        background.stop(embedded)

        # -- redis: the same server behind Redis; events committed in this process
        if redis_product is None:
            report["redis"] = {"skipped": True, "reason": redis_reason}
        else:
            try:
                ready(redis_product, redis_product_url)
                report["redis"] = measure_redis(args, root, redis_product_url, redis_url, world,
                                                threads)
            except Exception as exc:  # noqa: BLE001
                log(f"redis failed: {exc}")
                report["redis"] = {"error": f"{type(exc).__name__}: {exc}"}
            background.stop(redis_product, redis_proc)
    finally:
        background.stop(*procs)  # those already stopping are not stopped twice
    report["world"] = {"agents": agents, "queue_id": world.get("queue_id"),
                       "ticket_number": world.get("ticket_number"),
                       "seed_s": world.get("seed_s"),
                       "password_hashing": "argon2 time_cost=1, memory_cost=1024 in the seeding "
                                           "and served processes (sign-in only, not timed)"}
    return report


def measure_redis(args: argparse.Namespace, root: Path, url: str, redis_url: str,
                  world: dict[str, Any], threads: int) -> dict[str, Any]:
    from flask_socketio import SocketIO

    from contactcenter.db import Database
    from contactcenter.events import SocketIOPublisher, publish_pending, record_event

    writer = SocketIO(message_queue=redis_url)
    publisher = SocketIOPublisher(writer)
    db = Database(world["database_url"])
    db.on_commit(lambda rows: publish_pending(publisher, rows))
    install_commit_stamp(db.sessionmaker)
    rooms = [f"ticket:{world['ticket_id']}", f"customer:{world['customer_id']}",
             f"queue:{world['queue_id']}"]
    try:
        def triggers() -> dict[str, Trigger]:
            def commit(i: int) -> tuple[str, float]:
                sent = time.time()
                with db.session() as s:
                    record_event(s, "message.created",
                                 {"ticket_id": world["ticket_id"],
                                  "number": world["ticket_number"], "message_id": None,
                                  "direction": "inbound", "channel": "api",
                                  "customer_id": world["customer_id"], "seq": i}, rooms)
                    s.commit()
                return f"message.created:{i}", sent

            def emit(i: int) -> tuple[str, float]:
                sent = time.time()
                writer.emit("event", {"id": -i, "type": "floor",
                                      "rooms": rooms + ["supervisors"],
                                      "payload": {"seq": i, STAMP: time.time()},
                                      "at": dt.datetime.now(dt.UTC).isoformat()},
                            to=rooms + ["supervisors"], namespace="/agent")
                return f"floor:{i}", sent
            return {"redis": commit, "baseline": emit}

        got = live_phase("redis", root, url, args.agents, args, True, triggers)
    finally:
        db.dispose()
    block = {"server": f"contactcenter serve (gunicorn gthread, 1 worker, {threads} threads) "
                       "with CONTACTCENTER_REDIS_URL (a private redis-server), SQLite WAL file",
             "trigger": "record_event + commit in the benchmark process; its Database's "
                        "on-commit hook publishes through SocketIO(message_queue=redis)",
             **got["redis"], "clients": got["_clients"]}
    base = {"trigger": "the same write-only SocketIO emits a timestamped envelope to the same "
                       "rooms through Redis, no database (interleaved with the events above)",
            **got["baseline"]}
    block["baseline"] = base
    if "p50_ms" in block and "p50_ms" in base:
        block["ratio_to_baseline"] = round(block["p50_ms"] / base["p50_ms"], 3)
        block["ratio_to_baseline_p99"] = round(block["p99_ms"] / base["p99_ms"], 3)
    return block


# --- the workspace render ------------------------------------------------------------------

@contextmanager
def sqlite_db(root: Path) -> Iterator[tuple[Any, str, None]]:
    from contactcenter.db import Database

    path = root / "workspace-sqlite" / "contactcenter.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        db.upgrade()
        yield db, f"file in a temp dir, journal_mode={journal}, synchronous={sync}", None
    finally:
        db.dispose()


def bare_queries(db: Any, number: int) -> tuple[int, int, int]:
    """What the workspace needs from the database, with Core on one connection."""
    from sqlalchemy import select

    from contactcenter.customers.models import Customer, CustomerIdentity
    from contactcenter.tickets.models import Attachment, Message, Ticket

    t, m, a = Ticket.__table__, Message.__table__, Attachment.__table__
    c, ci = Customer.__table__, CustomerIdentity.__table__
    with db.engine.connect() as conn:
        ticket = conn.execute(select(t).where(t.c.number == number)).one()
        messages = conn.execute(select(m).where(m.c.ticket_id == ticket.id)
                                .order_by(m.c.id).limit(500)).all()
        files = conn.execute(select(a).where(a.c.message_id.in_([x.id for x in messages]))
                             .order_by(a.c.id)).all()
        customer = conn.execute(select(c).where(c.c.id == ticket.customer_id)).one()
        conn.execute(select(ci).where(ci.c.customer_id == customer.id)).all()
        history = conn.execute(select(t).where(t.c.customer_id == customer.id,
                                               t.c.id != ticket.id)
                               .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(50)).all()
        conn.execute(select(m.c.ticket_id, m.c.channel)
                     .where(m.c.ticket_id.in_([h.id for h in history])).distinct()).all()
    return len(messages), len(files), len(history)


def copy_world(src: Any, dst: Any) -> dict[str, int]:
    """Copy every row of the seeded SQLite database into the migrated PostgreSQL one."""
    from sqlalchemy import Integer, inspect

    from contactcenter.db import Base

    src_tables = set(inspect(src.engine).get_table_names())
    dst_tables = set(inspect(dst.engine).get_table_names())
    copied: dict[str, int] = {}
    with src.engine.connect() as read, dst.engine.begin() as write:
        superuser = write.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar()
        if superuser:
            write.exec_driver_sql("SET LOCAL session_replication_role = replica")
        tables = [t for t in Base.metadata.sorted_tables
                  if t.name in src_tables and t.name in dst_tables
                  and t.name != "alembic_version"]
        for table in reversed(tables):
            write.execute(table.delete())  # rows the migrations wrote (counters, defaults)
        for table in tables:
            rows = [dict(r._mapping) for r in read.execute(table.select())]
            if rows:
                write.execute(table.insert(), rows)
                copied[table.name] = len(rows)
            pk = list(table.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, Integer) and rows:
                write.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                    f"(SELECT max({pk[0].name}) FROM {table.name}))")
        write.exec_driver_sql("ANALYZE")
    return copied


def seed_workspace(db: Any, root: Path, args: argparse.Namespace) -> tuple[Any, Any]:
    from contactcenter.config import Settings

    data_dir = root / "workspace-data"
    settings = Settings(data_dir=data_dir, database_url=db.url, secret_key=SECRET, testing=True)
    log("workspace: seeding the customer's history and the ticket through the product")
    world = build_workspace_world(db, settings, messages=args.ws_messages,
                                  earlier=args.ws_earlier, background=args.ws_background)
    log(f"workspace: seeded in {world.seed_s} s")
    return world, settings


def measure_workspace(db: Any, where: str, world: Any, settings: Any, tag: str,
                      args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import event

    from contactcenter.app import create_app

    app = create_app(settings.replace(database_url=db.url), db=db)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no csrf_token on /login")
    signed = client.post("/login", data={"email": world.agent_email, "password": PASSWORD,
                                         "csrf_token": token.group(1)})
    if signed.status_code != 302:
        raise RuntimeError(f"sign-in answered {signed.status_code}")
    url = f"/desk/api/tickets/{world.ticket_number}/workspace"
    statements = [0]

    def count(*_a: Any) -> None:
        statements[0] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    first = client.get(url)
    if first.status_code != 200:
        raise RuntimeError(f"workspace answered {first.status_code}: {first.get_data()[:300]!r}")
    body = first.get_json()
    check = {"messages": len(body["messages"]), "history": len(body["history"]),
             "attachments": sum(len(m["attachments"]) for m in body["messages"]),
             "response_bytes": len(first.get_data())}
    n_msgs, n_files, n_hist = bare_queries(db, world.ticket_number)
    if (n_msgs, n_hist) != (check["messages"], check["history"]):
        raise RuntimeError(f"baseline read {n_msgs} messages/{n_hist} tickets, the view "
                           f"{check['messages']}/{check['history']}")
    log(f"workspace {tag}: {args.ws_warmup} warm-up + {args.ws_n} timed requests")
    for _ in range(args.ws_warmup):
        client.get(url).get_data()
        bare_queries(db, world.ticket_number)
    view_lat, bare_lat = [], []
    view_stmts, bare_stmts = [], []

    def view() -> None:
        before = statements[0]
        t0 = time.perf_counter()
        response = client.get(url)
        response.get_data()
        view_lat.append(time.perf_counter() - t0)
        view_stmts.append(statements[0] - before)
        if response.status_code != 200:
            raise RuntimeError(f"workspace answered {response.status_code}")

    def bare() -> None:
        before = statements[0]
        t0 = time.perf_counter()
        bare_queries(db, world.ticket_number)
        bare_lat.append(time.perf_counter() - t0)
        bare_stmts.append(statements[0] - before)

    wall0 = time.perf_counter()
    for i in range(args.ws_n):
        for step in ((view, bare) if i % 2 == 0 else (bare, view)):
            step()
    wall = time.perf_counter() - wall0
    event.remove(db.engine, "before_cursor_execute", count)
    view_fig = latency_figures(view_lat)
    bare_fig = latency_figures(bare_lat)
    return {
        "database": where, "n": len(view_lat), "warmup": args.ws_warmup,
        **view_fig,
        "requests_per_s": round(len(view_lat) / sum(view_lat), 1),
        "sql_statements_per_request": round(statistics.fmean(view_stmts), 1),
        **check,
        "baseline": {"what": "Core: ticket by number, its messages (limit 500), their "
                             "attachments, customer, identities, the customer's other tickets "
                             "(limit 50) and their channels; rows fetched, nothing serialised",
                     "n": len(bare_lat), **bare_fig,
                     "sql_statements": round(statistics.fmean(bare_stmts), 1),
                     "attachments_read": n_files},
        "ratio_to_baseline": round(view_fig["p50_ms"] / bare_fig["p50_ms"], 3),
        "ratio_to_baseline_p95": round(view_fig["p95_ms"] / bare_fig["p95_ms"], 3),
        "elapsed_s": round(wall, 2),
    }


class Prepared:
    """Create and migrate the throwaway PostgreSQL database on a thread (while seeding)."""

    def __init__(self, admin_url: str) -> None:
        from _routing_world import postgres_database

        self.ctx = postgres_database(admin_url, "bench_desktop_")
        self.opened: tuple[Any, str, str] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._open, daemon=True)
        self.thread.start()

    def _open(self) -> None:
        try:
            self.opened = self.ctx.__enter__()
        except BaseException as exc:  # noqa: BLE001 - raised in get()
            self.error = exc

    def get(self) -> tuple[Any, str, str]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.opened is not None
        return self.opened

    def close(self) -> None:
        self.thread.join()
        if self.opened is not None:
            self.ctx.__exit__(None, None, None)


def workspace_all(args: argparse.Namespace, root: Path, background: Background
                  ) -> tuple[dict[str, Any], str | None]:
    """Seed once on SQLite through the product, measure; copy the rows to PostgreSQL, measure."""
    report: dict[str, Any] = {}
    version = None
    pg = None
    try:
        with sqlite_db(root) as (db, where, _):
            # After SQLite's migrations: Alembic's op/context are process-wide, so two
            # upgrades must not run at once; seeding does not touch them.
            pg = None if args.skip_postgres_reason else Prepared(args.postgres_url)
            try:
                world, settings = seed_workspace(db, root, args)
            except Exception as exc:  # noqa: BLE001
                log(f"workspace seeding failed: {exc}")
                return {"error": f"seeding: {type(exc).__name__}: {exc}"}, None
            report["world"] = {
                "messages": world.messages, "by_direction": world.by_direction,
                "by_channel": world.by_channel, "attachments": world.attachments,
                "html_messages": world.html_messages, "earlier_tickets": world.earlier_tickets,
                "background_tickets": world.background_tickets, "seed_s": world.seed_s,
                "how": "written through the product on SQLite (ingest_inbound, add_reply, "
                       "change_status; simulated clock); PostgreSQL gets a row-for-row copy"}
            background.join()  # nothing else of ours runs while requests are timed
            if pg is not None:
                try:
                    pg.get()
                except BaseException:  # noqa: BLE001 - reported below
                    pass
            try:
                report["sqlite"] = measure_workspace(db, where, world, settings, "sqlite", args)
            except Exception as exc:  # noqa: BLE001
                log(f"workspace sqlite failed: {exc}")
                report["sqlite"] = {"error": f"{type(exc).__name__}: {exc}"}
            if pg is None:
                report["postgres"] = {"skipped": True, "reason": args.skip_postgres_reason}
                return report, version
            try:
                pg_db, pg_where, version = pg.get()
                t0 = time.perf_counter()
                copied = copy_world(db, pg_db)
                log(f"workspace: copied {sum(copied.values())} rows to PostgreSQL in "
                    f"{time.perf_counter() - t0:.1f} s")
                report["postgres"] = measure_workspace(pg_db, pg_where, world, settings,
                                                       "postgres", args)
                report["postgres"]["rows_copied"] = sum(copied.values())
            except ConnectionError as exc:
                reason = f"PostgreSQL not reachable: {exc}"
                report["postgres"] = ({"skipped": False,
                                       "error": reason + " (required when CI=true)"}
                                      if os.environ.get("CI") == "true"
                                      else {"skipped": True, "reason": reason})
            except Exception as exc:  # noqa: BLE001
                log(f"workspace postgres failed: {exc}")
                report["postgres"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if pg is not None:
            pg.close()
    return report, version


# --- output --------------------------------------------------------------------------------

def print_table(report: dict[str, Any]) -> None:
    print(f"desktop benchmark: {report['workload']['agents']} agents, "
          f"{report['workload']['events']} events per variant")
    head = f"{'live events':<22}{'p50 ms':>9}{'p99 ms':>9}{'deliv/s':>10}{'base p50':>10}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for name, block in report["live_events"].items():
        if not isinstance(block, dict) or name == "world":
            continue
        if "p50_ms" not in block:
            print(f"{name:<22} {block.get('reason') or block.get('error')}")
            continue
        base = block.get("baseline") or {}
        print(f"{name:<22}{block['p50_ms']:>9.2f}{block['p99_ms']:>9.2f}"
              f"{block['deliveries_per_s'] or 0:>10.0f}{base.get('p50_ms', float('nan')):>10.2f}"
              f"{block.get('ratio_to_baseline', float('nan')):>8.2f}")
    head = f"{'workspace':<22}{'p50 ms':>9}{'p95 ms':>9}{'stmts':>10}{'base p50':>10}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for name, block in report["workspace"].items():
        if name == "world" or not isinstance(block, dict):
            continue
        if "p50_ms" not in block:
            print(f"{name:<22} {block.get('reason') or block.get('error')}")
            continue
        print(f"{name:<22}{block['p50_ms']:>9.2f}{block['p95_ms']:>9.2f}"
              f"{block['sql_statements_per_request']:>10.1f}{block['baseline']['p50_ms']:>10.2f}"
              f"{block['ratio_to_baseline']:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: fewer agents and events, a smaller workspace world, "
                             "no redis or postgres variant (unless --all-variants)")
    parser.add_argument("--agents", type=int, default=None, help="connected agents (300)")
    parser.add_argument("--events", type=int, default=None,
                        help="timed events per variant, one at a time (100)")
    parser.add_argument("--warmup-events", type=int, default=None)
    parser.add_argument("--burst-events", type=int, default=None)
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes the agents' clients are spread over")
    parser.add_argument("--event-timeout", type=float, default=10.0,
                        help="seconds to wait for every agent to get one event")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--ws-n", type=int, default=None, help="timed workspace requests (100)")
    parser.add_argument("--ws-warmup", type=int, default=None)
    parser.add_argument("--ws-messages", type=int, default=None,
                        help="messages on the ticket (200; --quick 60)")
    parser.add_argument("--ws-earlier", type=int, default=None,
                        help="the customer's earlier tickets (50; --quick 15)")
    parser.add_argument("--ws-background", type=int, default=None)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--all-variants", action="store_true",
                        help="with --quick, still run the redis and postgres variants")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-workspace", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"agents": (60, 300), "events": (20, 100), "warmup_events": (3, 5),
                "burst_events": (10, 20), "ws_n": (25, 100), "ws_warmup": (5, 10),
                "ws_background": (0, 60), "ws_messages": (60, 200), "ws_earlier": (15, 50)}
    for key, (small, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, small if quick else full)
    quick_skips = quick and not args.all_variants
    args.skip_redis_reason = ("--skip-redis given" if args.skip_redis else
                              "--quick (add --all-variants to run it)" if quick_skips else None)
    args.skip_redis = bool(args.skip_redis_reason)
    args.skip_postgres_reason = ("--skip-postgres given" if args.skip_postgres else
                                 "--quick (add --all-variants to run it)" if quick_skips
                                 else None)

    def on_term(_sig: int, _frame: Any) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    import logging

    logging.disable(logging.WARNING)
    from contactcenter.db import import_models

    import_models()
    cheap_passwords()
    started = time.perf_counter()
    load_start = loadavg()
    root = Path(tempfile.mkdtemp(prefix="bench-desktop-"))
    report: dict[str, Any] = {
        "benchmark": "desktop", "quick": quick,
        "workload": {"agents": args.agents, "events": args.events,
                     "warmup_events": args.warmup_events, "burst_events": args.burst_events,
                     "client_processes": args.client_procs,
                     "server_threads": args.agents + 64,
                     "workspace": {"messages": args.ws_messages, "earlier_tickets": args.ws_earlier,
                                   "background_tickets": args.ws_background, "n": args.ws_n,
                                   "warmup": args.ws_warmup}},
    }
    version = None
    background = Background()
    try:
        if args.skip_live:
            report["live_events"] = {"skipped": True}
        else:
            report["live_events"] = measure_live(args, root, background)
        if args.skip_workspace:
            report["workspace"] = {}
        else:
            report["workspace"], version = workspace_all(args, root, background)
    finally:
        background.join()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["machine"] = {**machine(version), "load_average_start": load_start,
                         "load_average_end": loadavg(),
                         "note": "2 shared cores: the clients, the server and other people's "
                                 "work compete for them; compare ratios rather than absolutes"}
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    failed = [f"live_events.{k}" for k, v in report.get("live_events", {}).items()
              if isinstance(v, dict) and "error" in v]
    failed += [f"workspace.{k}" for k, v in report.get("workspace", {}).items()
               if isinstance(v, dict) and "error" in v]
    if "error" in report.get("workspace", {}):
        failed.append("workspace")
    if failed:
        report["failed"] = failed
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_table(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
