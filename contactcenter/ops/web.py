"""Readiness and metrics endpoints, request ids and metrics of every request.

``/healthz`` (in ``contactcenter.app``) says the process is alive and reaches its database: a
load balancer's liveness check. ``/readyz`` says this process should get traffic: the
database answers, the schema is at the migrations' head, and Redis answers when configured.
``/metrics`` is the Prometheus text format; it is answered only to the addresses in
``CONTACTCENTER_METRICS_ALLOWED_IPS`` (loopback by default) so that it never leaks counts to
the internet through the load balancer.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from contactcenter.ops import logs, metrics

bp = Blueprint("ops", __name__)



@bp.record_once
def _wire(state: Any) -> None:
    """Count the events of every committed transaction of this app's database."""
    app: Flask = state.app
    wired = app.extensions.get("contactcenter")
    if wired is not None:
        wired.db.on_commit(metrics.count_events)


@bp.before_app_request
def _start_request() -> None:
    g.ops_started = time.perf_counter()
    rid = logs.valid_request_id(request.headers.get("X-Request-ID")) or uuid.uuid4().hex
    g.request_id = rid
    g.ops_log_token = logs.bind(request_id=rid)


@bp.after_app_request
def _finish_request(response: Response) -> Response:
    rid = g.get("request_id")
    if rid:
        response.headers.setdefault("X-Request-ID", rid)
    started = g.get("ops_started")
    if started is not None:
        metrics.request_done(request.method, response.status_code,
                             time.perf_counter() - started)
    metrics.set_socket_clients(_socket_clients())
    return response


@bp.teardown_app_request
def _unbind(_exc: BaseException | None) -> None:
    token = g.pop("ops_log_token", None)
    if token is not None:
        try:
            logs.unbind(token)
        except ValueError:  # bound in another context (streamed responses): nothing to undo
            pass


@bp.app_errorhandler(OverflowError)
def _id_out_of_range(_exc: OverflowError) -> Any:
    """An id beyond the database's integer range names nothing: 404, not a crash.

    Werkzeug's ``<int:...>`` accepts any number of digits; SQLite and PostgreSQL stop at
    64 bits, and the driver raises before the query runs (found by the API fuzzing).
    """
    if request.path.startswith("/api/"):
        return jsonify(error="not found"), 404
    return "Not found", 404


def _socket_clients() -> int:
    wired = current_app.extensions.get("contactcenter")
    try:
        return len(wired.socketio.server.eio.sockets)  # type: ignore[union-attr]
    except Exception:
        return 0




def readiness() -> tuple[bool, dict[str, str]]:
    """Check the database, the schema revision and Redis; return (ready, check -> result)."""
    from contactcenter.db import packaged_head

    wired = current_app.extensions["contactcenter"]
    checks: dict[str, str] = {}
    ok = True
    try:
        current = wired.db.revision()
        head = packaged_head()
        if current == head:
            checks["database"] = "ok"
            checks["migrations"] = "ok"
        else:
            checks["database"] = "ok"
            checks["migrations"] = f"at {current}, head is {head}"
            ok = False
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
        ok = False
    if wired.settings.redis_url:
        try:
            from redis import Redis

            redis = Redis.from_url(wired.settings.redis_url, socket_connect_timeout=1,
                                   socket_timeout=1)
            try:
                redis.ping()
            finally:
                redis.close()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
            ok = False
    return ok, checks


@bp.get("/readyz")
def readyz() -> Any:
    """200 when this process can serve; 503 with the failing check otherwise."""
    ok, checks = readiness()
    response = jsonify(status="ok" if ok else "unavailable", checks=checks)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    if not ok:
        response.headers["Retry-After"] = "5"
    return response


def _allowed(address: str | None, allowed: str) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for item in (x.strip() for x in allowed.split(",")):
        if not item:
            continue
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


@bp.get("/metrics")
def prometheus_metrics() -> Any:
    """Prometheus text format; 404 when disabled or asked from an address not allowed."""
    settings = current_app.extensions["contactcenter"].settings
    if not settings.metrics_enabled or not _allowed(request.remote_addr,
                                                    settings.metrics_allowed_ips):
        return jsonify(error="not found"), 404
    body = metrics.render(settings.redis_url)
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8",
                    headers={"Cache-Control": "no-store"})
