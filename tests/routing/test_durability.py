"""Offer-only transactions commit asynchronously on PostgreSQL; everything else does not.

The setting (``[durability] async_offers``) is parsed and validated like the rest of
the rules file. On a real server the re-match after a commit (``settle``) marks its
transaction ``synchronous_commit = off`` only when it made nothing but offers, and the
offer is readable from another connection by the time its event is published.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from contactcenter.config import Settings
from contactcenter.db import Database, utcnow
from contactcenter.routing import engine
from contactcenter.routing.durability import offers_only
from contactcenter.routing.errors import RoutingConfigError
from contactcenter.routing.models import Offer, OfferOutcome
from contactcenter.routing.policy import RoutingPolicy, parse_policy, read_rules_file
from tests.routing.test_postgres import build_center

ROOT = Path(__file__).resolve().parents[2]
ASYNC = "SET LOCAL synchronous_commit TO OFF"


def test_async_offers_is_off_by_default_and_in_the_sample_rules_file() -> None:
    assert RoutingPolicy().async_offers is False
    sample = parse_policy(read_rules_file(ROOT / "config" / "routing.toml"))
    assert sample.async_offers is False
    assert parse_policy({"durability": {"async_offers": True}}).async_offers is True
    assert engine.fifo_policy().async_offers is False


@pytest.mark.parametrize("bad", [{"async_offers": "yes"}, {"async_offers": 1},
                                 {"asynchronous": True}, "on"])
def test_a_bad_durability_section_is_refused(bad: Any) -> None:
    with pytest.raises(RoutingConfigError):
        parse_policy({"durability": bad})


def test_only_transactions_made_of_offers_qualify() -> None:
    assert offers_only(["offer", "offer"])
    assert not offers_only([])
    assert not offers_only(["offer", "assign"])
    assert not offers_only(["assign"])


def test_sqlite_ignores_the_setting(session: Any, policy: RoutingPolicy) -> None:
    from contactcenter.routing.durability import relax_commit

    assert relax_commit(session, policy) is False


class Statements:
    """The SQL sent on an engine, grouped by transaction (split at each BEGIN).

    Not at each COMMIT: on PostgreSQL the event rows are sent with the COMMIT itself,
    after SQLAlchemy's ``commit`` event, and belong to the transaction it ends.
    """

    def __init__(self, db: Database) -> None:
        self.transactions: list[list[str]] = [[]]
        self.committed: list[bool] = [False]
        event.listen(db.engine, "begin", self._begin)
        event.listen(db.engine, "before_cursor_execute", self._statement)
        event.listen(db.engine, "commit", self._commit)

    def _begin(self, _conn: Any) -> None:
        self.transactions.append([])
        self.committed.append(False)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.transactions[-1].append(" ".join(statement.split()))

    def _commit(self, _conn: Any) -> None:
        self.committed[-1] = True

    def relaxed(self) -> list[bool]:
        """For each committed transaction that wrote, whether it committed asynchronously."""
        return [ASYNC in stmts for stmts, committed in zip(self.transactions, self.committed,
                                                           strict=True)
                if committed and any(s.split()[0] in ("INSERT", "UPDATE") for s in stmts)]


def _waiting_chat(db: Database, policy: RoutingPolicy, queue_id: int, customer: int) -> int:
    with db.session() as s:
        queued = engine.enqueue_item(s, kind="chat", channel="chat", queue_id=queue_id,
                                     now=utcnow(), policy=policy, customer_id=customer,
                                     match=False)
        s.commit()
        return queued.item.id


@pytest.mark.postgres
def test_a_settle_that_only_offers_commits_asynchronously_and_is_visible_first(
        pg_db: Database) -> None:
    policy = parse_policy({"durability": {"async_offers": True}})
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 1, "available", queues=1)
    item_id = _waiting_chat(pg_db, policy, queue_ids[0], customers[0])
    seen: list[tuple[str, bool]] = []

    def on_publish(rows: list[Any]) -> None:
        # Published after COMMIT returned: another connection must already read it.
        for row in rows:
            if row.type == "offer.made":
                with pg_db.engine.connect() as other:
                    found = other.execute(select(Offer.id).where(
                        Offer.id == row.payload["offer_id"],
                        Offer.outcome == OfferOutcome.PENDING)).first()
                seen.append((row.type, found is not None))

    pg_db.on_commit(on_publish)
    statements = Statements(pg_db)
    with pg_db.session() as s:
        result = engine.settle(s, [item_id], [], utcnow(), policy)
    assert [d.action for d in result.decisions] == ["offer"]
    assert result.decisions[0].agent_id == agent_ids[0]
    assert statements.relaxed() == [True]
    assert seen == [("offer.made", True)]

    # The accept is the agent's word: always synchronous.
    with pg_db.session() as s:
        engine.accept_offer(s, result.decisions[0].offer_id, agent_ids[0],  # type: ignore[arg-type]
                            utcnow(), policy)
        engine.commit_and_settle(s, utcnow(), policy)
    assert statements.relaxed() == [True, False]


@pytest.mark.postgres
def test_with_async_offers_off_and_for_assignments_every_commit_waits(pg_db: Database) -> None:
    base = parse_policy({"durability": {"async_offers": True}})
    queue_ids, agent_ids, customers = build_center(pg_db, base, 2, "available", queues=1)
    statements = Statements(pg_db)

    off = dataclasses.replace(base, async_offers=False)
    item_id = _waiting_chat(pg_db, off, queue_ids[0], customers[0])
    with pg_db.session() as s:
        result = engine.settle(s, [item_id], [], utcnow(), off)
    assert [d.action for d in result.decisions] == ["offer"]

    # No offer timeout: the match assigns directly, which must survive a crash.
    direct = parse_policy({"durability": {"async_offers": True}},
                          Settings(routing_offer_timeouts="chat=0"))
    item_id = _waiting_chat(pg_db, direct, queue_ids[0], customers[1])
    with pg_db.session() as s:
        result = engine.settle(s, [item_id], [], utcnow(), direct)
    assert [d.action for d in result.decisions] == ["assign"]

    # An arrival matched in its own transaction creates the item: synchronous too.
    with pg_db.session() as s:
        queued = engine.enqueue_item(s, kind="chat", channel="chat", queue_id=queue_ids[0],
                                     now=utcnow(), policy=base, customer_id=customers[2])
        engine.commit_and_settle(s, utcnow(), base)
    assert [d.action for d in queued.match.decisions] == ["offer"]
    assert not any(statements.relaxed())
    assert {d.agent_id for d in queued.match.decisions} <= set(agent_ids)
