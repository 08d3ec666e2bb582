"""Run an RQ worker whose forked work horses inherit one job context built up front."""

from __future__ import annotations

import gc
from typing import Any

from contactcenter.config import Settings


def context_worker_class() -> type[Any]:
    """Return RQ's forking ``Worker`` whose horses adopt the parent's job context first.

    The fork per job stays (a SIGKILLed horse loses only its job, which RQ then
    retries; a Redis restart is survived by the parent), but the horse no longer
    rebuilds imports, settings, engine and adapters: it takes the parent's
    context and renews only its connections.
    """
    from rq import Worker

    from contactcenter.jobs import adopt_inherited_worker_context

    class ContextWorker(Worker):
        """A forking worker whose horses start from the parent's job context."""

        def main_work_horse(self, job: Any, queue: Any) -> None:
            adopt_inherited_worker_context()
            super().main_work_horse(job, queue)

    return ContextWorker


def run_worker(settings: Settings, queues: list[str], burst: bool = False) -> bool:
    """Work the given queues until stopped (or until empty with ``burst``)."""
    from redis import Redis
    from rq import Queue

    from contactcenter.app import build_job_context
    from contactcenter.jobs import install_worker_context, set_worker_context_factory

    set_worker_context_factory(lambda: build_job_context(settings))
    install_worker_context(build_job_context(settings))
    # Objects built so far are never freed: keep them out of the collector so that the
    # horses' garbage collections do not touch (and copy) the pages shared with the parent.
    gc.freeze()
    connection = Redis.from_url(settings.redis_url)
    worker_class = context_worker_class()
    worker = worker_class([Queue(name, connection=connection) for name in queues],
                          connection=connection)
    return bool(worker.work(burst=burst, with_scheduler=True))
