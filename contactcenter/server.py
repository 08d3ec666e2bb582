"""Run the app under gunicorn's threaded worker, with WebSocket support, in one process.

The worker also runs the inbound SMTP server on a thread of its own (started once the
app exists, stopped when the worker exits), sharing the app's database and job queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from contactcenter.config import Settings

if TYPE_CHECKING:
    from contactcenter.app import Services
    from contactcenter.channels.email.smtp import SmtpServer

log = logging.getLogger(__name__)


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
        self.smtp: SmtpServer | None = None
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        # One worker: embedded Socket.IO keeps its clients in this process's memory.
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.threads)
        self.cfg.set("timeout", 0)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("accesslog", "-")
        self.cfg.set("worker_exit", self.stop_smtp)

    def load(self) -> Any:
        from contactcenter.app import create_app, services

        app = create_app(self.settings)
        wired = services(app)
        wired.jobs.start()
        self.smtp = start_smtp(wired)
        return app

    def stop_smtp(self, _arbiter: Any, _worker: Any) -> None:
        """Stop the worker's SMTP server (gunicorn's ``worker_exit`` hook)."""
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None


def start_smtp(wired: Services) -> SmtpServer | None:
    """Start the inbound SMTP server on the app's services; None if it cannot listen.

    A busy port does not take the web desk down with it: the error is logged, and
    senders keep retrying (connection refused is temporary for them) until it is fixed.
    """
    from contactcenter.channels.email.smtp import SmtpServer

    settings = wired.settings
    server = SmtpServer(wired.db, wired.registry, settings, jobs=wired.jobs)
    try:
        server.start()
    except OSError as exc:
        log.error("inbound SMTP not started on %s:%s: %s", settings.smtp_host,
                  settings.smtp_port, exc)
        return None
    return server


def run_server(settings: Settings, threads: int = 64) -> None:
    """Serve until interrupted."""
    _Server(settings, threads).run()
