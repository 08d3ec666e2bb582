"""The load scenarios L3 (webhook burst), L4 (chat concurrency) and L10 (mixed soak).

Run through ``benchmarks/load.py --scenarios ...``; each returns one JSON-ready dict with
throughput, latency percentiles, the server's memory (RSS with its slope) and errors, and a
``pass`` verdict against the criteria of RELIABILITY.md section 6, scaled to the variant.

Nothing leaves the machine: Twilio's REST API is the recording stand-in of the test suite
(``tests/channels/phone/twilio_fake.py``), webhooks are signed with the ``twilio`` library's
``RequestValidator`` exactly as Twilio signs them.
"""

from __future__ import annotations

import argparse
import random
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from benchmarks._common import latency_figures
from benchmarks.load import SUPPORT, MemorySampler, Served, mail

TOKEN = "12345678901234567890123456789012"
ACCOUNT = "AC" + "0" * 32
SMS_LINE = "+12025550101"


def _twilio_env(served: Served, fake_url: str) -> str:
    """Point the served product's Twilio settings at the stand-in; return the public URL."""
    public = served.url
    served.env.update(CONTACTCENTER_PUBLIC_URL=public, CONTACTCENTER_TWILIO_ACCOUNT_SID=ACCOUNT,
                      CONTACTCENTER_TWILIO_AUTH_TOKEN=TOKEN,
                      CONTACTCENTER_TWILIO_API_BASE_URL=fake_url,
                      CONTACTCENTER_TWILIO_SMS_FROM=SMS_LINE)
    return public


def _sms(n: int, sid: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "MessageSid": sid, "SmsSid": sid, "SmsStatus": "received",
            "From": f"+4477009{n % 5000:05d}", "To": SMS_LINE, "Body": f"Load SMS {n}",
            "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}


def _signed_post(session: Any, public: str, path: str, params: dict[str, str],
                 forge: bool = False) -> Any:
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TOKEN).compute_signature(public + path, params)
    if forge:
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    return session.post(public + path, data=params, timeout=30,
                        headers={"X-Twilio-Signature": signature})


def _inbound_sms(served: Served) -> tuple[int, int]:
    """(inbound SMS messages stored, distinct MessageSids among them)."""
    from sqlalchemy import func, select

    from contactcenter.tickets.models import Message

    with served.db.session() as session:
        where = (Message.channel == "sms", Message.direction == "inbound")
        total = session.scalar(select(func.count()).select_from(Message).where(*where))
        distinct = session.scalar(select(func.count(func.distinct(Message.external_id)))
                                  .where(*where))
    return int(total or 0), int(distinct or 0)


def _add_inboxes(served: Served) -> None:
    from contactcenter.tickets.models import Inbox

    with served.db.session() as session:
        session.add(Inbox(name="Load mail", channel="email", address=SUPPORT))
        session.add(Inbox(name="Load SMS", channel="sms", address=SMS_LINE))
        session.commit()


def _pinned(rate: float, count: int, submit: Any) -> float:
    """Call ``submit(i)`` ``count`` times at ``rate`` per second; return the seconds taken."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        submit(i)
    return time.perf_counter() - start


# Delivery statuses Twilio reports for a reply, by how far along they are (as the product's
# STATUS_RANK); the burst sends them shuffled and partly repeated, so the last one applied is
# often not the most advanced: the stored state must still end at "delivered" and never go back.
CALLBACK_STATUSES = ("queued", "sent", "delivered")
CALLBACK_RANK = {status: rank for rank, status in enumerate(CALLBACK_STATUSES)}
CALLBACKS_PER_REPLY = len(CALLBACK_STATUSES) + 1  # each status once, one of them again


@dataclass(frozen=True)
class SentReply:
    """An agent's SMS reply the product sent through the stand-in, as Twilio would report on it."""

    message_id: int
    sid: str
    callback: str  # the signed StatusCallback URL the product gave Twilio (with ``m`` and ``p``)


def _status_params(reply: SentReply, status: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "MessageSid": reply.sid, "SmsSid": reply.sid,
            "MessageStatus": status, "SmsStatus": status, "From": SMS_LINE,
            "To": "+447700800000", "ApiVersion": "2010-04-01"}


def _wait_for(what: str, check: Any, seconds: float = 60) -> Any:
    """Poll ``check()`` until it returns something truthy; fail loudly after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _api_token(served: Served) -> str:
    """A supervisor's API token (replies through the REST API, as a desk integration does)."""
    from contactcenter.accounts.service import create_user, issue_token

    with served.db.session() as session:
        user = create_user(session, "supervisor@load.example.test", "Load supervisor", None,
                           ("supervisor",))
        session.flush()
        token = issue_token(session, user, "load")
        session.commit()
    return token


def _seed_tickets(served: Served, public: str, count: int) -> list[int]:
    """Open ``count`` SMS tickets through the product's own webhook; return their numbers."""
    import requests
    from sqlalchemy import select

    from contactcenter.tickets.models import Message, Ticket

    sids = [f"SMe{k:031x}" for k in range(count)]
    with requests.Session() as http:
        for k, sid in enumerate(sids):
            params = _sms(k, sid) | {"From": f"+4477008{k:05d}", "Body": f"Seed SMS {k}"}
            answer = _signed_post(http, public, "/twilio/sms", params)
            answer.raise_for_status()

    def numbers() -> list[int]:
        with served.db.session() as session:
            found = list(session.scalars(select(Ticket.number).join(
                Message, Message.ticket_id == Ticket.id).where(Message.external_id.in_(sids))))
        return found if len(found) == count else []

    return list(_wait_for("the seed SMS tickets", numbers))


def _seed_replies(served: Served, fake: Any, public: str, count: int) -> list[SentReply]:
    """Reply by SMS on ``count`` tickets and let the product's outbox send them to the stand-in.

    The sids come from the database (the outbox stores Twilio's sid as the message's
    external id); the StatusCallback URLs from the requests the stand-in recorded, which
    is what Twilio would call back and sign.
    """
    import requests
    from sqlalchemy import select

    from contactcenter.tickets.models import DeliveryState, Message

    token = _api_token(served)
    ids: list[int] = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        for number in _seed_tickets(served, public, count):
            answer = http.post(f"{public}/api/v1/tickets/{number}/messages", timeout=30,
                               json={"text": f"Load reply on ticket {number}"})
            answer.raise_for_status()
            ids.append(int(answer.json()["id"]))

    def sent() -> dict[int, str]:
        with served.db.session() as session:
            rows = session.execute(select(Message.id, Message.external_id).where(
                Message.id.in_(ids), Message.delivery_state == DeliveryState.SENT)).all()
        return {m: sid for m, sid in rows if sid} if len(rows) == len(ids) else {}

    sids = _wait_for("the outbox to send the seed replies", sent)
    callbacks: dict[int, str] = {}
    for recorded in fake.posts("/Messages.json"):
        url = recorded.form["StatusCallback"][0]
        query = parse_qs(urlsplit(url).query)
        if query.get("p") == ["0"]:
            callbacks[int(query["m"][0])] = url
    return [SentReply(m, sids[m], callbacks[m]) for m in ids]


def _callback_plan(rng: random.Random, replies: int) -> tuple[list[tuple[int, str]], int]:
    """(reply index, status) per status callback, shuffled per reply; and how many go backwards.

    Each reply gets queued/sent/delivered in a random order plus one repeat; the first
    reply's are always out of order so that every run exercises it.
    """
    plan: list[tuple[int, str]] = []
    backwards = 0
    for r in range(replies):
        order = list(CALLBACK_STATUSES) + [rng.choice(CALLBACK_STATUSES)]
        rng.shuffle(order)
        if r == 0 and order == sorted(order, key=CALLBACK_RANK.__getitem__):
            order.reverse()
        ranks = [CALLBACK_RANK[s] for s in order]
        backwards += any(later < max(ranks[:i]) for i, later in enumerate(ranks) if i)
        plan.extend((r, status) for status in order)
    return plan, backwards


def _final_states(served: Served, replies: list[SentReply]) -> dict[str, Any]:
    """The stored outcome of the status callbacks: final part status, message state, history.

    The history is the product's own event log (``message.delivery_changed`` with the
    provider status it applied, in commit order): monotonic means no applied status is
    less advanced than one applied before it.
    """
    from sqlalchemy import select

    from contactcenter.channels.phone.messaging import STATUS_RANK
    from contactcenter.channels.phone.models import SmsPart
    from contactcenter.events import EventLog
    from contactcenter.tickets.models import DeliveryState, Message

    ids = {r.message_id for r in replies}
    with served.db.session() as session:
        parts = dict(session.execute(select(SmsPart.sid, SmsPart.status).where(
            SmsPart.sid.in_([r.sid for r in replies]))).all())
        messages = session.execute(select(Message.delivery_state, Message.delivered_at)
                                   .where(Message.id.in_(ids))).all()
        events = session.scalars(select(EventLog.payload).where(
            EventLog.type == "message.delivery_changed").order_by(EventLog.id)).all()
    applied: dict[int, list[str]] = {}
    for payload in events:
        if payload.get("message_id") in ids and payload.get("provider_status"):
            applied.setdefault(payload["message_id"], []).append(payload["provider_status"])
    regressions = sum(STATUS_RANK[b] < STATUS_RANK[a] for seq in applied.values()
                      for a, b in pairwise(seq))
    finals: dict[str, int] = {}
    for reply in replies:
        final = parts.get(reply.sid, "missing")
        finals[final] = finals.get(final, 0) + 1
    return {"final_status": finals,
            "not_delivered": sum(parts.get(r.sid) != "delivered" for r in replies),
            "failed": sum(state == DeliveryState.FAILED for state, _ in messages),
            "without_delivered_at": sum(at is None for _, at in messages),
            "applied_changes": sum(len(seq) for seq in applied.values()),
            "regressions": regressions}


def _outbound_sms(served: Served) -> int:
    from sqlalchemy import func, select

    from contactcenter.tickets.models import Message

    with served.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Message).where(
            Message.channel == "sms", Message.direction == "outbound")) or 0)


def _burst_plan(rng: random.Random, count: int, callbacks: int) -> tuple[list[tuple[str, int]], int]:
    """(kind, n) per request and the number of new SMS: status callbacks at random places.

    ``n`` is the SMS number for new/redelivered/forged SMS and the callback's index for
    ``status``. Every other forged request is a forged "failed" status callback: were it
    accepted, a reply would end failed.
    """
    slots = set(rng.sample(range(count), min(callbacks, count)))
    plan: list[tuple[str, int]] = []
    fresh = callback = 0
    share = 1 - len(slots) / count  # keep forged at 2% and redelivered at 10% of all
    for i in range(count):
        roll = rng.random() * share
        if i in slots:
            plan.append(("status", callback))
            callback += 1
        elif roll < 0.02:
            plan.append(("forged", 10_000_000 + i))
        elif roll < 0.12 and fresh:
            plan.append(("redelivered", rng.randrange(fresh)))
        else:
            plan.append(("new", fresh))
            fresh += 1
    return plan, fresh


def _burst_request(public: str, replies: list[SentReply], calls: list[tuple[int, str]],
                   kind: str, n: int) -> tuple[str, dict[str, str], bool]:
    """(URL path with query, form, forge) of one request of the burst."""
    if kind == "status":
        reply_index, status = calls[n]
        reply = replies[reply_index]
        return reply.callback.removeprefix(public), _status_params(reply, status), False
    if kind == "forged" and n % 2 and replies:
        reply = replies[n % len(replies)]
        return reply.callback.removeprefix(public), _status_params(reply, "failed"), True
    # "SMb...": the stand-in numbers the replies' sids SM000...1, SM000...2 (an inbound SMS
    # with an outbound message's sid would rightly be taken for a repeat).
    return "/twilio/sms", _sms(n, f"SMb{n:031x}"), kind == "forged"


def webhook_burst(count: int, rate: float) -> dict[str, Any]:
    """L3: signed Twilio webhooks at a pinned rate: new SMS, 10% redelivered, 2% forged and
    5% delivery status callbacks for replies the product sent, shuffled and repeated."""
    import requests

    from tests.channels.phone.twilio_fake import start_fake_twilio

    fake, fake_server = start_fake_twilio()
    served = Served()
    try:
        _add_inboxes(served)
        public = _twilio_env(served, fake.url)
        served.start()
        assert served.proc is not None
        rng = random.Random(3)
        seeds = max(2, round(count * 0.05 / CALLBACKS_PER_REPLY))
        replies = _seed_replies(served, fake, public, seeds)
        calls, backwards = _callback_plan(rng, seeds)
        sampler = MemorySampler(served.proc.pid)
        sampler.start()
        plan, fresh = _burst_plan(rng, count, len(calls))
        latencies: list[float] = []
        statuses: dict[str, dict[int, int]] = {"new": {}, "redelivered": {}, "forged": {},
                                               "status": {}}
        errors: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def one(i: int) -> None:
            kind, n = plan[i]
            path, params, forge = _burst_request(public, replies, calls, kind, n)
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            started = time.perf_counter()
            try:
                answer = _signed_post(session, public, path, params, forge=forge)
            except requests.RequestException as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            with lock:
                latencies.append(time.perf_counter() - started)
                codes = statuses[kind]
                codes[answer.status_code] = codes.get(answer.status_code, 0) + 1

        with ThreadPoolExecutor(16) as pool:
            took = _pinned(rate, count, lambda i: pool.submit(one, i))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _inbound_sms(served)[0] < fresh + seeds:
            time.sleep(0.5)
        sampler.stop.set()
        total, distinct_total = _inbound_sms(served)
        stored, distinct = total - seeds, distinct_total - seeds  # the seed tickets' SMS
        final = _final_states(served, replies)
        sent_to_twilio = len(fake.posts("/Messages.json"))
        lat = latency_figures(latencies)
        server_errors = sum(n for codes in statuses.values()
                            for code, n in codes.items() if code >= 500)
        forged_ok = set(statuses["forged"]) <= {403}
        callbacks_ok = set(statuses["status"]) <= {200}
        monotonic = (final["not_delivered"] == final["failed"] == final["regressions"]
                     == final["without_delivered_at"] == 0)
        return {"scenario": "webhook_burst", "requests": count, "target_rate_per_s": rate,
                "achieved_rate_per_s": round(len(latencies) / took, 1) if took else None,
                "new_messages": fresh, "stored_messages": stored,
                "duplicates": stored - distinct, "status_codes": statuses,
                "status_callbacks": {"replies": seeds, "callbacks": len(calls),
                                     "replies_with_backward_callbacks": backwards,
                                     "forged_failed_callbacks": sum(
                                         kind == "forged" and n % 2 == 1 for kind, n in plan),
                                     "sent_to_twilio": sent_to_twilio,
                                     "outbound_sms_stored": _outbound_sms(served),
                                     "monotonic": monotonic, **final},
                "server_errors": server_errors, "errors": len(errors),
                "error_samples": errors[:3], "latency": lat, "memory": sampler.figures(),
                "pass": stored == distinct == fresh and forged_ok and callbacks_ok
                and monotonic and sent_to_twilio == seeds and server_errors == 0
                and not errors and bool(lat) and lat["p99_ms"] < 500}
    finally:
        served.close()
        fake_server.shutdown()


def chat_concurrency(visitors: int, agents: int, paced: int, rate: float) -> dict[str, Any]:
    """L4: visitor sockets chatting with agent sockets through ``benchmarks/chat.py``'s clients.

    One ``serve`` process on SQLite (the short variant); the two-process Redis variant is
    ``benchmarks/chat.py`` itself. Each visitor's messages carry its send time: latency is
    visitor emit to agent receipt; messages received twice are counted, never merged.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # chat.py imports _common
    from benchmarks import chat

    tmp = Path(tempfile.mkdtemp(prefix="cc-load-chat-"))
    procs: list[Any] = []
    try:
        url = f"sqlite:///{tmp / 'chat.db'}"
        seeded = chat.seed(url, agents)
        procs, urls = chat.start_products(tmp, url, 1, visitors + agents + 64, None)
        sampler = MemorySampler(procs[0].popen.pid)
        sampler.start()
        args = argparse.Namespace(visitors=visitors, agents=agents, paced=paced, rate=rate,
                                  burst=0, client_procs=2)
        result = chat.drive("product", urls, seeded, args)
        sampler.stop.set()
        paced_figures = result.get("paced") or {}
        expected = paced_figures.get("n", 0) - paced_figures.get("failed_sends", 0)
        lost = expected - paced_figures.get("received", 0)
        memory = sampler.figures()
        start_mb, end_mb = memory.get("rss_mb_start"), memory.get("rss_mb_end")
        growth = (end_mb - start_mb) / start_mb if start_mb and end_mb else None
        return {"scenario": "chat_concurrency", "visitors": visitors, "agents": agents,
                "chats": result.get("chats"), "messages": paced_figures.get("n"),
                "received": paced_figures.get("received"), "lost": lost,
                "failed_sends": paced_figures.get("failed_sends"),
                "target_rate_per_s": rate, "messages_per_s": paced_figures.get("messages_per_s"),
                "latency": {k: paced_figures.get(k) for k in ("p50_ms", "p95_ms", "p99_ms")},
                "errors": paced_figures.get("errors"), "memory": memory,
                "rss_growth": round(growth, 3) if growth is not None else None,
                "pass": lost == 0 and not paced_figures.get("failed_sends")
                and (paced_figures.get("p95_ms") or 1e9) < 1000}
    finally:
        for proc in procs:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _open_fds(pid: int) -> int:
    """Open file descriptors of a process and its children (gunicorn's worker)."""
    total = 0
    try:
        total += len(list(Path(f"/proc/{pid}/fd").iterdir()))
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _open_fds(int(child))
    except OSError:
        pass
    return total


def mixed_soak(seconds: float, mail_rate: float, sms_rate: float, read_rate: float
               ) -> dict[str, Any]:
    """L10: a steady mix of mail, SMS webhooks and agent reads; look for drift.

    Reports per-stream counts and errors, latency percentiles, the RSS slope, open file
    descriptors at the start and end, and the error counts of the first and second half
    (drift). Chat traffic is the chat_concurrency scenario's; it is not mixed in here.
    """
    import requests

    from contactcenter.accounts.service import create_user, issue_token
    from tests.channels.phone.twilio_fake import start_fake_twilio

    fake, fake_server = start_fake_twilio()
    served = Served()
    try:
        _add_inboxes(served)
        public = _twilio_env(served, fake.url)
        with served.db.session() as session:
            token = issue_token(session, create_user(session, "soak@load.test", "Soak Agent",
                                                     "soak-password-123", ("agent",)), "soak")
            session.commit()
        served.start()
        assert served.proc is not None
        pid = served.proc.pid
        sampler = MemorySampler(pid)
        sampler.start()
        fds_start = _open_fds(pid)
        rng = random.Random(10)
        lock = threading.Lock()
        latencies: dict[str, list[float]] = {"mail": [], "sms": [], "read": []}
        errors: dict[str, list[float]] = {"mail": [], "sms": [], "read": []}
        began = time.perf_counter()
        mails = [mail(n, rng) for n in range(int(seconds * mail_rate) + 1)]
        local = threading.local()

        def record(stream: str, started: float, ok: bool) -> None:
            with lock:
                if ok:
                    latencies[stream].append(time.perf_counter() - started)
                else:
                    errors[stream].append(started - began)

        def send_mail(n: int) -> None:
            started = time.perf_counter()
            try:
                with smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=30) as client:
                    client.sendmail(f"s{n}@load.example.com", [SUPPORT], mails[n])
                record("mail", started, True)
            except (smtplib.SMTPException, OSError):
                record("mail", started, False)

        def send_sms(n: int) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            started = time.perf_counter()
            try:
                ok = _signed_post(session, public, "/twilio/sms",
                                  _sms(n, f"SM{n:032x}")).status_code == 200
            except requests.RequestException:
                ok = False
            record("sms", started, ok)

        def read(n: int) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            started = time.perf_counter()
            path = "/api/v1/tickets?limit=25" if n % 2 else "/api/v1/customers?q=Sender"
            try:
                ok = session.get(public + path, timeout=30, headers={
                    "Authorization": f"Bearer {token}"}).status_code == 200
            except requests.RequestException:
                ok = False
            record("read", started, ok)

        streams = [(send_mail, mail_rate), (send_sms, sms_rate), (read, read_rate)]
        with ThreadPoolExecutor(24) as pool:
            threads = [threading.Thread(target=_pinned, args=(
                rate, int(seconds * rate), lambda i, f=func: pool.submit(f, i)), daemon=True)
                for func, rate in streams]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        took = time.perf_counter() - began
        time.sleep(2)
        fds_end = _open_fds(pid)
        sampler.stop.set()
        half = took / 2
        first_half = sum(1 for e in errors.values() for t in e if t < half)
        second_half = sum(1 for e in errors.values() for t in e if t >= half)
        memory = sampler.figures()
        figures = {stream: {"sent": len(latencies[stream]) + len(errors[stream]),
                            "errors": len(errors[stream]), **latency_figures(latencies[stream])}
                   for stream in latencies}
        total_errors = sum(len(e) for e in errors.values())
        slope = memory.get("rss_slope_mb_per_min")
        return {"scenario": "mixed_soak", "seconds": round(took, 1),
                "target_rates_per_s": {"mail": mail_rate, "sms": sms_rate, "read": read_rate},
                "streams": figures, "errors": total_errors,
                "errors_first_half": first_half, "errors_second_half": second_half,
                "open_fds": {"start": fds_start, "end": fds_end}, "memory": memory,
                "not_covered": "chat messages (see chat_concurrency)",
                # A short run is all warm-up (caches, pools, imports): its RSS slope says
                # nothing, so only runs of 5 minutes or more are judged on it (< 2 MB/min).
                "memory_judged": seconds >= 300,
                "pass": total_errors == 0 and fds_end - fds_start < 40
                and (seconds < 300 or slope is None or slope < 2)}
    finally:
        served.close()
        fake_server.shutdown()
