"""`contactcenter worker` and `contactcenter scheduler` as separate processes on real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.jobs import RqJobQueue
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import DeliveryState, Message, Ticket
from contactcenter.tickets.service import add_reply
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.redis
BIN = Path(sys.executable).parent / "contactcenter"


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env.update(CONTACTCENTER_DATA_DIR=str(tmp_path / "data"),
               CONTACTCENTER_REDIS_URL=redis_url,
               CONTACTCENTER_SECRET_KEY="worker-test-secret-key-0123456789")
    return env


def test_worker_process_delivers_a_reply_enqueued_by_another_process(
        tmp_path: Path, redis_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    db = Database(settings.effective_database_url)
    db.upgrade()
    with db.session() as session:
        result = ingest_inbound(session, make_contact(), settings=settings)
        agent = make_user(session, "agent")
        ticket = session.get(Ticket, result.ticket_id)
        assert ticket is not None
        reply = add_reply(session, ticket, agent.id, "Try restarting the router.")
        session.commit()
        reply_id = reply.id
    jobs = RqJobQueue(redis_url)
    jobs.enqueue("outbox.deliver", reply_id, key=f"deliver:{reply_id}")
    assert Queue("outbound", connection=jobs.redis).count == 1

    done = subprocess.run([str(BIN), "worker", "--queues", "outbound", "--burst"],
                          env=_env(tmp_path, redis_url), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    with db.session() as session:
        message = session.get(Message, reply_id)
        assert message is not None and message.delivery_state == DeliveryState.SENT
    assert Queue("outbound", connection=jobs.redis).count == 0
    jobs.stop()
    db.dispose()


def test_scheduler_process_enqueues_the_periodic_sweeps(tmp_path: Path, redis_url: str) -> None:
    Database(Settings(data_dir=tmp_path / "data").effective_database_url).upgrade()
    proc = subprocess.Popen([str(BIN), "scheduler"], env=_env(tmp_path, redis_url),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = {name: Queue(name, connection=redis).count
                       for name in ("outbound", "inbound", "default")}
            if waiting["outbound"] and waiting["inbound"] and waiting["default"]:
                break
            time.sleep(0.2)
        assert waiting["outbound"] >= 1 and waiting["inbound"] >= 1, waiting
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        redis.close()


def test_worker_refuses_to_start_without_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTCENTER_")}
    env["CONTACTCENTER_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([str(BIN), "worker", "--burst"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "CONTACTCENTER_REDIS_URL is not set" in done.stderr
