"""Report figures against values computed by hand on a fixed data set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contactcenter.reports.csat import answer_survey, create_survey
from contactcenter.reports.queries import ReportFilter, ReportInputError, build_report
from contactcenter.reports.sqlfn import percentile_cont
from contactcenter.reports.wallboard import Thresholds, snapshot
from contactcenter.routing.policy import default_policy
from tests.reports.dataset import DAY, NOW, build


def day_filter(**kwargs: Any) -> ReportFilter:
    return ReportFilter(DAY, DAY + dt.timedelta(days=1), **kwargs)


def test_percentile_interpolates_like_postgres() -> None:
    assert percentile_cont([60, 120, 300, 600], 0.5) == 210
    assert percentile_cont([60, 120, 300, 600], 0.9) == pytest.approx(510)
    assert percentile_cont([7], 0.9) == 7
    assert percentile_cont([], 0.5) is None


def test_volume_by_hour_and_day(session: Any) -> None:
    build(session)
    report = build_report(session, day_filter(), default_policy())
    assert report["volume"]["total"] == 5
    assert report["volume"]["by_hour"][9] == 2
    assert report["volume"]["by_hour"][10] == 2
    assert report["volume"]["by_hour"][11] == 1
    assert report["volume"]["by_day"] == [{"day": "2026-03-02", "count": 5}]


def test_first_response_and_resolution_distributions(session: Any) -> None:
    build(session)
    report = build_report(session, day_filter(), default_policy())
    # First responses 60, 120, 300, 600 s: median (120+300)/2, p90 300 + 0.7 x 300.
    assert report["first_response"] == {"count": 4, "mean_seconds": 270.0,
                                        "median_seconds": 210.0, "p90_seconds": 510.0}
    # Resolutions 600, 1200, 3600 s: median 1200, p90 1200 + 0.8 x 2400.
    assert report["resolution"] == {"count": 3, "mean_seconds": 1800.0,
                                    "median_seconds": 1200.0, "p90_seconds": 3120.0}


def test_service_level_abandonment_and_asa(session: Any) -> None:
    data = build(session)
    levels = build_report(session, day_filter(), default_policy())["service_levels"]
    call = next(r for r in levels if r["queue_id"] == data.support.id and r["kind"] == "call")
    # 3 answered (10, 20, 30 s), 2 within 20 s, 1 abandoned: SL 2/4, abandonment 1/4, ASA 20 s.
    assert call["answered"] == 3 and call["within_target"] == 2 and call["abandoned"] == 1
    assert call["service_level"] == 0.5 and call["abandonment"] == 0.25
    assert call["asa_seconds"] == 20.0 and call["target_seconds"] == 20
    chat = next(r for r in levels if r["queue_id"] == data.sales.id and r["kind"] == "chat")
    assert chat["answered"] == 1 and chat["within_target"] == 0 and chat["service_level"] == 0.0


def test_tiers_show_who_waits(session: Any) -> None:
    build(session)
    tiers = {t["tier"]: t for t in build_report(session, day_filter(), default_policy())["tiers"]}
    # Tier A: waits 10 and 90 s; tier C: 20 and 30 s answered, one abandoned.
    assert tiers["A"]["answered"] == 2 and tiers["A"]["asa_seconds"] == 50.0
    assert tiers["A"]["median_wait_seconds"] == 50.0 and tiers["A"]["p90_wait_seconds"] == 82.0
    assert tiers["C"]["answered"] == 2 and tiers["C"]["abandoned"] == 1
    assert tiers["C"]["abandonment"] == pytest.approx(0.3333)


def test_first_contact_resolution(session: Any) -> None:
    from contactcenter.knowledge.models import Article, ArticleUse

    data = build(session)
    article = Article(title="Reset the router")
    session.add(article)
    session.flush()
    for ticket in data.tickets[:2]:
        session.add(ArticleUse(article_id=article.id, ticket_id=ticket.id, used_at=NOW))
    session.commit()
    fcr = build_report(session, day_filter(), default_policy())["fcr"]
    # Solved: 1 (one reply), 2 (two replies), 4 (reopened): only ticket 1 on first contact,
    # and it used an article (ticket 2 did too, but took two replies).
    assert fcr == {"solved": 3, "first_contact": 1, "rate": 0.3333, "with_article": 1}


def test_sla_attainment_per_policy_and_contract(session: Any) -> None:
    from contactcenter.customers.models import Contract
    from contactcenter.sla.models import SlaClock, SlaPolicy, TicketSla

    data = build(session)
    gold = SlaPolicy(name="Gold")
    session.add(gold)
    contract = Contract(external_id="C-1", customer_id=data.tickets[0].customer_id, level="gold",
                        starts_on=DAY.date(), ends_on=DAY.date())
    session.add(contract)
    session.flush()
    # Ticket 1: first response met, resolution breached then met. Ticket 2: both met.
    # Ticket 3: first response breached yesterday (outside the day).
    clocks = [(0, "first_response", DAY.replace(hour=9, minute=1), None),
              (0, "resolution", DAY.replace(hour=9, minute=10), DAY.replace(hour=9, minute=5)),
              (1, "first_response", DAY.replace(hour=9, minute=32), None),
              (1, "resolution", DAY.replace(hour=10, minute=30), None),
              (2, "first_response", None, DAY - dt.timedelta(hours=1))]
    for index, kind, met, breached in clocks:
        session.add(SlaClock(ticket_id=data.tickets[index].id, kind=kind, policy_id=gold.id,
                             target_minutes=30, started_at=DAY, met_at=met, breached_at=breached))
    session.add(TicketSla(ticket_id=data.tickets[0].id, policy_id=gold.id,
                          contract_id=contract.id))
    session.commit()
    sla = build_report(session, day_filter(), default_policy())["sla"]
    by_kind = {p["kind"]: p for p in sla["policies"]}
    first = by_kind["first_response"]
    assert first["clocks"] == 2 and first["attainment"] == 1.0
    assert by_kind["resolution"]["met"] == 1 and by_kind["resolution"]["breached"] == 1
    assert by_kind["resolution"]["attainment"] == 0.5
    assert sla["contracts"] == [{"contract_id": contract.id, "contract": "C-1", "level": "gold",
                                 "clocks": 2, "met": 1, "breached": 1, "attainment": 0.5}]


def test_cross_sell_conversion(session: Any) -> None:
    from decimal import Decimal

    from contactcenter.customers.models import Product
    from contactcenter.sales.models import OfferImpression

    data = build(session)
    product = Product(sku="WIFI-EXT", name="Wi-Fi extender")
    session.add(product)
    session.flush()
    outcomes = [("A", "accepted"), ("A", "declined"), ("C", "accepted"), ("C", None),
                ("C", "not_relevant")]
    for tier, outcome in outcomes:
        session.add(OfferImpression(customer_id=data.tickets[0].customer_id, product_id=product.id,
                                    source="relation", stat_key="k", channel="email", tier=tier,
                                    probability=0.2, expected_value=Decimal("10"), shown_at=NOW,
                                    outcome=outcome, user_id=data.agent_a))
    session.commit()
    sell = build_report(session, day_filter(), default_policy())["cross_sell"]
    assert (sell["shown"], sell["accepted"], sell["declined"], sell["not_relevant"]) == (5, 2, 1, 1)
    assert sell["conversion"] == 0.4
    assert [(t["tier"], t["conversion"]) for t in sell["tiers"]] == [("A", 0.5), ("C", 0.3333)]


def test_filters_narrow_every_figure(session: Any) -> None:
    data = build(session)
    report = build_report(session, day_filter(queue_id=data.sales.id), default_policy())
    assert report["volume"]["total"] == 2
    assert [r["kind"] for r in report["service_levels"]] == ["chat"]
    by_agent = build_report(session, day_filter(agent_id=data.agent_a), default_policy())
    assert by_agent["volume"]["total"] == 2 and by_agent["resolution"]["count"] == 2
    by_tier = build_report(session, day_filter(tier="A"), default_policy())
    assert by_tier["volume"]["total"] == 2
    by_channel = build_report(session, day_filter(channel="chat"), default_policy())
    assert by_channel["volume"]["total"] == 1


def test_csat_figures(session: Any, settings: Any) -> None:
    data = build(session)
    scores = {0: 5, 1: 4, 3: 2}
    for index, score in scores.items():
        survey = create_survey(session, data.tickets[index], NOW, settings)
        assert survey is not None
        answer_survey(session, survey, score, "ok", NOW)
    session.commit()
    csat = build_report(session, day_filter(), default_policy())["csat"]
    assert csat["responses"] == 3 and csat["average"] == pytest.approx(3.67)
    assert csat["satisfied_share"] == pytest.approx(0.6667)
    assert csat["by_score"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}


def test_wallboard_equals_report_for_the_same_window(session: Any) -> None:
    data = build(session)
    policy = default_policy()
    board = snapshot(session, NOW, policy, Thresholds())
    report = build_report(session, ReportFilter(DAY, NOW + dt.timedelta(microseconds=1)), policy)
    recent = build_report(session, ReportFilter(NOW - dt.timedelta(minutes=15),
                                                NOW + dt.timedelta(microseconds=1)), policy)
    for tile in (t for t in board["tiles"] if t["active"]):
        row = next(r for r in report["service_levels"]
                   if (r["queue_id"], r["kind"]) == (tile["queue_id"], tile["kind"]))
        for key in ("answered", "within_target", "abandoned", "service_level", "abandonment",
                    "asa_seconds"):
            assert tile["today"][key] == row[key], key
        last = next((r for r in recent["service_levels"]
                     if (r["queue_id"], r["kind"]) == (tile["queue_id"], tile["kind"])), None)
        if last is not None:
            assert tile["last_15_min"]["service_level"] == last["service_level"]
    call = next(t for t in board["tiles"] if (t["queue_id"], t["kind"]) == (data.support.id, "call"))
    # Last 15 minutes (11:45-12:00): the 30 s answer and the abandonment.
    assert call["last_15_min"]["answered"] == 1 and call["last_15_min"]["abandoned"] == 1
    assert call["last_15_min"]["service_level"] == 0.0
    assert call["levels"]["sl_today"] == "red" and call["levels"]["abandonment"] == "red"
    chat = next(t for t in board["tiles"] if (t["queue_id"], t["kind"]) == (data.sales.id, "chat"))
    assert chat["waiting_now"] == 1 and chat["longest_wait_seconds"] == 120
    assert chat["levels"]["wait"] == "amber"
    states = {a["id"]: a["state"] for a in board["agents"]}
    assert states == {data.agent_a: "available", data.agent_b: "away"}


@pytest.mark.parametrize("kwargs", [
    {"start": NOW, "end": NOW},
    {"start": NOW, "end": NOW + dt.timedelta(days=400)},
    {"start": NOW.replace(tzinfo=None), "end": NOW + dt.timedelta(days=1)},
])
def test_bad_periods_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ReportInputError):
        ReportFilter(**kwargs)
