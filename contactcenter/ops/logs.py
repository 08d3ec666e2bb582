"""Structured logs: one JSON object per line, carrying the request id and contact ids.

``configure_logging("json")`` is called once by each process of the scaled deployment (web,
worker, scheduler, SMTP) when ``CONTACTCENTER_LOG_FORMAT=json``. The request id comes from the
``X-Request-ID`` header a load balancer sets (or a fresh one) and is echoed in the response, so
an error page's id leads to the log lines of that request. Contact ids (ticket, message,
customer, raw payload) are added with ``log_context(ticket_id=...)`` or ``extra=``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "contactcenter_log_context", default=None)

CONTEXT_KEYS = ("request_id", "ticket_id", "message_id", "customer_id", "raw_id", "job",
                "conversation_id", "call_sid")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def valid_request_id(value: str | None) -> str | None:
    """Return a client-given request id if it is short and plain, else None (a fresh one is made)."""
    if value and REQUEST_ID.match(value):
        return value
    return None


def current_context() -> dict[str, Any]:
    """Return the ids bound to the current request, job or task."""
    return dict(_context.get() or {})


def bind(**ids: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Bind ids to the current context until ``unbind`` with the returned token."""
    merged = {**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    return _context.set(merged)


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    """Restore the context as it was before ``bind``."""
    _context.reset(token)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Add ids (ticket_id=..., job=...) to every log line written inside the block."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


class JsonFormatter(logging.Formatter):
    """Format records as single-line JSON with time, level, logger, message and ids."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        data.update(current_context())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class ContextFilter(logging.Filter):
    """Add the request id to plain-text records too (``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_context().get("request_id", "-")
        return True


def configure_logging(fmt: str = "text", level: int | str | None = None) -> None:
    """Send the root logger to stderr as JSON lines (``json``) or text with the request id."""
    level = level or os.environ.get("CONTACTCENTER_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
