"""Enqueue and schedule background work: in-process threads embedded, RQ when scaled.

Jobs are registered by name with ``@job``; callers enqueue a name and JSON-able
arguments after their commit. Every job is idempotent and every periodic sweep
repairs what a lost job left, so the two backends may lose or repeat a job
without losing work: the database stays the source of truth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from contactcenter.channels.base import ChannelRegistry
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.events import EventPublisher, RecordingPublisher

log = logging.getLogger(__name__)

QUEUES = ("inbound", "outbound", "search", "sla", "default")


@dataclass
class JobContext:
    """What a job needs: the database, settings, channel adapters and the event publisher."""

    db: Database
    settings: Settings
    registry: ChannelRegistry
    publisher: EventPublisher = field(default_factory=RecordingPublisher)
    jobs: JobQueue | None = None


JobFunc = Callable[..., Any]


@dataclass(frozen=True)
class JobSpec:
    """A registered job: its function and the RQ queue it runs on."""

    name: str
    func: JobFunc
    queue: str


@dataclass(frozen=True)
class Periodic:
    """A job run every ``every`` seconds by the scheduler."""

    name: str
    every: float


JOBS: dict[str, JobSpec] = {}
PERIODIC: dict[str, Periodic] = {}


def job(name: str, queue: str = "default", every: float | None = None
        ) -> Callable[[JobFunc], JobFunc]:
    """Register a job function ``func(ctx, *args)``; ``every`` makes it periodic."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def decorate(func: JobFunc) -> JobFunc:
        JOBS[name] = JobSpec(name, func, queue)
        if every is not None:
            PERIODIC[name] = Periodic(name, every)
        return func

    return decorate


EVENT_JOBS: dict[str, list[str]] = {}


def on_event(event_type: str, job_name: str) -> None:
    """Enqueue job ``job_name(ctx, payload)`` after every commit that recorded ``event_type``.

    This is how slow reactions (search indexing, suggestions, notifications) stay
    off the request path: the event row commits with the change, and the job
    runs afterwards with the event's payload. Like every job it may be lost or
    repeated, so it must be idempotent and backed by a sweep where loss matters.
    """
    names = EVENT_JOBS.setdefault(event_type, [])
    if job_name not in names:
        names.append(job_name)


def dispatch_event_jobs(jobs: JobQueue, rows: list[Any]) -> None:
    """Enqueue the jobs subscribed to the event rows of one committed transaction."""
    load_jobs()
    for row in rows:
        for name in EVENT_JOBS.get(row.type, ()):
            try:
                jobs.enqueue(name, row.payload, key=f"{name}:{row.id}")
            except Exception:  # noqa: BLE001 - a lost nudge is repaired by the sweeps
                log.exception("could not enqueue %s for event %s", name, row.id)


def load_jobs() -> None:
    """Import the modules that register jobs."""
    from contactcenter.channels.chat import jobs as _chat_jobs  # noqa: F401
    from contactcenter.channels.email import jobs as _email_jobs  # noqa: F401
    from contactcenter.channels.phone import jobs as _phone_jobs  # noqa: F401
    from contactcenter.field import jobs as _field_jobs  # noqa: F401
    from contactcenter.knowledge import jobs as _knowledge_jobs  # noqa: F401
    from contactcenter.reports import jobs as _reports_jobs  # noqa: F401
    from contactcenter.routing import jobs as _routing_jobs  # noqa: F401
    from contactcenter.sales import jobs as _sales_jobs  # noqa: F401
    from contactcenter.sla import jobs as _sla_jobs  # noqa: F401
    from contactcenter.tickets import jobs as _tickets_jobs  # noqa: F401


def run_registered(ctx: JobContext, name: str, args: tuple[Any, ...]) -> Any:
    """Run a registered job in the given context."""
    load_jobs()
    spec = JOBS.get(name)
    if spec is None:
        raise LookupError(f"no job named {name!r}")
    return spec.func(ctx, *args)


class JobQueue(Protocol):
    """The facade both backends implement."""

    def enqueue(self, name: str, *args: Any, key: str | None = None) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class InlineJobQueue:
    """Run jobs on a small thread pool in this process, with a periodic scheduler thread.

    ``synchronous=True`` runs each job in the caller's thread (tests and the CLI).
    """

    def __init__(self, ctx: JobContext, workers: int = 4, synchronous: bool = False,
                 periodic: bool = True) -> None:
        self.ctx = ctx
        self.synchronous = synchronous
        self.periodic = periodic
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running_keys: set[str] = set()
        self._lock = threading.Lock()
        self.history: list[tuple[str, tuple[Any, ...]]] = []
        self.failures: list[tuple[str, str]] = []

    def enqueue(self, name: str, *args: Any, key: str | None = None) -> None:
        """Run a job soon (or now when synchronous); a keyed job already running is skipped."""
        if name not in JOBS:
            load_jobs()
            if name not in JOBS:
                raise LookupError(f"no job named {name!r}")
        with self._lock:
            if key is not None and key in self._running_keys:
                return
            if key is not None:
                self._running_keys.add(key)
            self.history.append((name, args))
        if self.synchronous:
            self._run(name, args, key)
        else:
            future: Future[None] = self._pool.submit(self._run, name, args, key)
            del future

    def _run(self, name: str, args: tuple[Any, ...], key: str | None) -> None:
        try:
            run_registered(self.ctx, name, args)
        except Exception as exc:
            # The sweeps redo the work; record it so that it is visible.
            log.exception("job %s%r failed", name, args)
            __import__("contactcenter.ops.metrics", fromlist=["job_failed"]).job_failed(name)
            self.failures.append((name, f"{type(exc).__name__}: {exc}"))
        finally:
            if key is not None:
                with self._lock:
                    self._running_keys.discard(key)

    def start(self) -> None:
        """Start the periodic scheduler thread."""
        load_jobs()
        if not self.periodic or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._tick, name="scheduler", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        next_run = {name: time.monotonic() + p.every for name, p in PERIODIC.items()}
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for name, when in next_run.items():
                if now >= when:
                    next_run[name] = now + PERIODIC[name].every
                    self.enqueue(name, key=f"periodic:{name}")

    def stop(self) -> None:
        """Stop the scheduler and wait for running jobs."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=False)


# --- RQ backend -------------------------------------------------------------------------

_worker_ctx: dict[int, JobContext] = {}
_worker_ctx_factory: Callable[[], JobContext] | None = None


def set_worker_context_factory(factory: Callable[[], JobContext]) -> None:
    """Tell RQ-run jobs how to build their context (once per process)."""
    global _worker_ctx_factory
    _worker_ctx_factory = factory
    _worker_ctx.clear()


def install_worker_context(ctx: JobContext) -> None:
    """Make ``ctx`` this process's job context, to be inherited by forked work horses.

    RQ's ``Worker`` forks a work horse per job. Building the context (imports,
    settings, engine, adapters, job registry) in each horse cost about half a
    second of CPU per job; built once in the worker parent, every horse gets it
    for free through the fork and only renews what must not be shared across
    processes (see ``adopt_inherited_worker_context``).
    """
    _worker_ctx.clear()
    _worker_ctx[os.getpid()] = ctx


def adopt_inherited_worker_context() -> JobContext | None:
    """In a forked child, take over the parent's context with fresh connections.

    The child must not use the parent's pooled database connections (two
    processes on one socket corrupt the protocol), so the pool is replaced
    without closing the parent's connections: ``engine.dispose(close=False)``
    is SQLAlchemy's documented pattern for a forked child. Redis clients
    (RQ queue, the Socket.IO message queue) check the pid of their connection
    pool on every use and reconnect in a new process by themselves; their pools
    are reset here anyway so no parent socket is ever written to.
    """
    pid = os.getpid()
    if pid in _worker_ctx:
        return _worker_ctx[pid]
    if not _worker_ctx:
        return None
    ctx = next(iter(_worker_ctx.values()))
    ctx.db.engine.dispose(close=False)
    for client in _redis_clients(ctx):
        client.connection_pool.reset()
    _worker_ctx.clear()
    _worker_ctx[pid] = ctx
    return ctx


def _redis_clients(ctx: JobContext) -> list[Any]:
    """The Redis clients a context holds: its job queue's and its publisher's."""
    clients = [getattr(ctx.jobs, "redis", None)]
    socketio = getattr(ctx.publisher, "socketio", None)
    manager = getattr(getattr(socketio, "server", None), "manager", None)
    clients.append(getattr(manager, "redis", None))
    return [c for c in clients if c is not None and hasattr(c, "connection_pool")]


def worker_context() -> JobContext:
    """Return this process's job context: inherited from the worker parent, else built."""
    ctx = adopt_inherited_worker_context()
    if ctx is None:
        if _worker_ctx_factory is None:
            from contactcenter.app import build_job_context
            from contactcenter.config import default_settings

            ctx = build_job_context(default_settings())
        else:
            ctx = _worker_ctx_factory()
        install_worker_context(ctx)
    return ctx


def rq_entry(name: str, args: list[Any]) -> Any:
    """The function RQ runs: look the job up by name and run it in the worker's context."""
    try:
        return run_registered(worker_context(), name, tuple(args))
    except Exception:  # counted (ops metrics), then RQ retries or records it as failed
        __import__("contactcenter.ops.metrics", fromlist=["job_failed"]).job_failed(name)
        raise


def rq_job_id(key: str) -> str:
    """Return the RQ job id of a dedupe key.

    RQ accepts only letters, digits, ``_`` and ``-`` in ids (``periodic:outbox.sweep``
    is refused), so the key is made readable and a digest keeps distinct keys apart.
    """
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", key)[:80]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class RqJobQueue:
    """Send jobs to RQ queues on Redis, one queue per workload."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(redis_url)
        self._queues: dict[str, Any] = {}

    def queue(self, name: str) -> Any:
        """Return the RQ queue of a workload."""
        from rq import Queue

        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.redis)
        return self._queues[name]

    def enqueue(self, name: str, *args: Any, key: str | None = None) -> None:
        """Enqueue a job; a keyed job is not enqueued twice while it waits."""
        from rq import Retry

        load_jobs()
        spec = JOBS.get(name)
        if spec is None:
            raise LookupError(f"no job named {name!r}")
        kwargs: dict[str, Any] = {"retry": Retry(max=3, interval=[5, 30, 120]),
                                  "result_ttl": 300, "failure_ttl": 7 * 86400}
        if key is not None:
            kwargs["job_id"] = rq_job_id(key)
            from rq.exceptions import NoSuchJobError
            from rq.job import Job, JobStatus

            try:
                existing = Job.fetch(kwargs["job_id"], connection=self.redis)
                if existing.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.STARTED,
                                                         JobStatus.SCHEDULED, JobStatus.DEFERRED):
                    return
            except NoSuchJobError:
                pass
        self.queue(spec.queue).enqueue(rq_entry, name, list(args), **kwargs)

    def start(self) -> None:
        """Nothing to start: workers are separate processes."""

    def stop(self) -> None:
        """Close the Redis connection pool."""
        self.redis.close()


def run_scheduler(jobs: RqJobQueue, stop: threading.Event | None = None,
                  tick: float = 1.0) -> None:
    """Enqueue periodic jobs into RQ on time; several schedulers enqueue each slot once."""
    from redis.exceptions import RedisError

    load_jobs()
    stop = stop or threading.Event()
    while not stop.is_set():
        now = time.time()
        for name, periodic in PERIODIC.items():
            slot = int(now // periodic.every)
            try:
                # SET NX makes the slot's enqueue happen once across schedulers.
                if jobs.redis.set(f"contactcenter:sched:{name}:{slot}", 1, nx=True,
                                  ex=int(periodic.every) + 60):
                    jobs.enqueue(name, key=f"periodic:{name}")
            except RedisError as exc:
                # Redis away: keep ticking; the sweeps catch up once it is back.
                log.warning("scheduler could not enqueue %s: %s", name, exc)
        stop.wait(tick)
