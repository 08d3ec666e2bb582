"""Background jobs of the sales package (see ``contactcenter.jobs``).

``sales.recompute_values`` rescores every customer nightly (imports also run it
in their own process); ``sales.mine_rules`` mines association rules nightly,
leaving new ones proposed for marketing; ``sales.repair_stats`` rebuilds the
outcome counts from the impressions, repairing any drift. All three are
idempotent: running one twice writes the same rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, func, select

from contactcenter.customers.value import ValueConfig, recompute_values
from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.jobs import JobContext, job
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.mining import mine_rules
from contactcenter.sales.models import OfferImpression, OfferStat, Outcome


@job("sales.recompute_values", queue="default", every=86400)
def recompute_values_job(ctx: JobContext, *_payload: Any) -> dict[str, Any]:
    """Recompute every customer's value and tier."""
    config = ValueConfig.from_settings(ctx.settings)
    with ctx.db.session() as session:
        result = recompute_values(session, utcnow(), config)
        record_event(session, "sales.values_recomputed",
                     {"customers": result.customers, "tiers": result.tiers}, [])
        session.commit()
    return {"customers": result.customers, "tiers": result.tiers}


@job("sales.mine_rules", queue="default", every=86400)
def mine_rules_job(ctx: JobContext, *_payload: Any) -> dict[str, Any]:
    """Mine association rules from purchase history (new ones await approval)."""
    config = SalesConfig.from_settings(ctx.settings)
    with ctx.db.session() as session:
        result = mine_rules(session, utcnow(), config)
        record_event(session, "sales.rules_mined",
                     {"baskets": result.baskets, "created": result.created,
                      "updated": result.updated, "dropped": result.dropped}, [])
        session.commit()
    return {"baskets": result.baskets, "candidates": result.candidates,
            "created": result.created, "updated": result.updated, "dropped": result.dropped}


@job("sales.repair_stats", queue="default", every=86400)
def repair_stats_job(ctx: JobContext) -> int:
    """Rebuild the outcome counts from the impressions (they are the source of truth)."""
    with ctx.db.session() as session:
        rows = rebuild_stats(session)
        session.commit()
    return rows


def rebuild_stats(session: Any) -> int:
    """Replace ``offer_stats`` with counts aggregated from ``offer_impressions``."""
    i = OfferImpression
    sums = [func.sum(case((i.outcome == o.value, 1), else_=0)) for o in Outcome]
    decided = i.outcome.is_not(None)
    per_tier = session.execute(select(i.stat_key, i.tier, *sums).where(decided)
                               .group_by(i.stat_key, i.tier)).all()
    overall = session.execute(select(i.stat_key, *sums).where(decided)
                              .group_by(i.stat_key)).all()
    session.execute(delete(OfferStat))
    rows = [OfferStat(key=k, tier="", accepted=a, declined=d, not_relevant=n)
            for k, a, d, n in overall]
    rows += [OfferStat(key=k, tier=t, accepted=a, declined=d, not_relevant=n)
             for k, t, a, d, n in per_tier if t]
    session.add_all(rows)
    session.flush()
    return len(rows)
