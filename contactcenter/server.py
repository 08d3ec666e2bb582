"""Run the app under gunicorn's threaded worker, with WebSocket support, in one process."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from contactcenter.config import Settings


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
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

    def load(self) -> Any:
        from contactcenter.app import create_app, services

        app = create_app(self.settings)
        services(app).jobs.start()
        return app


def run_server(settings: Settings, threads: int = 64) -> None:
    """Serve until interrupted."""
    _Server(settings, threads).run()
