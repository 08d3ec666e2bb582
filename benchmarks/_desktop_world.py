"""Parts of ``benchmarks/desktop.py`` that run in processes of their own, and its worlds.

Run as a script, this module is one of two helper processes:

``clients``
    A share of the desk's agents: each signs in (``GET /login`` for the CSRF token,
    ``POST /login``) with its own ``requests`` session and connects its own
    ``socketio.Client`` (websocket transport) to the ``/agent`` namespace with that
    session cookie. Every ``event`` received is stamped with ``time.time()`` first
    thing in the handler and kept; once every client of the process has received a
    marker event, ``{"done": key}`` goes to stdout so that the benchmark can send the
    next one. ``stop`` on stdin writes what was received to a JSON file and exits at
    once (no polite disconnects: the server is stopped right after).

``floor-server``
    The fan-out floor: a bare Flask-SocketIO app in threading mode under gunicorn's
    gthread worker (one worker, the same thread count and Socket.IO options as
    ``contactcenter serve``) whose ``/agent`` namespace puts every client in the same
    rooms and whose ``POST /emit`` emits one envelope to them, with no database, no
    sign-in and no product code.

Imported, it builds the workspace world of the render measurement
(``build_workspace_world``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

NAMESPACE = "/agent"
PASSWORD = "bench desk password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# The rooms a product event about a queued ticket goes to (ticket_rooms + supervisors);
# the floor emits to the same list so that python-socketio does the same room work.
FLOOR_ROOMS = ("ticket:1", "customer:1", "queue:1", "supervisors")


# --- the commit stamp --------------------------------------------------------------------

STAMP = "bench_committed_at"


def _stamp(session: Any) -> None:
    if session.in_nested_transaction():
        return
    now = time.time()
    for row in session.info.get("pending_events", ()):
        if isinstance(row.payload, dict):
            # In memory only: the row is committed, and a plain JSON column does not
            # track in-place changes, so nothing is written back.
            row.payload[STAMP] = now


def install_commit_stamp(target: Any) -> None:
    """Stamp committed events with the time COMMIT returned, before they are published.

    ``target`` is ``sqlalchemy.orm.Session`` (every session of the process) or one
    ``sessionmaker``; ``insert=True`` puts the stamp ahead of the product's own
    after-commit hook, which builds the envelopes from the rows' payloads.
    """
    from sqlalchemy import event

    event.listen(target, "after_commit", _stamp, insert=True)


# --- clients ------------------------------------------------------------------------------

def _sign_in(url: str, email: str, password: str) -> str:
    """Sign in through the form as a browser does; return the Cookie header."""
    import requests

    with requests.Session() as http:
        page = http.get(f"{url}/login", timeout=60)
        match = CSRF.search(page.text)
        if match is None:
            raise RuntimeError(f"no csrf_token on /login (HTTP {page.status_code})")
        answer = http.post(f"{url}/login", data={"email": email, "password": password,
                                                 "csrf_token": match.group(1)},
                           allow_redirects=False, timeout=60)
        if answer.status_code != 302:
            raise RuntimeError(f"sign-in of {email} answered HTTP {answer.status_code}")
        return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def clients_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="_desktop_world.py clients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--email-format", default="agent{:04d}@desk.bench")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--login", action="store_true", help="sign in before connecting")
    parser.add_argument("--markers", default="message.created,floor")
    parser.add_argument("--records", required=True, help="JSON file written on stop")
    parser.add_argument("--connect-threads", type=int, default=6)
    args = parser.parse_args(argv)

    import socketio

    markers = set(args.markers.split(","))
    lock = threading.Lock()
    out_lock = threading.Lock()
    counts: Counter[str] = Counter()
    records: list[tuple[float, str, str, str | None, float | None]] = []
    expected = [0]  # connected clients, set before any marker is sent
    dropped = [0]

    def say(obj: dict[str, Any]) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def on_event(data: Any) -> None:
        received = time.time()
        kind = data.get("type") if isinstance(data, dict) else None
        payload = (data.get("payload") or {}) if isinstance(data, dict) else {}
        key = f"{kind}:{payload.get('seq', payload.get('message_id'))}"
        done = False
        with lock:
            records.append((received, str(kind), key, data.get("at"), payload.get(STAMP)))
            if kind in markers:
                counts[key] += 1
                done = counts[key] == expected[0]
        if done:
            say({"done": key})

    def on_disconnect(*_args: Any) -> None:
        with lock:
            dropped[0] += 1

    def connect(index: int) -> Any:
        email = args.email_format.format(index)
        started = time.perf_counter()
        headers = {"Cookie": _sign_in(args.url, email, args.password)} if args.login else {}
        signed = time.perf_counter()
        client = socketio.Client(reconnection=False, handle_sigint=False)
        client.on("event", on_event, namespace=NAMESPACE)
        client.on("disconnect", on_disconnect, namespace=NAMESPACE)
        client.connect(args.url, headers=headers, transports=["websocket"],
                       namespaces=[NAMESPACE], wait_timeout=60)
        if client.transport() != "websocket":
            raise RuntimeError(f"transport is {client.transport()}")
        return client, signed - started, time.perf_counter() - signed

    clients: list[Any] = []
    errors: list[str] = []
    sign_in_s: list[float] = []
    connect_s: list[float] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.connect_threads)) as pool:
        futures = [pool.submit(connect, args.first + i) for i in range(args.count)]
        for future in futures:
            try:
                client, signing, connecting = future.result()
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on with fewer
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            clients.append(client)
            sign_in_s.append(signing)
            connect_s.append(connecting)
    with lock:
        expected[0] = len(clients)
    say({"ready": len(clients), "failed": len(errors), "errors": errors[:3],
         "wall_s": round(time.perf_counter() - t0, 3), "sign_in_s": sign_in_s,
         "connect_s": connect_s})
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    with lock:
        snapshot = list(records)
        gone = dropped[0]
    with open(args.records, "w", encoding="utf-8") as fh:
        json.dump({"records": snapshot, "disconnects": gone}, fh)
    say({"bye": len(snapshot)})
    os._exit(0)  # the sockets close with the process; the server is stopped next


# --- floor server -------------------------------------------------------------------------

def floor_app() -> Any:
    """A bare Flask-SocketIO app: join the rooms on connect, emit on ``POST /emit``."""
    from flask import Flask, jsonify, request
    from flask_socketio import SocketIO, join_room

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "floor-server-secret-key-not-used"
    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=None,
                        ping_interval=20, ping_timeout=20, max_http_buffer_size=1_000_000)

    @socketio.on("connect", namespace=NAMESPACE)
    def on_connect(_auth: Any = None) -> None:
        for name in FLOOR_ROOMS[:3]:
            join_room(name)

    @app.post("/emit")
    def emit() -> Any:
        seq = int((request.get_json(silent=True) or {}).get("seq", 0))
        envelope = {"id": seq, "type": "floor", "rooms": list(FLOOR_ROOMS),
                    "payload": {"seq": seq, STAMP: time.time()},
                    "at": dt.datetime.now(dt.UTC).isoformat()}
        socketio.emit("event", envelope, to=list(FLOOR_ROOMS), namespace=NAMESPACE)
        return jsonify(ok=True)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return app


def floor_server_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="_desktop_world.py floor-server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    from gunicorn.app.base import BaseApplication

    class Floor(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # The same worker settings as contactcenter.server._Server.
            self.cfg.set("bind", f"127.0.0.1:{args.port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("timeout", 0)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return floor_app()

    Floor().run()
    return 0


# --- the workspace world ------------------------------------------------------------------

WORDS = ("router modem invoice account password reset login error screen blinks red light "
         "internet connection slow cable fibre technician visit appointment tomorrow refund "
         "charge billing plan upgrade contract cancel renew order delivery package tracking "
         "address phone support please help urgent still again problem issue works since "
         "after before update firmware restart settings wifi signal speed test result").split()
HISTORY_CHANNELS = ("email", "chat", "phone", "sms", "whatsapp", "form", "api")
PHONE_CHANNELS = {"phone", "sms", "whatsapp"}


@dataclass
class WorkspaceWorld:
    ticket_id: int
    ticket_number: int
    customer_id: int
    agent_email: str
    messages: int
    earlier_tickets: int
    attachments: int
    html_messages: int
    by_direction: dict[str, int]
    by_channel: dict[str, int]
    background_tickets: int
    seed_s: float


def _text(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
        if rng.random() < 0.08:
            words[-1] += ".\n"
    return " ".join(words)[:size]


def _html(rng: random.Random, text: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n") if p.strip())
    extras = [
        '<p>See <a href="https://status.example.com/incident/42">our status page</a>.</p>',
        '<table border="1"><tr><td>Plan</td><td>Fibre 250</td></tr>'
        '<tr><td>Modem</td><td>FR-7</td></tr></table>',
        '<blockquote style="color:#555">On Monday you wrote: it blinks red</blockquote>',
        '<img src="cid:logo@example.com" alt="logo">',
        '<script>alert("x")</script><div style="font-family:Arial">Kind regards</div>',
    ]
    return (f"<html><body><div>{paragraphs}</div>{''.join(rng.sample(extras, 2))}"
            "</body></html>")


def _attachments(rng: random.Random, n: int) -> tuple[Any, ...]:
    from contactcenter.channels.base import AttachmentRef

    kinds = (("invoice.pdf", "application/pdf", 24_000), ("photo.png", "image/png", 9_000),
             ("usage.csv", "text/csv", 3_000), ("modem.log", "text/plain", 6_000))
    refs = []
    for _ in range(n):
        name, ctype, size = rng.choice(kinds)
        refs.append(AttachmentRef(f"{rng.randrange(10_000)}-{name}", ctype,
                                  bytes(rng.getrandbits(8) for _ in range(size // 8)) * 8))
    return tuple(refs)


def build_workspace_world(db: Any, settings: Any, *, messages: int = 200, earlier: int = 50,
                          background: int = 200, seed: int = 11,
                          start: dt.datetime | None = None) -> WorkspaceWorld:
    """One customer with ``earlier`` tickets before and a ticket of ``messages`` messages.

    Everything goes through the product (``ingest_inbound`` for what customers send,
    ``add_reply`` for replies and internal notes, ``change_status`` for solved history),
    each step in its own transaction, on a simulated clock. ``background`` other
    customers each open one ticket in the same queue.
    """
    from contactcenter.accounts.service import create_user
    from contactcenter.channels.base import Identity, InboundContact, ThreadHints
    from contactcenter.tickets.errors import InvalidTransitionError
    from contactcenter.tickets.intake import ingest_inbound
    from contactcenter.tickets.models import Inbox, Queue, QueueMember
    from contactcenter.tickets.service import add_reply, change_status, get_ticket

    t0 = time.perf_counter()
    rng = random.Random(seed)
    start = start or dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    email, phone = "olga.smirnova@example.com", "+4917012345678"
    counter = iter(range(1, 10**9))

    def contact(channel: str, when: dt.datetime, *, number: int | None = None,
                html: bool = False, files: int = 0, subject: str = "") -> InboundContact:
        text = _text(rng, 200, 3000)
        sender = (Identity("phone", phone, "Olga Smirnova") if channel in PHONE_CHANNELS
                  else Identity("email", email, "Olga Smirnova"))
        return InboundContact(
            channel=channel, external_id=f"ws-{next(counter)}", sender=sender,
            subject=subject or " ".join(rng.sample(WORDS, 4)).capitalize(), text=text,
            html=_html(rng, text) if html else "", inbox_id=inbox_id if number is None else None,
            thread=ThreadHints(ticket_number=number, thread_on_open_ticket=False),
            attachments=_attachments(rng, files), received_at=when,
            other_identities=(Identity("phone", phone),) if channel == "email" else ())

    with db.session() as s:
        queue = Queue(slug="support", name="Support")
        s.add(queue)
        s.flush()
        inbox = Inbox(name="Support mail", channel="email", address="support@desk.bench",
                      queue_id=queue.id)
        s.add(inbox)
        agent = create_user(s, "agent@desk.bench", "Desk Agent", PASSWORD, ["agent"])
        s.add(QueueMember(queue_id=queue.id, user_id=agent.id))
        s.commit()
        inbox_id, agent_id = inbox.id, agent.id

    def ingest(c: InboundContact, when: dt.datetime) -> Any:
        with db.session() as s:
            return ingest_inbound(s, c, settings=settings, now=when)

    def reply(number: int, when: dt.datetime, *, internal: bool = False,
              html: bool = False) -> None:
        with db.session() as s:
            ticket = get_ticket(s, number)
            text = _text(rng, 150, 1500)
            add_reply(s, ticket, agent_id, text, _html(rng, text) if html else "",
                      internal=internal, now=when)
            s.commit()

    # The customer's earlier tickets, oldest first, over the two years before.
    for i in range(earlier):
        when = start - dt.timedelta(days=730 - i * (720 / max(earlier, 1)),
                                    minutes=rng.randrange(600))
        channel = HISTORY_CHANNELS[i % len(HISTORY_CHANNELS)]
        result = ingest(contact(channel, when, html=channel == "email" and i % 2 == 0,
                                files=1 if i % 5 == 0 else 0), when)
        number = result.ticket_number
        reply(number, when + dt.timedelta(hours=2))
        if i % 3 == 0:
            ingest(contact(channel, when + dt.timedelta(hours=5), number=number),
                   when + dt.timedelta(hours=5))
            reply(number, when + dt.timedelta(hours=6), html=i % 2 == 0)
        with db.session() as s:
            ticket = get_ticket(s, number)
            try:
                change_status(s, ticket, "solved", agent_id, when + dt.timedelta(days=1))
                if i < earlier - 10:
                    change_status(s, ticket, "closed", agent_id, when + dt.timedelta(days=8))
                s.commit()
            except InvalidTransitionError:
                s.rollback()

    # Other customers' tickets in the same queue.
    for i in range(background):
        when = start - dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
        text = _text(rng, 100, 1200)
        ingest(InboundContact(channel="email", external_id=f"bg-{i}",
                              sender=Identity("email", f"customer{i}@example.org", f"C {i}"),
                              subject=" ".join(rng.sample(WORDS, 3)), text=text,
                              inbox_id=inbox_id, received_at=when,
                              thread=ThreadHints(thread_on_open_ticket=False)), when)

    # The ticket of the workspace: an email, then a conversation across channels.
    when = start - dt.timedelta(days=3)
    first = ingest(contact("email", when, html=True, files=2, subject="Router dead after storm"),
                   when)
    number = first.ticket_number
    directions: Counter[str] = Counter({"inbound": 1})
    channels: Counter[str] = Counter({"email": 1})
    files_total, html_total = 2, 1
    for _ in range(messages - 1):
        when += dt.timedelta(minutes=rng.randint(3, 40))
        roll = rng.random()
        if roll < 0.5:
            channel = rng.choices(("email", "chat", "sms", "whatsapp"), (50, 25, 15, 10))[0]
            html = channel == "email" and rng.random() < 0.5
            files = rng.choice((1, 1, 2)) if rng.random() < 0.15 else 0
            ingest(contact(channel, when, number=number, html=html, files=files), when)
            directions["inbound"] += 1
            channels[channel] += 1
            files_total += files
            html_total += html
        else:
            internal = roll > 0.85
            html = not internal and rng.random() < 0.3
            reply(number, when, internal=internal, html=html)
            directions["note" if internal else "outbound"] += 1
            channels["email"] += 1
            html_total += html
    with db.session() as s:
        ticket = get_ticket(s, number)
        world = WorkspaceWorld(
            ticket_id=ticket.id, ticket_number=number, customer_id=ticket.customer_id,
            agent_email="agent@desk.bench", messages=messages, earlier_tickets=earlier,
            attachments=files_total, html_messages=html_total, by_direction=dict(directions),
            by_channel=dict(channels), background_tickets=background,
            seed_s=round(time.perf_counter() - t0, 2))
    return world


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "clients":
        sys.exit(clients_main(rest))
    if command == "floor-server":
        sys.exit(floor_server_main(rest))
    sys.exit(f"usage: {sys.argv[0]} clients|floor-server ...")
