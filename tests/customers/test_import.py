"""Importing customers, products, purchases and contracts from CSV and JSON files."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.cli import main
from contactcenter.customers.importer import ImportFileError, import_file
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    Organisation,
    Product,
    Purchase,
)
from contactcenter.db import Database

CUSTOMERS_CSV = """external_id,name,email,phone,country,language,organisation,value_tier,balance
C-1,Anna Petrova,anna@example.com,+7 916 123-45-67,RU,ru,Romashka LLC,gold,12.50
C-2,John Smith,john@example.com;j.smith@example.org,(202) 555-0143,,en,,silver,
C-3,Bad Email,not-an-email,,,en,,,
C-4,Ольга Иванова,olga@example.com,8 (916) 765-43-21,RU,ru,Romashka LLC,,
,No Id,noid@example.com,,,,,,
"""


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def count(db: Database, model: type[Any]) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def customer(session: Session, external_id: str) -> Customer:
    found = session.scalar(select(Customer).where(Customer.external_id == external_id))
    assert found is not None
    return found


def test_good_rows_are_imported_and_broken_rows_reported_by_line(
        db: Database, tmp_path: Path) -> None:
    result = import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV),
                         progress=False)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert [(e.line, "email" in e.message or "external_id" in e.message)
            for e in result.errors] == [(4, True), (6, True)]
    with db.session() as s:
        anna = customer(s, "C-1")
        assert anna.name == "Anna Petrova" and anna.language == "ru"
        assert anna.balance == Decimal("12.50") and anna.value_tier == "gold"
        assert anna.address_of("phone") == "+79161234567"
        assert anna.organisation is not None and anna.organisation.name == "Romashka LLC"
        olga = customer(s, "C-4")
        assert olga.address_of("phone") == "+79167654321"
        assert olga.organisation_id == anna.organisation_id
    assert count(db, Organisation) == 1


def test_several_emails_and_phones_become_identities(db: Database, tmp_path: Path) -> None:
    import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV), progress=False)
    with db.session() as s:
        john = customer(s, "C-2")
        assert sorted((i.kind, i.address) for i in john.identities) == [
            ("email", "j.smith@example.org"), ("email", "john@example.com"),
            ("phone", "+12025550143")]


def test_reimporting_the_same_file_changes_nothing(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", CUSTOMERS_CSV)
    import_file(db, "customers", path, progress=False)
    before = count(db, CustomerIdentity)
    again = import_file(db, "customers", path, progress=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert len(again.errors) == 2
    assert count(db, Customer) == 3 and count(db, CustomerIdentity) == before
    assert count(db, Organisation) == 1


def test_a_changed_row_updates_its_record(db: Database, tmp_path: Path) -> None:
    import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV), progress=False)
    changed = CUSTOMERS_CSV.replace("Anna Petrova,anna@example.com",
                                    "Anna Sidorova,anna@example.com;anna2@example.com")
    result = import_file(db, "customers", write(tmp_path, "c2.csv", changed), progress=False)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    with db.session() as s:
        anna = customer(s, "C-1")
        assert anna.name == "Anna Sidorova"
        assert {i.address for i in anna.identities} >= {"anna@example.com", "anna2@example.com"}


def test_an_address_of_another_customer_is_a_row_error_naming_them(
        db: Database, tmp_path: Path) -> None:
    import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV), progress=False)
    clash = "external_id,name,email\nC-9,Impostor,anna@example.com\nC-10,Fine,fine@example.com\n"
    result = import_file(db, "customers", write(tmp_path, "x.csv", clash), progress=False)
    assert result.created == 1
    assert len(result.errors) == 1 and result.errors[0].line == 2
    assert "anna@example.com" in result.errors[0].message
    assert "C-1" in result.errors[0].message and "Anna Petrova" in result.errors[0].message
    with db.session() as s:
        assert s.scalar(select(Customer).where(Customer.external_id == "C-9")) is None


def test_csv_with_bom_semicolons_and_a_quoted_multiline_field(
        db: Database, tmp_path: Path) -> None:
    text = 'sku;name;category;price;margin;currency\nP-1;"Router\nAX";hardware;89.90;0.35;usd\n' \
           "P-2;Broken;hardware;-1;;USD\nP-3;Plan;plan;19;1.5;USD\n"
    result = import_file(db, "products", write(tmp_path, "p.csv", text, bom=True),
                         progress=False)
    assert result.created == 1
    assert [e.line for e in result.errors] == [4, 5]
    assert "price" in result.errors[0].message and "margin" in result.errors[1].message
    with db.session() as s:
        product = s.scalar(select(Product).where(Product.sku == "P-1"))
        assert product is not None and product.name == "Router\nAX"
        assert product.price == Decimal("89.90") and product.currency == "USD"


def test_a_csv_without_header_uses_the_documented_column_order(
        db: Database, tmp_path: Path) -> None:
    result = import_file(db, "products", write(tmp_path, "p.csv", "P-1,Router,hardware,10\n"),
                         progress=False)
    assert result.created == 1 and not result.errors


def test_json_list_rows_are_numbered_by_item(db: Database, tmp_path: Path) -> None:
    items = [{"external_id": "J-1", "name": "Json One", "email": ["j1@example.com",
                                                                  "j1b@example.com"]},
             {"name": "no id"}, "not an object",
             {"external_id": "J-2", "balance": 3.5, "phone": "+1 202 555 0187"}]
    path = write(tmp_path, "c.json", json.dumps(items))
    result = import_file(db, "customers", path, progress=False)
    assert result.created == 2
    assert [e.line for e in result.errors] == [2, 3]
    with db.session() as s:
        assert len(customer(s, "J-1").identities) == 2
        assert customer(s, "J-2").balance == Decimal("3.50")


def test_json_lines_rows_are_numbered_by_line(db: Database, tmp_path: Path) -> None:
    lines = ['{"sku": "S-1", "name": "One", "price": 5}', "", "{broken", '{"sku": "S-2"}',
             '{"sku": "S-3", "name": "Three", "price": "7.25"}']
    for name in ("p.jsonl", "p.json"):
        result = import_file(db, "products", write(tmp_path, name, "\n".join(lines)),
                             progress=False)
        assert [e.line for e in result.errors] == [3, 4]
    assert result.unchanged == 2
    assert count(db, Product) == 2


def test_purchases_and_contracts_link_customers_and_products(
        db: Database, tmp_path: Path) -> None:
    import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV), progress=False)
    import_file(db, "products", write(tmp_path, "p.csv",
                                      "sku,name,price\nRTR,Router,89.90\nSUP,Support,100\n"),
                progress=False)
    purchases = ("external_id,customer_external_id,sku,quantity,amount,currency,purchased_at\n"
                 "O-1,C-1,RTR,2,,,2025-03-01T10:00:00\n"
                 "O-2,C-2,RTR,1,80,EUR,2025-03-02T10:00:00+03:00\n"
                 "O-3,C-404,RTR,1,,,2025-03-02\n"
                 "O-4,C-1,RTR,0,,,2025-03-02\n"
                 "O-5,C-1,RTR,1,,,yesterday\n")
    result = import_file(db, "purchases", write(tmp_path, "o.csv", purchases), progress=False)
    assert result.created == 2 and [e.line for e in result.errors] == [4, 5, 6]
    assert "C-404" in result.errors[0].message
    contracts = ("external_id,customer_external_id,level,starts_on,ends_on,response_minutes,"
                 "value,sku\nK-1,C-1,Premium,2025-01-01,2025-12-31,60,1200,SUP\n"
                 "K-2,C-2,Basic,2025-06-01,2025-01-01,,,\n")
    result = import_file(db, "contracts", write(tmp_path, "k.csv", contracts), progress=False)
    assert result.created == 1 and [e.line for e in result.errors] == [3]
    with db.session() as s:
        first = s.scalar(select(Purchase).where(Purchase.external_id == "O-1"))
        assert first is not None and first.amount == Decimal("179.80") and first.quantity == 2
        assert first.purchased_at == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
        second = s.scalar(select(Purchase).where(Purchase.external_id == "O-2"))
        assert second is not None and second.currency == "EUR"
        assert second.purchased_at == dt.datetime(2025, 3, 2, 7, tzinfo=dt.UTC)
        contract = s.scalar(select(Contract).where(Contract.external_id == "K-1"))
        assert contract is not None and contract.response_minutes == 60
        assert contract.ends_on == dt.date(2025, 12, 31) and contract.product_id is not None
    again = import_file(db, "purchases", write(tmp_path, "o.csv", purchases), progress=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize(("name", "content", "kind", "says"), [
    ("c.xlsx", b"PK\x03\x04", "customers", "unknown file type"),
    ("c.csv", b"\x00\x01binary", "customers", "not a text file"),
    ("c.csv", "external_id,name\n".encode("utf-16"), "customers", "not"),
    ("c.csv", b"name,email\nAnna,a@example.com\n", "customers", "external_id"),
    ("c.json", b"<html></html>", "customers", "not JSON"),
    ("c.csv", b"Customer number,Full name\nC-1,Anna\n", "customers", "no known column"),
    ("c.csv", b"", "customers", "empty"),
    ("c.csv", b"external_id\nC-1\n", "invoices", "unknown kind"),
])
def test_an_unreadable_file_raises_a_clear_error(db: Database, tmp_path: Path, name: str,
                                                 content: bytes, kind: str, says: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=says):
        import_file(db, kind, path, progress=False)


def test_over_long_fields_are_row_errors(db: Database, tmp_path: Path) -> None:
    text = f"external_id,name\nC-1,{'x' * 300}\nC-2,Fine\n"
    result = import_file(db, "customers", write(tmp_path, "c.csv", text), progress=False)
    assert result.created == 1 and result.errors[0].line == 2
    assert "longer than 200" in result.errors[0].message


def test_rows_are_committed_in_batches(db: Database, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from contactcenter.customers import importer

    monkeypatch.setattr(importer, "BATCH_SIZE", 7)
    rows = "".join(f"S-{n},Product {n},misc,{n}\n" for n in range(50))
    result = import_file(db, "products", write(tmp_path, "p.csv", "sku,name,category,price\n"
                                               + rows), progress=False)
    assert result.created == 50 and count(db, Product) == 50


def test_the_cli_prints_the_summary_and_row_errors_with_file_and_line(
        tmp_path: Path) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    env = {"CONTACTCENTER_DATA_DIR": str(tmp_path / "data"),
           "CONTACTCENTER_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'cli.db'}",
           "CONTACTCENTER_SECRET_KEY": "test-secret-key-not-for-production"}
    runner = CliRunner()
    result = runner.invoke(main, ["import", "customers", str(path), "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"kind": "customers", "created": 3, "updated": 0, "unchanged": 0,
                       "errors": 2}
    assert f"{path}:4: " in result.stderr and f"{path}:6: " in result.stderr
    again = runner.invoke(main, ["import", "customers", str(path), "--quiet"], env=env)
    assert json.loads(again.stdout.strip().splitlines()[-1])["unchanged"] == 3


def test_customers_without_a_country_take_the_deployments_phone_region(
        db: Database, tmp_path: Path) -> None:
    text = ("external_id,name,phone,country\n"
            "R-1,Local,8 (916) 555-01-02,\n"
            "R-2,Abroad,(202) 555-0143,US\n")
    result = import_file(db, "customers", write(tmp_path, "r.csv", text), progress=False,
                         defaults={"country": "RU"})
    assert result.created == 2 and not result.errors
    with db.session() as s:
        phones = {c.external_id: [i.address for i in c.identities]
                  for c in s.scalars(select(Customer))}
    assert phones == {"R-1": ["+79165550102"], "R-2": ["+12025550143"]}


def test_the_import_command_reads_phones_in_the_configured_region(tmp_path: Path) -> None:
    env = {"CONTACTCENTER_DATA_DIR": str(tmp_path / "data"),
           "CONTACTCENTER_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'cli.db'}",
           "CONTACTCENTER_SECRET_KEY": "test-secret-key-not-for-production",
           "CONTACTCENTER_PHONE_REGION": "ru"}
    path = write(tmp_path, "r.csv", "external_id,name,phone\nR-1,Local,8 916 555-01-02\n")
    done = CliRunner().invoke(main, ["import", "customers", str(path), "--quiet"], env=env)
    assert done.exit_code == 0, done.output
    database = Database(env["CONTACTCENTER_DATABASE_URL"])
    with database.session() as s:
        assert s.scalars(select(CustomerIdentity.address)).all() == ["+79165550102"]
    database.dispose()
    env["CONTACTCENTER_PHONE_REGION"] = "Narnia"
    refused = CliRunner().invoke(main, ["import", "customers", str(path), "--quiet"], env=env)
    assert refused.exit_code != 0 and "CONTACTCENTER_PHONE_REGION" in refused.output


def test_a_contract_may_carry_its_own_onsite_commitment(db: Database, tmp_path: Path) -> None:
    import_file(db, "customers", write(tmp_path, "c.csv", CUSTOMERS_CSV), progress=False)
    contracts = ("external_id,customer_external_id,level,starts_on,ends_on,onsite_minutes\n"
                 "K-1,C-1,Premium,2025-01-01,2025-12-31,90\n"
                 "K-2,C-2,Premium,2025-01-01,2025-12-31,\n"
                 "K-3,C-2,Premium,2025-01-01,2025-12-31,0\n")
    result = import_file(db, "contracts", write(tmp_path, "k.csv", contracts), progress=False)
    assert result.created == 2 and [e.line for e in result.errors] == [4]
    assert "onsite_minutes" in result.errors[0].message
    with db.session() as s:
        minutes = dict(s.execute(select(Contract.external_id, Contract.onsite_minutes)).all())
    assert minutes == {"K-1": 90, "K-2": None}
