"""Jobs: values after imports and nightly, rule mining, the stats repair; the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.importer import import_file
from contactcenter.customers.models import Customer
from contactcenter.db import Database
from contactcenter.jobs import PERIODIC, load_jobs
from contactcenter.sales.marketing import create_relation
from contactcenter.sales.models import AssociationRule, OfferStat, RelationKind
from contactcenter.sales.service import offers_for_customer, record_outcome
from tests.sales.helpers import buy, customer, product


def test_jobs_are_nightly() -> None:
    load_jobs()
    for name in ("sales.recompute_values", "sales.mine_rules", "sales.repair_stats"):
        assert PERIODIC[name].every == 86400


def test_import_of_purchases_recomputes_tiers(db: Database, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("external_id,name,email\nC1,Anna,a@example.com\n"
                                    "C2,Boris,b@example.com\nC3,Carl,c@example.com\n")
    (tmp_path / "p.csv").write_text("sku,name,price,margin\nR1,Router,100,0.3\n")
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=5)).isoformat()
    (tmp_path / "b.csv").write_text(
        "external_id,customer_external_id,sku,quantity,amount,purchased_at\n"
        f"B1,C1,R1,1,900,{recent}\nB2,C2,R1,1,80,{recent}\nB3,C3,R1,1,20,{recent}\n")
    for kind, name in (("customers", "c.csv"), ("products", "p.csv"), ("purchases", "b.csv")):
        assert import_file(db, kind, tmp_path / name, progress=False).error_count == 0
    with db.session() as session:
        rows = session.execute(select(Customer.external_id, Customer.value_tier))
        tiers = {external_id: tier for external_id, tier in rows}
    # 900 of 1000 is A (crosses 80%); 80 brings it to 98%: B; 20 is C.
    assert tiers == {"C1": "A", "C2": "B", "C3": "C"}


def test_recompute_and_mine_jobs(jobs: Any, session: Session) -> None:
    router, mesh = product(session, "Router"), product(session, "Mesh")
    for i in range(6):
        c = customer(session, f"C{i}")
        buy(session, c, router)
        if i < 5:
            buy(session, c, mesh)
    for i in range(4):
        buy(session, customer(session, f"Solo {i}"), product(session, f"Other {i}"))
    session.commit()
    jobs.enqueue("sales.recompute_values")
    jobs.enqueue("sales.mine_rules")
    assert jobs.failures == []
    session.expire_all()
    assert {c.value_tier for c in session.scalars(select(Customer))} <= {"A", "B", "C"}
    rules = {(r.antecedent_product_id, r.consequent_product_id)
             for r in session.scalars(select(AssociationRule))}
    # 10 baskets; router 6, mesh 5, both 5: mesh -> router conf 1.0 lift 1.67;
    # router -> mesh conf 0.83 lift 1.67.
    assert rules == {(router.id, mesh.id), (mesh.id, router.id)}


def test_repair_rebuilds_outcome_counts(jobs: Any, session: Session) -> None:
    router, mesh = product(session, "Router"), product(session, "Mesh")
    create_relation(session, RelationKind.CROSS_SELL, router.id, mesh.id)
    anna = customer(session, value_tier="B")
    buy(session, anna, router)
    session.commit()
    offer = offers_for_customer(session, anna.id, None)[0]
    record_outcome(session, offer["id"], "accepted", None)
    session.commit()
    before = {(s.key, s.tier, s.accepted) for s in session.scalars(select(OfferStat))}
    for s in session.scalars(select(OfferStat)):
        s.accepted = 99                                     # drift
    session.commit()
    jobs.enqueue("sales.repair_stats")
    session.expire_all()
    after = {(s.key, s.tier, s.accepted) for s in session.scalars(select(OfferStat))}
    assert after == before == {(f"product:{mesh.id}", "", 1), (f"product:{mesh.id}", "B", 1)}


def test_cli_recompute_mine_and_offers(tmp_path: Path, monkeypatch: Any) -> None:
    from contactcenter.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CONTACTCENTER_DATABASE_URL", url)
    monkeypatch.setenv("CONTACTCENTER_DATA_DIR", str(tmp_path))
    db = Database(url)
    db.upgrade()
    with db.session() as session:
        router, mesh = product(session, "Router"), product(session, "Mesh")
        create_relation(session, RelationKind.CROSS_SELL, router.id, mesh.id)
        anna = customer(session)
        buy(session, anna, router)
        session.commit()
        anna_id = anna.id
    db.dispose()
    runner = CliRunner()
    out = runner.invoke(main, ["sales", "recompute"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"customers": 1, "tiers": {"A": 1, "B": 0, "C": 0}}
    out = runner.invoke(main, ["sales", "mine", "--method", "python"])
    assert out.exit_code == 0 and json.loads(out.output)["baskets"] == 1
    out = runner.invoke(main, ["sales", "offers", str(anna_id)])
    data = json.loads(out.output)
    assert [o["product"] for o in data["offers"]] == ["Mesh"] and data["blocked"] is None
    assert runner.invoke(main, ["sales", "offers", "999"]).exit_code != 0
