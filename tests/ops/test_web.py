"""Readiness, metrics, request ids and structured logs of the web tier."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from contactcenter.app import create_app, services
from contactcenter.config import Settings
from contactcenter.ops import logs, metrics
from contactcenter.tickets.intake import apply_contact, ingest_inbound
from tests.factories import make_contact
from tests.ops.deployment import BIN, Deployment, wait_until


def test_readyz_reports_database_and_migrations(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key="k" * 32, testing=True))
    services(app).db.upgrade()
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
    services(app).db.dispose()


def test_readyz_is_503_when_migrations_are_behind(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="k" * 32, testing=True)
    app = create_app(settings)
    services(app).db.upgrade("0001")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["checks"]["migrations"].startswith("at 0001")
    services(app).db.dispose()


def test_readyz_is_503_when_redis_does_not_answer(tmp_path: Path) -> None:
    from tests.ops.deployment import free_port

    settings = Settings(data_dir=tmp_path / "data", secret_key="k" * 32, testing=True,
                        redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings)
    services(app).db.upgrade()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("unavailable")
    assert response.json["checks"]["database"] == "ok"
    services(app).db.dispose()


def test_request_id_is_echoed_or_made_and_never_taken_raw(client: Any) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})
    assert given.headers["X-Request-ID"] == "lb-1234.abc"
    for bad in ("bad id; Set-Cookie: x=1", "<script>", "x" * 65):
        made = client.get("/healthz", headers={"X-Request-ID": bad})
        assert len(made.headers["X-Request-ID"]) == 32 and made.headers["X-Request-ID"] != bad


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_committed_intake_and_ignore_rolled_back(client: Any, db: Any,
                                                               settings: Settings) -> None:
    before = _sample(client.get("/metrics").get_data(as_text=True),
                     "contactcenter_tickets_created_total", channel="api")
    with db.session() as session:
        apply_contact(session, make_contact(), settings)
        session.rollback()  # never happened: not counted
        ingest_inbound(session, make_contact(), settings=settings)
        session.commit()
    text = client.get("/metrics").get_data(as_text=True)
    assert _sample(text, "contactcenter_tickets_created_total", channel="api") == before + 1
    assert "contactcenter_http_request_seconds_bucket" in text
    assert "contactcenter_socket_clients" in text


def test_metrics_are_refused_to_addresses_not_allowed(client: Any) -> None:
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}
                      ).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_job_failures_are_counted() -> None:
    before = metrics.JOB_FAILURES.labels("ops.test")._value.get()
    metrics.job_failed("ops.test")
    assert metrics.JOB_FAILURES.labels("ops.test")._value.get() == before + 1


def test_json_logs_carry_request_and_contact_ids(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure_logging("json", "INFO")
        with logs.log_context(request_id="r-1", ticket_id=42):
            logging.getLogger("contactcenter.test").info("hello %s", "world",
                                                         extra={"raw_id": 7})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "hello world" and line["level"] == "info"
    assert line["request_id"] == "r-1" and line["ticket_id"] == 42 and line["raw_id"] == 7


def test_web_command_needs_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env["CONTACTCENTER_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([str(BIN), "web"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "CONTACTCENTER_REDIS_URL is not set" in done.stderr


@pytest.mark.postgres
@pytest.mark.redis
def test_web_process_serves_readiness_metrics_and_queue_depths(deployment: Deployment) -> None:
    deployment.start_web()
    base = f"http://127.0.0.1:{deployment.web_port}"
    from contactcenter.jobs import RqJobQueue

    queue = RqJobQueue(deployment.redis.url)
    try:
        queue.enqueue("outbox.deliver", 999_999)  # nobody works the queue in this test
        text = wait_until(lambda: requests.get(base + "/metrics", timeout=5).text, timeout=10)
    finally:
        queue.stop()
    assert _sample(text, "contactcenter_queue_depth", queue="outbound") == 1
    assert _sample(text, "contactcenter_redis_up") == 1
    response = requests.get(base + "/readyz", timeout=5, headers={"X-Request-ID": "probe-1"})
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
    assert response.headers["X-Request-ID"] == "probe-1"
