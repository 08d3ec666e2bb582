"""The scaled deployment on loopback, with handles to break its parts.

``Deployment`` starts real processes (``contactcenter web``, ``worker``, ``scheduler``,
``smtp``) against a PostgreSQL database reached through a ``TcpProxy`` (stop it and the
processes see "connection refused" and broken connections, as when PostgreSQL goes away), a
private ``redis-server`` on a free port (restartable without touching the shared one), and an
outbound relay ``RelaySink`` (aiosmtpd) that can answer 451 or stall. Every loop is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "contactcenter"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2,
               what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the system may be mid-fault: keep polling
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")



def descendant_pids(pid: int) -> list[int]:
    """Return the ids of a process's descendants, read from /proc (children first)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

class TcpProxy:
    """A loopback TCP forwarder that can refuse and cut connections (a database outage)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    # Stopped while this one was being connected: it must not outlive the
                    # outage (a pooled connection that survives would still store mail).
                    client.close()
                    upstream.close()
                    continue
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
                with self._lock:
                    self._conns.discard(s)

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        with self._lock:
            if self._listener is not None:
                try:  # wakes the thread blocked in accept(); close() alone would not
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            conns, self._conns = list(self._conns), set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restart(self) -> None:
        self.start()


class RedisServer:
    """A private redis-server on a free port (no persistence: a restart loses every job)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from redis import Redis

        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            wait_until(client.ping, timeout=10, interval=0.05, what="redis-server")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class RelaySink:
    """An outbound relay that records each message's Message-ID; can answer 451 or stall."""

    port: int = field(default_factory=free_port)
    mode: str = "ok"  # ok | 451 | slow
    delay: float = 0.0
    received: list[str] = field(default_factory=list)
    refused: int = 0
    controller: Any = None
    # Queue the message before the delay: the relay took it, only its 250 comes too late
    # (the case SMTP cannot disambiguate for the sender).
    taken_before_delay: bool = False

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.mode == "451":
            self.refused += 1
            return "451 4.3.0 try again later"
        message = BytesParser(policy=default_policy).parsebytes(envelope.content)
        if self.taken_before_delay:
            self.received.append(str(message.get("Message-ID", "")).strip())
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        if not self.taken_before_delay:
            self.received.append(str(message.get("Message-ID", "")).strip())
        return "250 2.0.0 queued"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


@dataclass
class Proc:
    """One process of the deployment, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen([str(BIN), *self.args], env=self.env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children (RQ's work horse) at once.

        RQ's work horse leaves the worker's process group (``os.setpgrp``), so killing the
        group alone would let it finish its job: its descendants are killed one by one.
        """
        if self.popen is not None and self.popen.poll() is None:
            descendants = descendant_pids(self.popen.pid)
            os.killpg(self.popen.pid, signal.SIGKILL)
            for pid in descendants:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class Deployment:
    """The processes of the scaled deployment and the handles to their dependencies."""

    tmp: Path
    pg_url: str
    redis: RedisServer
    proxy: TcpProxy
    relay: RelaySink
    web_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    procs: dict[str, Proc] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the Twilio stand-in's

    secret_key: str = "fault-suite-secret-key-0123456789"

    @property
    def proxied_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.pg_url).set(host="127.0.0.1", port=self.proxy.port
                                         ).render_as_string(False)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONTACTCENTER_", "PROMETHEUS_"))}
        env.update(
            CONTACTCENTER_DATA_DIR=str(self.tmp / "data"),
            CONTACTCENTER_DATABASE_URL=self.proxied_url,
            CONTACTCENTER_REDIS_URL=self.redis.url,
            # The same key in the test's own sweeps: reply tokens, and so our Message-IDs,
            # derive from it, and a resend must carry the id of the first attempt.
            CONTACTCENTER_SECRET_KEY=self.secret_key,
            CONTACTCENTER_SMTP_RELAY_HOST="127.0.0.1",
            CONTACTCENTER_SMTP_RELAY_PORT=str(self.relay.port),
            CONTACTCENTER_SMTP_RELAY_TIMEOUT_SECONDS="5",
            CONTACTCENTER_SMTP_DOMAIN="support.example.test",
            CONTACTCENTER_SMTP_TIMEOUT_SECONDS="30",
            CONTACTCENTER_LOG_FORMAT="json",
        )
        env.update(self.extra_env)
        return env

    def start(self, name: str, *args: str) -> Proc:
        proc = Proc(name, list(args), self.env(), self.tmp / f"{name}.log").start()
        self.procs[name] = proc
        return proc

    def start_web(self, name: str = "web", port: int | None = None) -> Proc:
        import requests

        port = port or self.web_port
        proc = self.start(name, "web", "--bind", f"127.0.0.1:{port}", "--threads", "16")
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/readyz",
                                        timeout=2).status_code == 200,
                   timeout=40, what="web /readyz " + proc.output()[-500:])
        return proc

    def start_smtp(self) -> Proc:
        proc = self.start("smtp", "smtp", "--port", str(self.smtp_port))
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.smtp_port), 1).close()
                   or True, timeout=40, what="smtp port")
        return proc

    def start_worker(self, name: str = "worker", queues: str = "inbound,outbound,sla,default"
                     ) -> Proc:
        return self.start(name, "worker", "--queues", queues)

    def stop_all(self) -> None:
        for proc in list(self.procs.values()):
            proc.terminate()
