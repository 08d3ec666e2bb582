"""A local stand-in for api.twilio.com that records every request (tests only).

It answers the REST calls the product makes (Messages, Calls create and update,
account fetch) with JSON shaped like Twilio's, and serves media files. Tests
queue failures (``fail(500)``, ``fail("timeout")``) that the next requests get.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeTwilio:
    """State shared with the handler: recorded requests, queued failures, media files."""

    requests: list[Recorded] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    message_sids: list[str] = field(default_factory=list)
    url: str = ""
    timeout_seconds: float = 1.3
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, *what: Any) -> None:
        """Make the next requests fail: an HTTP status, or ``"timeout"``."""
        with self.lock:
            self.failures.extend(what)

    def posts(self, suffix: str) -> list[Recorded]:
        """Return the recorded POSTs whose path ends with ``suffix``."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    def next_sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):032x}"


def make_handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def _failure(self) -> bool:
            with state.lock:
                failure = state.failures.pop(0) if state.failures else None
            if failure is None:
                return False
            if failure == "timeout":
                time.sleep(state.timeout_seconds)
                self._reply(504, {"message": "late"})
                return True
            self._reply(int(failure), {"code": 20500, "message": "Internal Server Error",
                                       "more_info": "", "status": int(failure)})
            return True

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            state.requests.append(Recorded("GET", path, {}, dict(self.headers)))
            if path in state.redirects:
                self.send_response(307)
                self.send_header("Location", state.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path in state.media:
                data, kind = state.media[path]
                self._reply(200, data, kind)
                return
            if self._failure():
                return
            if "/Accounts/" in path and path.endswith(".json"):
                self._reply(200, {"sid": path.split("/")[-1][:-5], "status": "active"})
                return
            self._reply(404, {"code": 20404, "message": "not found", "status": 404})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            path = self.path.split("?")[0]
            state.requests.append(Recorded("POST", path, form, dict(self.headers)))
            if self._failure():
                return
            first = {k: v[0] for k, v in form.items()}
            if path.endswith("/Messages.json"):
                sid = state.next_sid("SM")
                state.message_sids.append(sid)
                self._reply(201, {"sid": sid, "status": "queued", "to": first.get("To"),
                                  "from": first.get("From"), "body": first.get("Body"),
                                  "account_sid": "AC" + "0" * 32, "num_segments": "1"})
            elif path.endswith("/Calls.json"):
                sid = state.next_sid("CA")
                self._reply(201, {"sid": sid, "status": "queued", "to": first.get("To"),
                                  "from": first.get("From"), "account_sid": "AC" + "0" * 32})
            elif "/Calls/" in path:
                sid = path.rsplit("/", 1)[-1].removesuffix(".json")
                self._reply(200, {"sid": sid, "status": "in-progress",
                                  "account_sid": "AC" + "0" * 32})
            else:
                self._reply(404, {"code": 20404, "message": "not found", "status": 404})

    return Handler


def start_fake_twilio() -> tuple[FakeTwilio, ThreadingHTTPServer]:
    """Start the stand-in on a free loopback port."""
    state = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    return state, server
