"""Run an RQ worker whose jobs share one context per process."""

from __future__ import annotations

from contactcenter.config import Settings


def run_worker(settings: Settings, queues: list[str], burst: bool = False) -> bool:
    """Work the given queues until stopped (or until empty with ``burst``)."""
    from redis import Redis
    from rq import Queue, Worker

    from contactcenter.app import build_job_context
    from contactcenter.jobs import set_worker_context_factory

    set_worker_context_factory(lambda: build_job_context(settings))
    connection = Redis.from_url(settings.redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues],
                    connection=connection)
    return bool(worker.work(burst=burst, with_scheduler=True))
