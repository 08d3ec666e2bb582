"""`contactcenter serve` as a user runs it: a real gunicorn process with WebSocket support."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

BIN = Path(sys.executable).parent / "contactcenter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run([str(BIN), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {**os.environ, "CONTACTCENTER_DATA_DIR": str(tmp_path / "data"),
           "CONTACTCENTER_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("CONTACTCENTER_DATABASE_URL", None)
    env.pop("CONTACTCENTER_REDIS_URL", None)
    run_cli(env, "db", "upgrade")
    run_cli(env, "user", "create", "--email", "admin@example.test", "--name", "Admin",
            "--role", "admin", "--password", "admin-password-1")
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port),
                             "--smtp-port", str(free_port())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still booting
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("serve did not come up:\n" + (proc.stdout.read()
                                                                   if proc.stdout else ""))
            time.sleep(0.2)
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def sign_in(url: str, email: str, password: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(url + "/login", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    answer = browser.post(url + "/login", data={"csrf_token": token.group(1), "email": email,
                                                "password": password}, timeout=10)
    assert answer.status_code == 200 and answer.url.rstrip("/") == url, answer.text[:500]
    return browser


def test_serve_pushes_an_api_contact_to_a_websocket_client(served: tuple[str, dict[str, str]]
                                                           ) -> None:
    url, env = served
    api_token = run_cli(env, "token", "create", "--email", "admin@example.test").strip()
    browser = sign_in(url, "admin@example.test", "admin-password-1")
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())

    received: list[dict[str, Any]] = []
    arrived = threading.Event()
    client = socketio.Client()

    @client.on("event", namespace="/agent")
    def on_event(data: dict[str, Any]) -> None:
        received.append(data)
        if data["type"] == "ticket.created":
            arrived.set()

    client.connect(url, namespaces=["/agent"], transports=["websocket"],
                   headers={"Cookie": cookie}, wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        answer = client.call("resume", {"cursor": 0}, namespace="/agent", timeout=5)
        assert answer["resync_required"] is False
        posted = requests.post(url + "/api/v1/contacts", timeout=10,
                               headers={"Authorization": f"Bearer {api_token}"},
                               json={"external_id": "serve-1", "subject": "Modem is dead",
                                     "text": "No lights at all.",
                                     "from": {"kind": "email", "address": "olga@example.com",
                                              "name": "Ольга"}})
        assert posted.status_code == 201, posted.text
        number = posted.json()["ticket"]
        assert arrived.wait(10), received
        created = [e for e in received if e["type"] == "ticket.created"][0]
        assert created["payload"]["number"] == number
        assert created["id"] > 0
    finally:
        client.disconnect()

    shown = run_cli(env, "ticket", "show", str(number), "--json")
    assert '"Modem is dead"' in shown and "Ольга" in shown


def test_serve_refuses_an_anonymous_socket(served: tuple[str, dict[str, str]]) -> None:
    url, _env = served
    client = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, namespaces=["/agent"], transports=["websocket"], wait_timeout=5)
    client.disconnect()
