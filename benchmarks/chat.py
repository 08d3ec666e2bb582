"""Measure live chat: visitor-to-agent message latency and messages per second.

Usage::

    .venv/bin/python benchmarks/chat.py --json                 # 300 visitors, 30 agents
    .venv/bin/python benchmarks/chat.py --quick --json         # 60 visitors, 6 agents
    .venv/bin/python benchmarks/chat.py --skip-redis --json    # the one-process variant only

**Product** (``embedded``): the real product in a process of its own as production runs
it (``contactcenter serve``: gunicorn gthread, one worker, Flask-SocketIO in threading
mode, ``--threads`` = visitors + agents + 64, a SQLite file in a temp data folder,
``CONTACTCENTER_TESTING=true`` so that no periodic job runs). ``--agents`` agents of the
chat queue are created with the models (capacity 20 chats each, chats assigned without
an offer: ``chat=0``; the per-visitor and per-address limits switched off, since every
visitor comes from 127.0.0.1); each connects a real ``socketio.Client`` (websocket) to
``/agent`` with a signed session cookie and sets its presence ``available`` through the
socket. Then ``--visitors`` visitors connect to ``/visitor`` and each ``start`` a chat
(intake, ticket, routing item; the router assigns it to an agent). Clients run in
``--client-procs`` processes of their own.

Two phases follow, each visitor sending through ``message`` (intake, commit, the
``chat.message`` event to the agent's room after the commit) and waiting for the ack:

- ``paced``: each visitor sends ``--paced`` messages, one every ``visitors / --rate``
  seconds (randomly offset), so the whole site sends about ``--rate`` messages/s;
- ``burst``: each visitor sends ``--burst`` messages back to back (the next after the
  ack): the most the server takes (``messages_per_s``, from the first send to the
  last receipt by an agent).

Latency is from the visitor's ``time.time()`` just before the emit (written into the
message) to the agent client's ``time.time()`` on receipt of the ``chat.message``
event (same machine, same clock).

**Two processes** (``redis``): the same with two ``serve`` processes on their own ports
sharing a PostgreSQL database (a throwaway database on ``--pg-admin``, dropped at the
end) and the Redis message queue (a private ``redis-server`` on a free port), plus one
``contactcenter worker`` for the jobs (with Redis, jobs go to RQ). Visitors and agents
are spread over both processes, so about half of the messages cross from one process
to the other through Redis.

**Baseline** (``baseline`` in each variant, ``ratio_to_baseline`` = product p50 /
baseline p50, and the rate ratio): a bare Flask-SocketIO relay under the same gunicorn
gthread settings (``--floor-server``: ``message`` on ``/visitor`` is emitted to the
agent's room on ``/agent`` and acknowledged; no database), with the same clients, the
same phases and, for ``redis``, two relay processes on the same Redis.

The machine (2 cores) is shared with the clients and other work: figures are noisy;
``machine`` records the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

SECRET = "chat-benchmark-secret-key-0123456789abcdef"
DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PREFIX = "bench|"


def log(message: str) -> None:
    print(f"[chat {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: Proc | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with status {proc.popen.returncode}:\n"
                               f"{proc.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port} after {timeout} s")


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class Proc:
    """A process this benchmark starts, in a process group of its own (stopped by its id)."""

    def __init__(self, name: str, args: list[str], logfile: Path, env: dict[str, str]) -> None:
        self.name = name
        self.logfile = logfile
        self._log = open(logfile, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=self._log, env=env,
                                      cwd=REPO, start_new_session=True)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()


# --- the bare relay (baseline) ---------------------------------------------------------------

def floor_app(redis_url: str | None) -> Any:
    """A Flask-SocketIO relay: visitor ``message`` -> ``event`` to ``agent:<n>`` on /agent."""
    from flask import Flask, request
    from flask_socketio import SocketIO, emit, join_room

    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading", message_queue=redis_url,
                   cors_allowed_origins="*")
    counter = iter(range(1, 1 << 60))
    lock = threading.Lock()

    @sio.on("connect", namespace="/agent")
    def agent_connect(auth: Any = None) -> None:
        join_room(f"agent:{int((auth or {}).get('agent', 0))}")

    @sio.on("presence", namespace="/agent")
    def presence(_data: Any = None) -> dict[str, Any]:
        return {"ok": True}

    @sio.on("connect", namespace="/visitor")
    def visitor_connect(auth: Any = None) -> None:
        pass

    @sio.on("message", namespace="/visitor")
    def message(data: Any) -> dict[str, Any]:
        with lock:
            message_id = next(counter)
        sio.emit("event", {"type": "chat.message", "payload": {
            "from": "visitor", "message_id": f"{request.sid}:{message_id}",  # type: ignore[attr-defined]
            "visitor": {"text": data.get("text", "")}}},
            to=f"agent:{int(data.get('agent', 0))}", namespace="/agent")
        return {"message_id": message_id, "duplicate": False}

    _ = emit
    return app


def run_floor_server(port: int, threads: int, redis_url: str | None) -> None:
    """Serve the relay under gunicorn gthread, one worker, as ``contactcenter serve`` does."""
    from gunicorn.app.base import BaseApplication

    class Floor(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"127.0.0.1:{port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 0)
            self.cfg.set("graceful_timeout", 5)

        def load(self) -> Any:
            return floor_app(redis_url)

    Floor().run()


# --- clients (in processes of their own) -----------------------------------------------------

def _client(url: str) -> Any:
    import socketio

    return socketio.Client(reconnection=False, websocket_extra_options={"origin": url})


def _quick_close(sio: Any) -> None:
    ws = getattr(sio.eio, "ws", None)
    if ws is not None:  # skip the websocket's 3 s close wait
        close = ws.close
        ws.close = lambda *a, **k: close(timeout=0.1)
    try:
        sio.disconnect()
    except Exception:  # noqa: BLE001 - closing at the end, nothing to save
        pass


def client_main(spec: dict[str, Any], conn: Any) -> None:
    """Connect agents and visitors, run the phases on command, report receipts."""
    receipts: list[tuple[str, float, float]] = []  # (phase, sent, received)
    seen: set[Any] = set()
    lock = threading.Lock()
    floor = spec["mode"] == "floor"
    agents: list[Any] = []
    errors: list[str] = []

    def on_event(data: Any) -> None:
        now = time.time()
        if not isinstance(data, dict) or data.get("type") != "chat.message":
            return
        payload = data.get("payload") or {}
        if payload.get("from") != "visitor":
            return
        text = (payload.get("visitor") or {}).get("text") or ""
        if not text.startswith(PREFIX):
            return
        _b, phase, sent, _rest = text.split("|", 3)
        with lock:
            key = payload.get("message_id")
            if key in seen:
                return
            seen.add(key)
            receipts.append((phase, float(sent), now))

    for a in spec["agents"]:
        sio = _client(a["url"])
        sio.on("event", on_event, namespace="/agent")
        if floor:
            sio.connect(a["url"], namespaces=["/agent"], transports=["websocket"],
                        wait_timeout=20, auth={"agent": a["agent"]})
        else:
            sio.connect(a["url"], namespaces=["/agent"], transports=["websocket"],
                        wait_timeout=20, headers={"Cookie": a["cookie"]})
        answer = sio.call("presence", {"presence": "available"}, namespace="/agent",
                          timeout=20)
        if isinstance(answer, dict) and answer.get("error"):
            errors.append(f"presence: {answer['error']}")
        agents.append(sio)
    conn.send(("agents_ready", errors))

    assert conn.recv() == "start_visitors"
    visitors: list[dict[str, Any]] = []
    start_lock = threading.Lock()

    def start_one(v: dict[str, Any]) -> None:
        sio = _client(v["url"])
        sio.connect(v["url"], namespaces=["/visitor"], transports=["websocket"],
                    wait_timeout=20, auth={})
        entry = {"sio": sio, "agent": v["agent"], "chat": None, "joined": threading.Event()}
        if floor:
            entry["joined"].set()
        else:
            sio.on("chat_event", lambda e: entry["joined"].set()
                   if isinstance(e, dict) and e.get("type") == "chat.agent_joined" else None,
                   namespace="/visitor")
            hello = sio.call("hello", {}, namespace="/visitor", timeout=120)
            if not hello.get("available"):
                errors.append(f"chat unavailable: {hello.get('reason')}")
            answer = sio.call("start", {"prechat": {"name": f"Visitor {v['n']}"},
                                        "text": "Hello, I need help with my order",
                                        "client_id": f"start-{v['n']}"},
                              namespace="/visitor", timeout=180)
            if "error" in answer:
                errors.append(f"start: {answer}")
                return
            entry["chat"] = answer.get("chat_id")
        with start_lock:
            visitors.append(entry)

    pending = list(spec["visitors"])

    def starter() -> None:
        while True:
            with start_lock:
                if not pending:
                    return
                v = pending.pop()
            try:
                start_one(v)
            except Exception as exc:  # noqa: BLE001 - reported to the driver
                errors.append(f"visitor {v['n']}: {exc!r}")

    pool = [threading.Thread(target=starter) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    # Only chats an agent joined take part (without the periodic routing sweep, which
    # CONTACTCENTER_TESTING switches off, a chat the router could not place at once waits).
    deadline = time.monotonic() + 15
    for entry in visitors:
        entry["joined"].wait(max(0.0, deadline - time.monotonic()))
    unjoined = sum(1 for e in visitors if not e["joined"].is_set())
    visitors[:] = [e for e in visitors if e["joined"].is_set()]
    conn.send(("visitors_ready", len(visitors), errors[:5], unjoined))

    def send_loop(entry: dict[str, Any], phase: str, count: int, interval: float) -> None:
        sio = entry["sio"]
        if interval:
            time.sleep(random.random() * interval)
        for i in range(count):
            begun = time.monotonic()
            sent = time.time()
            text = f"{PREFIX}{phase}|{sent:.6f}|{uuid.uuid4().hex[:8]} message {i}"
            data = {"chat_id": entry["chat"], "client_id": f"{phase}-{uuid.uuid4().hex}",
                    "text": text, "agent": entry["agent"]}
            try:
                answer = sio.call("message", data, namespace="/visitor", timeout=120)
                if isinstance(answer, dict) and answer.get("error"):
                    errors.append(f"message: {answer['error']}")
            except Exception as exc:  # noqa: BLE001 - counted as lost
                errors.append(f"message: {exc!r}")
            if interval:
                time.sleep(max(0.0, interval - (time.monotonic() - begun)))

    while True:
        command = conn.recv()
        if command[0] == "phase":
            _c, phase, count, interval = command
            del errors[:]
            threads = [threading.Thread(target=send_loop, args=(e, phase, count, interval))
                       for e in visitors]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            conn.send(("sent", errors[:5], len(errors)))
        elif command[0] == "receipts":
            with lock:
                conn.send(("receipts", list(receipts)))
                receipts.clear()
        else:
            break
    for entry in visitors:
        _quick_close(entry["sio"])
    for sio in agents:
        _quick_close(sio)
    conn.send(("closed",))


class Clients:
    """Client processes, driven phase by phase through pipes."""

    def __init__(self, specs: list[dict[str, Any]]) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for spec in specs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_main, args=(spec, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def gather(self, timeout: float = 600) -> list[Any]:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError("a client process did not answer in time")
            out.append(pipe.recv())
        return out

    def send(self, message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def close(self) -> None:
        try:
            self.send(("stop",))
            self.gather(60)
        except (OSError, RuntimeError, EOFError):
            pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()


def run_phases(clients: Clients, visitors: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run the paced and burst phases; return their figures."""
    from _common import latency_figures

    out: dict[str, Any] = {}
    interval = visitors / args.rate if args.rate else 0.0
    for phase, count, gap in (("paced", args.paced, interval), ("burst", args.burst, 0.0)):
        if not count:
            continue
        started = time.time()
        clients.send(("phase", phase, count, gap))
        answers = clients.gather()
        failed = sum(a[2] for a in answers)
        expected = visitors * count
        deadline = time.monotonic() + 60
        receipts: list[tuple[str, float, float]] = []
        while True:
            clients.send(("receipts",))
            for answer in clients.gather():
                receipts.extend(r for r in answer[1] if r[0] == phase)
            if len(receipts) >= expected - failed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        latencies = [r[2] - r[1] for r in receipts]
        first = min((r[1] for r in receipts), default=started)
        last = max((r[2] for r in receipts), default=started)
        figures: dict[str, Any] = {"n": expected, "received": len(receipts),
                                   "failed_sends": failed,
                                   "errors": [e for a in answers for e in a[1]][:5],
                                   **latency_figures(latencies)}
        if phase == "paced":
            figures["target_rate_per_s"] = args.rate
        figures["messages_per_s"] = round(len(receipts) / (last - first), 1) \
            if last > first else None
        out[phase] = figures
        log(f"  {phase}: {len(receipts)}/{expected} p50 {figures.get('p50_ms')} ms "
            f"p99 {figures.get('p99_ms')} ms, {figures['messages_per_s']} msg/s")
    return out


def client_specs(kind: str, urls: list[str], agents: list[dict[str, Any]], visitors: int,
                 procs: int) -> list[dict[str, Any]]:
    """Spread agents and visitors over client processes and over the servers."""
    specs: list[dict[str, Any]] = [{"mode": kind, "agents": [], "visitors": []}
                                   for _ in range(procs)]
    for i, agent in enumerate(agents):
        specs[i % procs]["agents"].append({**agent, "url": urls[i % len(urls)]})
    for n in range(visitors):
        specs[n % procs]["visitors"].append({"n": n, "url": urls[(n // procs) % len(urls)],
                                             "agent": n % len(agents)})
    return specs


def drive(kind: str, urls: list[str], agents: list[dict[str, Any]],
          args: argparse.Namespace) -> dict[str, Any]:
    """Connect the clients, start the chats, run the phases."""
    clients = Clients(client_specs(kind, urls, agents, args.visitors, args.client_procs))
    try:
        ready = clients.gather(300)
        problems = [e for r in ready for e in r[1]]
        if problems:
            raise RuntimeError(f"agents: {problems[:3]}")
        began = time.monotonic()
        clients.send("start_visitors")
        started = clients.gather(900)
        count = sum(s[1] for s in started)
        unjoined = sum(s[3] for s in started)
        problems = [e for s in started for e in s[2]]
        if not count:
            raise RuntimeError(f"no visitor could start a chat: {problems[:3]}")
        log(f"  {count} visitors in chats after {time.monotonic() - began:.1f} s")
        # A visitor whose start failed (a time-out on a loaded machine) sends nothing.
        result = {"chats": count, "chats_without_agent": unjoined,
                  "chat_start_errors": problems[:3],
                  "chats_started_per_s": round(count / (time.monotonic() - began), 1)}
        result.update(run_phases(clients, count, args))
        return result
    finally:
        clients.close()


# --- the product's world ---------------------------------------------------------------------

def seed(database_url: str, agents: int) -> list[dict[str, Any]]:
    """Create the chat queue and its agents; return each agent's session cookie."""
    from flask import Flask

    from contactcenter.accounts.service import create_user, session_fingerprint
    from contactcenter.db import Database, import_models
    from contactcenter.tickets.models import Queue, QueueMember

    import_models()
    db = Database(database_url)
    db.upgrade()
    cookies = []
    signer = Flask(__name__)
    signer.secret_key = SECRET
    serializer = signer.session_interface.get_signing_serializer(signer)  # type: ignore[attr-defined]
    with db.session() as session:
        queue = Queue(slug="chat", name="Chat")
        session.add(queue)
        session.flush()
        for n in range(agents):
            user = create_user(session, f"agent{n:03d}@chat.bench", f"Agent {n:03d}", None,
                               ("agent",))
            session.add(QueueMember(queue_id=queue.id, user_id=user.id))
            session.flush()
            value = serializer.dumps({"user_id": user.id,
                                      "auth_version": session_fingerprint(user)})
            cookies.append({"agent": n, "cookie": f"session={value}"})
        session.commit()
    db.dispose()
    return cookies


def product_env(data_dir: Path, database_url: str, port: int,
                redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env.update({
        "CONTACTCENTER_DATA_DIR": str(data_dir), "CONTACTCENTER_DATABASE_URL": database_url,
        "CONTACTCENTER_SECRET_KEY": SECRET, "CONTACTCENTER_TESTING": "true",
        "CONTACTCENTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CONTACTCENTER_ROUTING_OFFER_TIMEOUTS": "call=20,chat=0,ticket=120",
        "CONTACTCENTER_ROUTING_CAPACITY": "call=1,chat=20,ticket=10",
        "CONTACTCENTER_CHAT_MESSAGES_PER_MINUTE": "0",
        "CONTACTCENTER_CHAT_ADDRESS_MESSAGES_PER_MINUTE": "0",
        "CONTACTCENTER_CHAT_CONNECTIONS_PER_ADDRESS": "0",
        "CONTACTCENTER_CHAT_INACTIVITY_MINUTES": "0",
        "CONTACTCENTER_CHAT_WAITING_MINUTES": "0",
    })
    if redis_url:
        env["CONTACTCENTER_REDIS_URL"] = redis_url
    return env


def start_products(tmp: Path, database_url: str, count: int, threads: int,
                   redis_url: str | None) -> tuple[list[Proc], list[str]]:
    procs, urls = [], []
    python = sys.executable
    for i in range(count):
        port, smtp = free_port(), free_port()
        proc = Proc(f"serve-{i}", [python, "-m", "contactcenter.cli", "serve", "--port",
                                   str(port), "--smtp-port", str(smtp), "--threads",
                                   str(threads)],
                    tmp / f"serve-{i}.log", product_env(tmp / "data", database_url, port,
                                                        redis_url))
        procs.append(proc)
        wait_port(port, 90, proc)
        urls.append(f"http://127.0.0.1:{port}")
    return procs, urls


def start_floors(tmp: Path, count: int, threads: int,
                 redis_url: str | None) -> tuple[list[Proc], list[str]]:
    procs, urls = [], []
    for i in range(count):
        port = free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-server", str(port),
               "--threads", str(threads)]
        if redis_url:
            cmd += ["--redis-url", redis_url]
        proc = Proc(f"floor-{i}", cmd, tmp / f"floor-{i}.log", dict(os.environ))
        procs.append(proc)
        wait_port(port, 60, proc)
        urls.append(f"http://127.0.0.1:{port}")
    return procs, urls


def ratios(product: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase in ("paced", "burst"):
        p, b = product.get(phase) or {}, baseline.get(phase) or {}
        if p.get("p50_ms") and b.get("p50_ms"):
            out[f"{phase}_p50"] = round(p["p50_ms"] / b["p50_ms"], 2)
        if p.get("p99_ms") and b.get("p99_ms"):
            out[f"{phase}_p99"] = round(p["p99_ms"] / b["p99_ms"], 2)
        if p.get("messages_per_s") and b.get("messages_per_s"):
            out[f"{phase}_messages_per_s"] = round(p["messages_per_s"] / b["messages_per_s"], 3)
    return out


def top_level(result: dict[str, Any]) -> dict[str, Any]:
    """Lift the headline figures (paced latency, burst rate) to the variant's top."""
    paced, burst = result.get("paced") or {}, result.get("burst") or {}
    return {"p50_ms": paced.get("p50_ms"), "p95_ms": paced.get("p95_ms"),
            "p99_ms": paced.get("p99_ms"), "messages_per_s": burst.get("messages_per_s"),
            "burst_p50_ms": burst.get("p50_ms"), "burst_p99_ms": burst.get("p99_ms")}


def run_embedded(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    procs: list[Proc] = []
    try:
        log("embedded: one server, SQLite")
        url = f"sqlite:///{tmp / 'chat.db'}"
        agents = seed(url, args.agents)
        procs, urls = start_products(tmp, url, 1, threads, None)
        product = drive("product", urls, agents, args)
        for p in procs:
            p.stop()
        log("embedded: bare relay baseline")
        procs, urls = start_floors(tmp, 1, threads, None)
        baseline = drive("floor", urls, agents, args)
        return {"servers": 1, "database": "sqlite", **top_level(product), **product,
                "baseline": {**top_level(baseline), **baseline},
                "ratio_to_baseline": ratios(product, baseline)}
    finally:
        for p in procs:
            p.stop()
        if os.environ.get("CHAT_BENCH_KEEP"):
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def postgres_database(admin_url: str) -> tuple[str, str, str | None]:
    """Create a throwaway database; return its SQLAlchemy URL, its name and the server version."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from _common import psycopg_url

    name = f"bench_chat_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = conn.execute("SHOW server_version").fetchone()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, name, version[0] if version else None


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    from _common import psycopg_url

    with psycopg.connect(psycopg_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def start_redis(tmp: Path) -> tuple[Proc, str]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = Proc("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp)], tmp / "redis.log",
                dict(os.environ))
    wait_port(port, 20, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def run_redis(args: argparse.Namespace, threads: int) -> tuple[dict[str, Any], str | None]:
    tmp = Path(tempfile.mkdtemp(prefix="chat-bench-redis-"))
    procs: list[Proc] = []
    name = None
    version = None
    try:
        log("redis: two servers sharing PostgreSQL and the Redis message queue")
        redis_proc, redis_url = start_redis(tmp)
        url, name, version = postgres_database(args.pg_admin)
        agents = seed(url, args.agents)
        procs, urls = start_products(tmp, url, 2, threads, redis_url)
        worker = Proc("worker", [sys.executable, "-m", "contactcenter.cli", "worker"],
                      tmp / "worker.log", product_env(tmp / "data", url, 0, redis_url))
        procs.append(worker)
        product = drive("product", urls, agents, args)
        for p in procs:
            p.stop()
        log("redis: two bare relays on the same Redis")
        procs, urls = start_floors(tmp, 2, threads, redis_url)
        baseline = drive("floor", urls, agents, args)
        return ({"servers": 2, "database": "postgresql", "message_queue": "redis",
                 **top_level(product), **product,
                 "baseline": {**top_level(baseline), **baseline},
                 "ratio_to_baseline": ratios(product, baseline)}, version)
    finally:
        for p in procs:
            p.stop()
        if "redis_proc" in locals():
            redis_proc.stop()
        if name is not None:
            try:
                drop_postgres(args.pg_admin, name)
            except Exception as exc:  # noqa: BLE001 - report, the figures stand
                log(f"could not drop {name}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="60 visitors, 6 agents")
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--paced", type=int, default=3, help="messages per visitor, paced")
    parser.add_argument("--rate", type=float, default=30.0,
                        help="site-wide messages per second in the paced phase")
    parser.add_argument("--burst", type=int, default=3,
                        help="messages per visitor, back to back")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--floor-server", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server is not None:
        run_floor_server(args.floor_server, args.threads or 64, args.redis_url)
        return 0
    if args.quick:
        args.visitors, args.agents, args.paced, args.burst = 60, 6, 2, 2
        args.rate = min(args.rate, 20.0)
    threads = args.visitors + args.agents + 64
    from _common import machine

    result: dict[str, Any] = {"benchmark": "chat", "visitors": args.visitors,
                              "agents": args.agents, "paced_per_visitor": args.paced,
                              "burst_per_visitor": args.burst, "threads": threads,
                              "loadavg_before": loadavg()}
    if not args.skip_embedded:
        result["embedded"] = run_embedded(args, threads)
    pg_version = None
    if not args.skip_redis:
        result["redis"], pg_version = run_redis(args, threads)
    result["loadavg_after"] = loadavg()
    result["machine"] = machine(pg_version)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("embedded", "redis"):
            if name in result:
                v = result[name]
                print(f"{name}: p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms, "
                      f"{v['messages_per_s']} msg/s (baseline p50 {v['baseline']['p50_ms']} ms,"
                      f" {v['baseline']['messages_per_s']} msg/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
