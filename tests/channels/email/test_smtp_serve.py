"""`contactcenter serve` runs the inbound SMTP server on a thread of its gunicorn worker."""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from contactcenter.app import create_app, services
from contactcenter.db import Database
from contactcenter.server import start_smtp
from contactcenter.tickets.models import RawState
from tests.channels.email.smtp_support import (
    SUPPORT,
    file_settings,
    make_message,
    raw_rows,
    tickets,
    wait_until,
)
from tests.factories import make_inbox

BIN = Path(sys.executable).parent / "contactcenter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_accepts_mail_on_its_smtp_port_and_closes_it_on_exit(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'data' / 'contactcenter.db'}")
    database.upgrade()
    with database.session() as session:
        make_inbox(session, channel="email").address = SUPPORT
        session.commit()
    web, mail = free_port(), free_port()
    env = {**os.environ, "CONTACTCENTER_DATA_DIR": str(tmp_path / "data")}
    for key in ("CONTACTCENTER_DATABASE_URL", "CONTACTCENTER_REDIS_URL"):
        env.pop(key, None)
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(web), "--smtp-port", str(mail)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{web}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # not up yet, or slow to answer under load
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", mail, timeout=10) as client:
            client.sendmail("anna@example.com", [SUPPORT], make_message("Via serve"))
        assert len(raw_rows(database)) == 1
        wait_until(lambda: [r.state for r in raw_rows(database)] == [RawState.PROCESSED])
        assert [t.subject for t in tickets(database)] == ["Via serve"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert f"Inbound SMTP on 127.0.0.1:{mail}" in output
    assert "Exception during worker exit" not in output
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", mail), timeout=1).close()
    database.dispose()


def test_busy_smtp_port_is_logged_and_the_desk_still_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = file_settings(tmp_path, smtp_port=port)
        app = create_app(settings)
        with caplog.at_level(logging.ERROR, logger="contactcenter.server"):
            assert start_smtp(services(app)) is None
    assert f"inbound SMTP not started on 127.0.0.1:{port}" in caplog.text
    services(app).db.dispose()


def test_smtp_command_runs_the_server_alone_until_terminated(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'data' / 'contactcenter.db'}")
    database.upgrade()
    with database.session() as session:
        make_inbox(session, channel="email").address = SUPPORT
        session.commit()
    port = free_port()
    env = {**os.environ, "CONTACTCENTER_DATA_DIR": str(tmp_path / "data")}
    for key in ("CONTACTCENTER_DATABASE_URL", "CONTACTCENTER_REDIS_URL"):
        env.pop(key, None)
    proc = subprocess.Popen([str(BIN), "smtp", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        banner = f"Inbound SMTP on 127.0.0.1:{port}"
        while (line := proc.stdout.readline()) and line.strip() != banner:
            assert proc.poll() is None
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("anna@example.com", [SUPPORT], make_message("Standalone"))
        assert len(raw_rows(database)) == 1  # stored before the 250
        wait_until(lambda: [r.state for r in raw_rows(database)] == [RawState.PROCESSED])
        assert [t.subject for t in tickets(database)] == ["Standalone"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    database.dispose()
