"""Commands of the scaled deployment added to ``contactcenter`` (e.g. ``contactcenter web``).

``contactcenter web`` is the web tier only: the desk, the API, the webhooks and Socket.IO,
under gunicorn's threaded worker (each live WebSocket holds one thread). It runs no SMTP
server and no jobs: those are ``contactcenter smtp``, ``contactcenter worker`` and
``contactcenter scheduler``, joined through Redis and the database.

Several web processes share Socket.IO events through Redis (the message queue). A Socket.IO
client that falls back to long-polling must keep talking to the same process, so either the
load balancer is sticky (nginx ``ip_hash``, see config/nginx.conf.example) or clients use the
WebSocket transport only (the desk and the chat widget do).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from contactcenter.config import Settings, SettingsError

log = logging.getLogger(__name__)


def _settings(**overrides: Any) -> Settings:
    import os

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**changes) if changes else settings


def build_web_app(settings: Settings) -> Any:
    """Gunicorn application serving only the web tier (no SMTP thread, no in-process jobs)."""
    from gunicorn.app.base import BaseApplication

    class WebServer(BaseApplication):  # type: ignore[misc]
        def __init__(self, workers: int, threads: int, bind: str) -> None:
            self.workers, self.threads, self.bind = workers, threads, bind
            super().__init__()

        def load_config(self) -> None:
            self.cfg.set("bind", self.bind)
            self.cfg.set("workers", self.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", self.threads)
            self.cfg.set("timeout", 0)  # live sockets are long requests
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)  # the app logs requests with their ids
            self.cfg.set("child_exit", _child_exit)
            self.cfg.set("forwarded_allow_ips", "127.0.0.1,::1")

        def load(self) -> Any:
            from contactcenter.app import create_app

            return create_app(settings)

    return WebServer


def _child_exit(_arbiter: Any, worker: Any) -> None:
    from contactcenter.ops.metrics import mark_process_dead

    mark_process_dead(worker.pid)


@click.command("web")
@click.option("--bind", default=None, metavar="HOST:PORT",
              help="Address to listen on (default CONTACTCENTER_HOST:CONTACTCENTER_PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes under this command. More than one needs WebSocket-only "
                   "clients (the desk and widget are); prefer one per command behind a "
                   "sticky balancer.")
@click.option("--threads", type=click.IntRange(1, 1000), default=64, show_default=True,
              help="Threads per process (each live socket holds one).")
def web(bind: str | None, workers: int, threads: int) -> None:
    """Run the web tier of the scaled deployment (needs CONTACTCENTER_REDIS_URL)."""
    from contactcenter.ops.logs import configure_logging

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException(
            "CONTACTCENTER_REDIS_URL is not set: `contactcenter web` is the scaled "
            "deployment's web tier (jobs and Socket.IO go through Redis); use `serve` alone")
    configure_logging(settings.log_format)
    address = bind or f"{settings.host}:{settings.port}"
    click.echo(f"web tier on http://{address}/ ({workers} process(es) x {threads} threads)")
    build_web_app(settings)(workers, threads, address).run()


@click.command("ready")
@click.option("--url", default=None, help="Base URL of a web process (default from settings).")
@click.option("--timeout", type=float, default=30.0, show_default=True)
def ready(url: str | None, timeout: float) -> None:
    """Wait until a web process answers /readyz with 200 (for scripts and unit files)."""
    import time
    import urllib.error
    import urllib.request

    settings = _settings()
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    click.echo("ready")
                    return
        except urllib.error.HTTPError as exc:
            last = exc.read().decode("utf-8", "replace")[:300]
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise click.ClickException(f"not ready after {timeout:.0f} s: {last}")


COMMANDS: list[click.Command] = [web, ready]
