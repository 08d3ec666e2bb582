"""Background jobs: the inline queue, the outbox, the sweeps, and RQ on a real Redis."""

from __future__ import annotations

import collections
import datetime as dt
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter import jobs as jobs_module
from contactcenter.accounts.models import User
from contactcenter.accounts.service import create_user
from contactcenter.channels.base import (
    ChannelAdapter,
    ChannelError,
    ChannelRegistry,
    InboundContact,
    OutboundMessage,
    SendResult,
)
from contactcenter.config import Settings
from contactcenter.db import Database, utcnow
from contactcenter.events import EventLog, RecordingPublisher, record_event
from contactcenter.jobs import (
    JOBS,
    PERIODIC,
    InlineJobQueue,
    JobContext,
    JobSpec,
    Periodic,
    RqJobQueue,
    load_jobs,
    rq_job_id,
    run_scheduler,
    set_worker_context_factory,
)
from contactcenter.tickets.intake import ingest_inbound, store_raw
from contactcenter.tickets.models import (
    DeliveryState,
    Message,
    RawInbound,
    RawState,
    Ticket,
    TicketStatus,
)
from contactcenter.tickets.outbox import (
    MAX_ATTEMPTS,
    STUCK_AFTER,
    backoff,
    deliver_message,
    due_messages,
    sweep_outbox,
)
from contactcenter.tickets.service import add_reply
from tests.factories import make_contact, seq

KIND = "testchan"


@dataclass
class RecordingAdapter:
    """A channel that records every send and can be told to fail."""

    kind: str = KIND
    fail_with: Exception | None = None
    sent: list[OutboundMessage] = field(default_factory=list)

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        raise ChannelError("the test channel receives nothing")

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        self.sent.append(outbound)
        if self.fail_with is not None:
            raise self.fail_with
        return SendResult(provider_id=f"<out-{outbound.message_id}@test>")


@pytest.fixture
def adapter(registry: ChannelRegistry) -> Iterator[RecordingAdapter]:
    recorder = RecordingAdapter()
    assert isinstance(recorder, ChannelAdapter)
    registry.register(recorder)
    yield recorder
    registry.unregister(KIND)


def make_agent(session: Session) -> User:
    return create_user(session, f"agent{seq()}@example.test", "Agent", None, ["agent"])


def pending_reply(session: Session, settings: Settings, now: dt.datetime | None = None
                  ) -> Message:
    """A ticket on the test channel with one committed reply waiting for the outbox."""
    result = ingest_inbound(session, make_contact(channel=KIND, sender="anna@example.com",
                                                  external_id=f"<in-{seq()}@test>"),
                            settings=settings)
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None
    agent = make_agent(session)
    message = add_reply(session, ticket, agent.id, "Try turning it off and on.", now=now)
    session.commit()
    return message


def reload(session: Session, message: Message) -> Message:
    session.expire_all()
    fresh = session.get(Message, message.id)
    assert fresh is not None
    return fresh


# --- the inline queue ----------------------------------------------------------------

@pytest.fixture
def test_jobs(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Register throwaway jobs (removed after the test); return what they saw."""
    load_jobs()
    seen: dict[str, list[Any]] = collections.defaultdict(list)

    def echo(ctx: JobContext, *args: Any) -> None:
        seen["echo"].append((threading.current_thread().name, args))

    def fail(ctx: JobContext, *args: Any) -> None:
        seen["fail"].append(args)
        raise RuntimeError("boom")

    def reenter(ctx: JobContext, depth: int) -> None:
        seen["reenter"].append(depth)
        assert ctx.jobs is not None
        ctx.jobs.enqueue("test.reenter", depth + 1, key="same")

    for name, func in (("test.echo", echo), ("test.fail", fail), ("test.reenter", reenter)):
        monkeypatch.setitem(JOBS, name, JobSpec(name, func, "default"))
    return seen


def test_synchronous_queue_runs_jobs_in_the_callers_thread(
        jobs: InlineJobQueue, test_jobs: dict[str, list[Any]]) -> None:
    jobs.enqueue("test.echo", 1, "a")
    jobs.enqueue("test.echo", 2, "b")
    caller = threading.current_thread().name
    assert test_jobs["echo"] == [(caller, (1, "a")), (caller, (2, "b"))]
    assert jobs.history == [("test.echo", (1, "a")), ("test.echo", (2, "b"))]


def test_threaded_queue_runs_jobs_on_its_pool(db: Database, settings: Settings,
                                              registry: ChannelRegistry,
                                              test_jobs: dict[str, list[Any]]) -> None:
    queue = InlineJobQueue(JobContext(db, settings, registry), workers=2, periodic=False)
    for n in range(5):
        queue.enqueue("test.echo", n)
    queue.stop()  # waits for the pool
    assert sorted(args for _, args in test_jobs["echo"]) == [(n,) for n in range(5)]
    assert all(thread.startswith("job") for thread, _ in test_jobs["echo"])


def test_unknown_job_is_refused(jobs: InlineJobQueue) -> None:
    with pytest.raises(LookupError):
        jobs.enqueue("no.such.job")
    assert jobs.history == []


def test_keyed_job_is_not_run_twice_concurrently(db: Database, settings: Settings,
                                                 registry: ChannelRegistry,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow(ctx: JobContext, n: int) -> None:
        runs.append(n)
        started.set()
        release.wait(5)

    monkeypatch.setitem(JOBS, "test.slow", JobSpec("test.slow", slow, "default"))
    queue = InlineJobQueue(JobContext(db, settings, registry), workers=4, periodic=False)
    try:
        queue.enqueue("test.slow", 1, key="k")
        assert started.wait(5)
        queue.enqueue("test.slow", 2, key="k")  # still running: skipped
        queue.enqueue("test.slow", 3, key="other")
        queue.enqueue("test.slow", 4)  # unkeyed jobs always run
    finally:
        release.set()
        queue.stop()
    assert sorted(runs) == [1, 3, 4]
    assert ("test.slow", (2,)) not in queue.history


def test_key_is_released_after_the_job(jobs: InlineJobQueue,
                                       test_jobs: dict[str, list[Any]]) -> None:
    jobs.ctx.jobs = jobs
    jobs.enqueue("test.reenter", 0, key="same")  # re-enqueues itself under the same key
    assert test_jobs["reenter"] == [0]
    jobs.enqueue("test.reenter", 10, key="same")
    assert test_jobs["reenter"] == [0, 10]


def test_failing_job_is_recorded_and_does_not_crash_the_queue(
        jobs: InlineJobQueue, test_jobs: dict[str, list[Any]]) -> None:
    jobs.enqueue("test.fail", 1, key="f")
    jobs.enqueue("test.echo", 2)
    jobs.enqueue("test.fail", 3, key="f")  # the key was released despite the failure
    assert jobs.failures == [("test.fail", "RuntimeError: boom"),
                             ("test.fail", "RuntimeError: boom")]
    assert test_jobs["fail"] == [(1,), (3,)]
    assert [args for _, args in test_jobs["echo"]] == [(2,)]


def test_failing_job_on_the_pool_is_recorded(db: Database, settings: Settings,
                                             registry: ChannelRegistry,
                                             test_jobs: dict[str, list[Any]]) -> None:
    queue = InlineJobQueue(JobContext(db, settings, registry), workers=2, periodic=False)
    queue.enqueue("test.fail", 1)
    queue.enqueue("test.echo", 2)
    queue.stop()
    assert queue.failures == [("test.fail", "RuntimeError: boom")]
    assert [args for _, args in test_jobs["echo"]] == [(2,)]


# --- the outbox ----------------------------------------------------------------------

def test_add_reply_creates_a_pending_outbound_message(session: Session, settings: Settings,
                                                      adapter: RecordingAdapter) -> None:
    now = utcnow()
    message = pending_reply(session, settings, now=now)
    assert message.direction == "outbound"
    assert message.delivery_state == DeliveryState.PENDING
    assert message.delivery_attempts == 0
    assert message.next_attempt_at == now
    assert message.recipient == "anna@example.com"
    assert message.channel == KIND
    assert message.ticket.status == TicketStatus.PENDING
    assert message.ticket.first_response_at == now
    assert adapter.sent == []  # nothing is sent in the request
    assert due_messages(session, now) == [message.id]


def test_internal_note_is_never_delivered(session: Session, settings: Settings,
                                          adapter: RecordingAdapter) -> None:
    reply = pending_reply(session, settings)
    note = add_reply(session, reply.ticket, reply.author_user_id or 0, "internal only",
                     internal=True)
    session.commit()
    assert note.delivery_state == DeliveryState.NONE
    assert deliver_message(session, note.id, ChannelRegistry(), settings) == "missing"
    assert due_messages(session, utcnow() + dt.timedelta(days=1)) == [reply.id]


def test_delivery_job_sends_exactly_once_even_if_run_twice(
        session: Session, settings: Settings, adapter: RecordingAdapter,
        jobs: InlineJobQueue, events: RecordingPublisher) -> None:
    message = pending_reply(session, settings)
    events.published.clear()

    jobs.enqueue("outbox.deliver", message.id)
    jobs.enqueue("outbox.deliver", message.id)

    assert jobs.failures == []
    assert len(adapter.sent) == 1
    outbound = adapter.sent[0]
    ticket = message.ticket
    assert (outbound.message_id, outbound.channel, outbound.recipient, outbound.ticket_number,
            outbound.reply_token, outbound.text) == (
        message.id, KIND, "anna@example.com", ticket.number, ticket.reply_token,
        "Try turning it off and on.")
    assert len(outbound.in_reply_to) == 1 and outbound.in_reply_to[0].startswith("<in-")
    fresh = reload(session, message)
    assert fresh.delivery_state == DeliveryState.SENT
    assert fresh.delivery_attempts == 1
    assert fresh.delivered_at is not None
    assert fresh.next_attempt_at is None
    assert fresh.external_id == f"<out-{message.id}@test>"
    changed = [e for e in events.published if e.type == "message.delivery_changed"]
    assert [e.payload["delivery_state"] for e in changed] == ["sent"]
    assert sweep_outbox(session, jobs.ctx.registry, settings,
                        now=utcnow() + dt.timedelta(days=1)) == {}
    assert len(adapter.sent) == 1


def test_delivery_of_a_missing_message(session: Session, settings: Settings,
                                       adapter: RecordingAdapter) -> None:
    assert deliver_message(session, 999_999, ChannelRegistry(), settings) == "missing"
    assert adapter.sent == []


def test_failing_adapter_backs_off_then_gives_up(session: Session, settings: Settings,
                                                 registry: ChannelRegistry,
                                                 adapter: RecordingAdapter) -> None:
    adapter.fail_with = ConnectionError("provider down")
    t = utcnow()
    message = pending_reply(session, settings, now=t)

    assert deliver_message(session, message.id, registry, settings, now=t) == "pending"
    fresh = reload(session, message)
    assert fresh.delivery_state == DeliveryState.PENDING
    assert fresh.delivery_attempts == 1
    assert fresh.next_attempt_at == t + dt.timedelta(minutes=1)
    assert fresh.delivery_error == "ConnectionError: provider down"

    # Not due before its backoff has passed.
    assert sweep_outbox(session, registry, settings, now=t + dt.timedelta(seconds=59)) == {}
    assert len(adapter.sent) == 1

    now = t
    for attempt in range(2, MAX_ATTEMPTS + 1):
        now = reload(session, message).next_attempt_at  # type: ignore[assignment]
        counts = sweep_outbox(session, registry, settings, now=now)
        expected = "failed" if attempt == MAX_ATTEMPTS else "pending"
        assert counts == {expected: 1}, attempt
        fresh = reload(session, message)
        assert fresh.delivery_attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert fresh.next_attempt_at == now + backoff(attempt)
    assert len(adapter.sent) == MAX_ATTEMPTS
    fresh = reload(session, message)
    assert fresh.delivery_state == DeliveryState.FAILED
    assert fresh.next_attempt_at is None
    assert fresh.delivery_error == "ConnectionError: provider down"

    # A failed reply stays failed (a person decides what to do with it).
    later = now + dt.timedelta(days=1)
    assert due_messages(session, later) == []
    assert deliver_message(session, message.id, registry, settings, now=later) == "failed"
    assert len(adapter.sent) == MAX_ATTEMPTS


@pytest.mark.parametrize(("attempts", "minutes"), [(0, 1), (1, 1), (2, 2), (3, 4), (7, 64),
                                                   (8, 120), (30, 120)])
def test_backoff_is_bounded(attempts: int, minutes: int) -> None:
    assert backoff(attempts) == dt.timedelta(minutes=minutes)


def test_adapter_recovers_after_a_failure(session: Session, settings: Settings,
                                          registry: ChannelRegistry,
                                          adapter: RecordingAdapter) -> None:
    adapter.fail_with = TimeoutError("slow")
    t = utcnow()
    message = pending_reply(session, settings, now=t)
    deliver_message(session, message.id, registry, settings, now=t)
    adapter.fail_with = None
    assert sweep_outbox(session, registry, settings, now=t + dt.timedelta(minutes=1)) == {
        "sent": 1}
    fresh = reload(session, message)
    assert (fresh.delivery_state, fresh.delivery_attempts, fresh.delivery_error) == (
        DeliveryState.SENT, 2, "")


def test_sweep_delivers_replies_whose_job_was_lost(session: Session, settings: Settings,
                                                   registry: ChannelRegistry,
                                                   adapter: RecordingAdapter) -> None:
    t = utcnow()
    lost = pending_reply(session, settings, now=t)  # committed, never enqueued
    assert sweep_outbox(session, registry, settings, now=t) == {"sent": 1}
    assert [o.message_id for o in adapter.sent] == [lost.id]
    assert reload(session, lost).delivery_state == DeliveryState.SENT
    assert sweep_outbox(session, registry, settings, now=t + dt.timedelta(hours=1)) == {}
    assert len(adapter.sent) == 1


def test_sweep_redelivers_a_reply_stuck_in_sending(session: Session, settings: Settings,
                                                   registry: ChannelRegistry,
                                                   adapter: RecordingAdapter) -> None:
    t = utcnow()
    message = pending_reply(session, settings, now=t)
    # A worker claimed it and died before recording the outcome.
    fresh = reload(session, message)
    fresh.delivery_state = DeliveryState.SENDING
    fresh.delivery_attempts = 1
    fresh.next_attempt_at = t + STUCK_AFTER
    session.commit()

    # Another job for it while the claim is fresh does nothing.
    assert deliver_message(session, message.id, registry, settings,
                           now=t + dt.timedelta(minutes=1)) == "sending"
    assert sweep_outbox(session, registry, settings, now=t + dt.timedelta(minutes=5)) == {}
    assert adapter.sent == []
    assert sweep_outbox(session, registry, settings, now=t + STUCK_AFTER) == {"sent": 1}
    fresh = reload(session, message)
    assert (fresh.delivery_state, fresh.delivery_attempts) == (DeliveryState.SENT, 2)
    assert len(adapter.sent) == 1


def test_outbox_sweep_job(session: Session, settings: Settings, adapter: RecordingAdapter,
                          jobs: InlineJobQueue) -> None:
    first = pending_reply(session, settings)
    second = pending_reply(session, settings)
    jobs.enqueue("outbox.sweep")
    assert jobs.failures == []
    assert sorted(o.message_id for o in adapter.sent) == [first.id, second.id]


def test_intake_jobs_process_stored_raw_payloads(session: Session, settings: Settings,
                                                 jobs: InlineJobQueue) -> None:
    payload = (b'{"external_id": "crm-%d", "from": {"kind": "email", '
               b'"address": "anna@example.com"}, "text": "hello"}')
    raw, _ = store_raw(session, "api", "crm-1", payload % 1)
    jobs.enqueue("intake.process_raw", raw.id)
    # A raw payload whose job was lost is picked up by the sweep after a grace period.
    lost, _ = store_raw(session, "api", "crm-2", payload % 2)
    fresh, _ = store_raw(session, "api", "crm-3", payload % 3)
    lost.received_at = utcnow() - dt.timedelta(minutes=5)
    session.commit()
    jobs.enqueue("intake.sweep")
    assert jobs.failures == []
    session.expire_all()
    states = dict(session.execute(select(RawInbound.external_id, RawInbound.state)).all())
    assert states == {"crm-1": RawState.PROCESSED, "crm-2": RawState.PROCESSED,
                      "crm-3": RawState.PENDING}
    assert fresh.id != lost.id


def test_trim_job_keeps_the_configured_number_of_events(
        db: Database, session: Session, settings: Settings, registry: ChannelRegistry) -> None:
    for _ in range(5):
        record_event(session, "ticket.updated", {}, ["ticket:1"])
    session.commit()
    ctx = JobContext(db, settings.replace(event_retention=2), registry)
    queue = InlineJobQueue(ctx, synchronous=True, periodic=False)
    queue.enqueue("events.trim")
    assert queue.failures == []
    assert len(list(session.scalars(select(EventLog.id)))) == 2


# --- RQ on a real Redis --------------------------------------------------------------

@pytest.fixture
def rq_ctx(tmp_path: Path, settings: Settings, registry: ChannelRegistry,
           adapter: RecordingAdapter, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobContext]:
    """A worker context on a file-based SQLite database, installed for RQ-run jobs."""
    database = Database(f"sqlite:///{tmp_path / 'worker.db'}")
    database.create_all()
    ctx = JobContext(database, settings.replace(database_url=database.url), registry)
    monkeypatch.setattr(jobs_module, "_worker_ctx_factory", None)
    monkeypatch.setattr(jobs_module, "_worker_ctx", {})
    set_worker_context_factory(lambda: ctx)
    yield ctx
    database.dispose()


@pytest.fixture
def rq_jobs(redis_url: str) -> Iterator[RqJobQueue]:
    queue = RqJobQueue(redis_url)
    yield queue
    queue.stop()


def run_worker(rq_jobs: RqJobQueue, *queues: str) -> None:
    """Run an in-process RQ worker until its queues are empty."""
    from rq import SimpleWorker

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = SimpleWorker([rq_jobs.queue(q) for q in queues], connection=rq_jobs.redis)
        worker.work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.redis
def test_rq_enqueue_puts_the_job_on_its_workloads_queue(rq_jobs: RqJobQueue) -> None:
    rq_jobs.enqueue("outbox.deliver", 41)
    rq_jobs.enqueue("intake.process_raw", 7)
    rq_jobs.enqueue("events.trim")
    assert [(j.func_name, j.args) for j in rq_jobs.queue("outbound").get_jobs()] == [
        ("contactcenter.jobs.rq_entry", ("outbox.deliver", [41]))]
    assert [j.args for j in rq_jobs.queue("inbound").get_jobs()] == [("intake.process_raw", [7])]
    assert [j.args for j in rq_jobs.queue("default").get_jobs()] == [("events.trim", [])]
    for name in ("search", "sla"):
        assert rq_jobs.queue(name).count == 0
    with pytest.raises(LookupError):
        rq_jobs.enqueue("no.such.job")


@pytest.mark.redis
def test_rq_worker_delivers_a_pending_reply(rq_jobs: RqJobQueue, rq_ctx: JobContext,
                                            adapter: RecordingAdapter) -> None:
    with rq_ctx.db.session() as session:
        message = pending_reply(session, rq_ctx.settings)
        message_id = message.id

    rq_jobs.enqueue("outbox.deliver", message_id)
    rq_jobs.enqueue("outbox.deliver", message_id)  # a repeated job must not send twice
    assert rq_jobs.queue("outbound").count == 2
    run_worker(rq_jobs, "outbound")

    assert rq_jobs.queue("outbound").count == 0
    assert [o.message_id for o in adapter.sent] == [message_id]
    with rq_ctx.db.session() as session:
        stored = session.get(Message, message_id)
        assert stored is not None
        assert stored.delivery_state == DeliveryState.SENT
        assert stored.delivery_attempts == 1
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    assert FailedJobRegistry(queue=rq_jobs.queue("outbound")).count == 0
    finished = FinishedJobRegistry(queue=rq_jobs.queue("outbound")).get_job_ids()
    results = {rq_jobs.queue("outbound").fetch_job(i).return_value() for i in finished}
    assert results == {"sent"}


@pytest.mark.redis
def test_rq_keyed_job_is_not_enqueued_twice_while_queued(rq_jobs: RqJobQueue,
                                                         rq_ctx: JobContext) -> None:
    rq_jobs.enqueue("outbox.sweep", key="periodic:outbox.sweep")
    rq_jobs.enqueue("outbox.sweep", key="periodic:outbox.sweep")
    queue = rq_jobs.queue("outbound")
    assert queue.job_ids == [rq_job_id("periodic:outbox.sweep")]
    rq_jobs.enqueue("outbox.sweep", key="other")  # another key is another job
    assert queue.count == 2

    run_worker(rq_jobs, "outbound")
    assert queue.count == 0
    # Once it has run, the key may be enqueued again.
    rq_jobs.enqueue("outbox.sweep", key="periodic:outbox.sweep")
    assert queue.job_ids == [rq_job_id("periodic:outbox.sweep")]


@pytest.mark.parametrize("key", ["periodic:outbox.sweep", "outbox:deliver:42", "a b/c", "x" * 300,
                                 "ключ"])
def test_rq_job_ids_are_valid_for_rq(key: str) -> None:
    from rq.job import validate_job_id

    validate_job_id(rq_job_id(key))
    assert rq_job_id(key) == rq_job_id(key)


def test_rq_job_ids_keep_distinct_keys_apart() -> None:
    keys = ["periodic:outbox.sweep", "periodic-outbox-sweep", "periodic:outbox:sweep",
            "a.b", "a-b", "a_b"]
    assert len({rq_job_id(k) for k in keys}) == len(keys)


@pytest.mark.redis
def test_two_schedulers_enqueue_each_periodic_job_once_per_slot(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    load_jobs()
    monkeypatch.setitem(JOBS, "test.tick", JobSpec("test.tick", lambda ctx: None, "default"))
    monkeypatch.setitem(PERIODIC, "test.tick", Periodic("test.tick", 0.25))
    calls: list[str] = []
    lock = threading.Lock()

    class CountingQueue(RqJobQueue):
        def enqueue(self, name: str, *args: Any, key: str | None = None) -> None:
            with lock:
                calls.append(name)
            super().enqueue(name, *args, key=key)

    stop = threading.Event()
    schedulers = [CountingQueue(redis_url), CountingQueue(redis_url)]
    threads = [threading.Thread(target=run_scheduler, args=(q, stop, 0.05), daemon=True)
               for q in schedulers]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()

    redis = schedulers[0].redis
    slots = collections.Counter(
        key.decode().rsplit(":", 1)[0].removeprefix("contactcenter:sched:")
        for key in redis.scan_iter("contactcenter:sched:*"))
    counted = collections.Counter(calls)
    assert set(counted) == set(PERIODIC)
    assert counted == slots  # exactly one enqueue per slot across both schedulers
    assert slots["test.tick"] >= 4
    for name in ("intake.sweep", "outbox.sweep", "events.trim"):
        assert slots[name] in (1, 2)  # 2 only when a slot boundary fell inside the run
    # Keyed: however many slots passed, each periodic job waits once on its queue.
    for name, queue_name in (("intake.sweep", "inbound"), ("outbox.sweep", "outbound"),
                             ("events.trim", "default"), ("test.tick", "default")):
        waiting = [j for j in schedulers[0].queue(queue_name).get_jobs() if j.args[0] == name]
        assert len(waiting) == 1, name
    for queue in schedulers:
        queue.stop()
