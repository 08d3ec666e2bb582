"""Build the application: Flask, Socket.IO, the database, jobs, adapters and blueprints.

``create_app(settings)`` is the only factory. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, g, jsonify
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry, load_builtin_adapters
from contactcenter.config import Settings, default_settings, ensure_secret_key
from contactcenter.db import Database, import_models
from contactcenter.events import (
    EventPublisher,
    FanoutPublisher,
    SocketIOPublisher,
    publish_pending,
)
from contactcenter.jobs import (
    InlineJobQueue,
    JobContext,
    JobQueue,
    RqJobQueue,
    dispatch_event_jobs,
    load_jobs,
)

log = logging.getLogger(__name__)

csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")


@dataclass
class Services:
    """The wired parts the views, socket handlers and CLI share."""

    settings: Settings
    db: Database
    registry: ChannelRegistry
    jobs: JobQueue
    socketio: SocketIO
    publisher: EventPublisher


def services(app: Flask | None = None) -> Services:
    """Return the app's services (the current app when none is given)."""
    from flask import current_app

    target = app or current_app
    result: Services = target.extensions["contactcenter"]
    return result


def db_session() -> Session:
    """Return this request's database session, opened on first use."""
    if "db_session" not in g:
        g.db_session = services().db.session()
    session: Session = g.db_session
    return session


def build_job_context(settings: Settings, db: Database | None = None,
                      publisher: EventPublisher | None = None) -> JobContext:
    """Build what a worker process needs to run jobs and publish their events."""
    import_models()
    load_jobs()
    db = db or Database(settings.effective_database_url)
    registry = load_builtin_adapters()
    if publisher is None:
        if settings.redis_url:
            # A write-only Socket.IO: events reach browsers through the web processes.
            publisher = SocketIOPublisher(SocketIO(message_queue=settings.redis_url))
        else:
            from contactcenter.events import RecordingPublisher

            publisher = RecordingPublisher()
        db.on_commit(lambda rows: publish_pending(publisher, rows))
    ctx = JobContext(db=db, settings=settings, registry=registry, publisher=publisher)
    if settings.redis_url:
        # Events committed by jobs start their subscribed jobs too.
        queue = RqJobQueue(settings.redis_url)
        ctx.jobs = queue
        db.on_commit(lambda rows: dispatch_event_jobs(queue, rows))
    from contactcenter.ops.metrics import count_events

    db.on_commit(count_events)  # intake, routing and SLA counters of worker processes
    return ctx


def create_app(settings: Settings | None = None, *, db: Database | None = None,
               jobs: JobQueue | None = None,
               extra_publishers: tuple[EventPublisher, ...] = ()) -> Flask:
    """Create the Flask app with Socket.IO, the database, jobs and every blueprint."""
    settings = ensure_secret_key(settings or default_settings())
    import_models()
    app = Flask(__name__, template_folder="agent_ui/templates", static_folder="agent_ui/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # The session cookie is sent only when a request changes the session: a desk request
        # still in flight when its agent signs out must not answer with the old cookie and
        # sign them back in (it did: the desk loads several API calls at once).
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    db = db or Database(settings.effective_database_url)
    registry = load_builtin_adapters()
    socketio = SocketIO(
        app,
        async_mode="threading",
        message_queue=settings.redis_url or None,
        # None: python-socketio's same-origin check (the Origin must match the Host the
        # browser used), so the desk works under any host name that reaches it.
        cors_allowed_origins=None,
        ping_interval=20,
        ping_timeout=20,
        max_http_buffer_size=1_000_000,
    )
    publisher: EventPublisher = FanoutPublisher(SocketIOPublisher(socketio), *extra_publishers)
    db.on_commit(lambda rows: publish_pending(publisher, rows))
    if jobs is None:
        if settings.redis_url:
            jobs = RqJobQueue(settings.redis_url)
        else:
            ctx = JobContext(db=db, settings=settings, registry=registry, publisher=publisher)
            jobs = InlineJobQueue(ctx, periodic=not settings.testing)
            ctx.jobs = jobs
    job_queue = jobs
    db.on_commit(lambda rows: dispatch_event_jobs(job_queue, rows))
    app.extensions["contactcenter"] = Services(settings, db, registry, jobs, socketio, publisher)

    csrf.init_app(app)

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.get("/healthz")
    def healthz() -> Any:
        from sqlalchemy import text

        with db.session() as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    from contactcenter.agent_ui import init_app as init_ui
    from contactcenter.api import init_app as init_api

    init_api(app)
    init_ui(app)
    from contactcenter.ops.web import bp as ops_bp

    app.register_blueprint(ops_bp)
    from contactcenter.channels.chat.sockets import init_app as init_chat

    init_chat(app)
    return app
