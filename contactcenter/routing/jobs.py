"""Routing's background jobs: the periodic sweep and after-commit re-matching.

``routing.sweep`` runs every few seconds: offers that ran out, wrap-ups that
ended, sockets gone past their grace, priorities that moved, rule steps that
widened; then it matches. ``routing.rematch`` is the nudge a web request sends
after its commit for the items and agents it touched (lost or repeated, the
sweep catches up: matching is idempotent).
"""

from __future__ import annotations

from typing import Any

from contactcenter.db import utcnow
from contactcenter.jobs import JobContext, job
from contactcenter.routing.policy import load_policy
from contactcenter.routing.sweep import run_sweep, settle

SWEEP_BATCH = 200
SWEEP_ROUNDS = 50


@job("routing.sweep", queue="default", every=5)
def sweep_job(ctx: JobContext) -> dict[str, Any]:
    """Apply what time changed and match, in short committed transactions."""
    policy = load_policy(ctx.settings)
    decisions = 0
    with ctx.db.session() as session:
        for _round in range(SWEEP_ROUNDS):
            result = run_sweep(session, utcnow(), policy, SWEEP_BATCH)
            decisions += len(result.decisions)
            if not result.decisions:
                break
    return {"decisions": decisions}


@job("routing.rematch", queue="default")
def rematch_job(ctx: JobContext, item_ids: list[int], agent_ids: list[int]) -> int:
    """Match the given items and agents again (sent after a commit that touched them)."""
    policy = load_policy(ctx.settings)
    with ctx.db.session() as session:
        result = settle(session, list(item_ids), list(agent_ids), utcnow(), policy)
        return len(result.decisions)
