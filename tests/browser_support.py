"""What every browser test needs: a live server on a known port, sign-in, and error watching.

The root ``conftest.py`` launches the system's Chromium once per session (``browser``)
and gives each test a ``page``; this module serves the app to it. Engine.IO checks a
WebSocket's ``Origin`` against ``cors_allowed_origins``, which the app sets to
``public_url``, so the port is chosen before the app is built (``live_port``) and
``settings`` names it; the database is a file, because the server's threads and the
test each use their own connection.

Import the fixtures a test module needs (``from tests.browser_support import live_port,
live_url, settings``); a module that needs other settings defines its own ``settings``
fixture with ``browser_settings(tmp_path, live_port, **overrides)``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from contactcenter.config import Settings
from tests.factories import PASSWORD

SECRET_KEY = "test-secret-key-not-for-production"


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    """Settings for a live server on ``port``: a file database and a matching public URL."""
    return Settings(data_dir=tmp_path / "data", secret_key=SECRET_KEY, testing=True,
                    public_url=f"http://127.0.0.1:{port}", **overrides)


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Serve the app on ``port`` in a thread (WebSocket capable) until the block ends."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, live_port: int) -> Settings:
    return browser_settings(tmp_path, live_port)


@pytest.fixture
def live_url(app: Any, live_port: int) -> Iterator[str]:
    with serve(app, live_port) as url:
        yield url


def sign_in(page: Any, email: str = "agent@example.test", next_: str | None = None,
            password: str = PASSWORD) -> None:
    """Sign in through the form and wait for the page it leads to (the desk by default)."""
    page.goto("/login" if next_ is None else f"/login?next={next_}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_ or '/'}")


def collect_errors(page: Any) -> list[str]:
    """Gather script errors, CSP violations, 4xx/5xx answers and failed loads of a page.

    The browser's own favicon probe is the one expected 404; leaving a page aborts its
    requests still in flight, which is navigation, not a fault.
    """
    errors: list[str] = []

    def on_console(msg: Any) -> None:
        # A failed load is reported by on_response with its URL.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def on_response(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        if "ERR_ABORTED" not in (request.failure or ""):
            errors.append(f"failed {request.url}: {request.failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    return errors


def watch(page: Any) -> list[str]:
    """Collect dialogs (dismissed) and uncaught script errors of a page."""
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: seen.append(f"error: {exc}"))
    return seen


def wait_until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression (``wait_for_function`` needs eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)
