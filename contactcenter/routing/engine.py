"""The routing engine's use cases in one place (see the package docstring for the API).

Every function takes the ``Session`` (none commits), an aware ``now`` and the
``RoutingPolicy`` (``policy.load_policy(settings)``, or ``policy.default_policy()``).
Run one use case per transaction and finish with ``commit_and_settle``, which
commits and, on PostgreSQL, re-matches what the transaction touched.
"""

from __future__ import annotations

from contactcenter.routing.arrival import (
    Enqueued,
    enqueue_item,
    enqueue_ticket,
    rescore,
    sticky_agent,
)
from contactcenter.routing.matching import (
    Decision,
    MatchResult,
    match_agent,
    match_item,
    take_touched,
)
from contactcenter.routing.offers import accept_offer, decline_offer, expire_offers
from contactcenter.routing.policy import (
    RoutingPolicy,
    default_policy,
    fifo_policy,
    load_policy,
)
from contactcenter.routing.presence import (
    end_wrap_ups,
    ensure_agent,
    ensure_team,
    expire_disconnected,
    mark_connected,
    mark_disconnected,
    set_capacity,
    set_presence,
    set_team,
)
from contactcenter.routing.sweep import (
    commit_and_settle,
    rescore_items,
    route,
    run_sweep,
    settle,
)
from contactcenter.routing.work import (
    abandon_item,
    assign_manually,
    complete_for_ticket,
    complete_item,
    transfer_item,
)

__all__ = [
    "Decision",
    "Enqueued",
    "MatchResult",
    "RoutingPolicy",
    "abandon_item",
    "accept_offer",
    "assign_manually",
    "commit_and_settle",
    "complete_for_ticket",
    "complete_item",
    "decline_offer",
    "default_policy",
    "end_wrap_ups",
    "enqueue_item",
    "enqueue_ticket",
    "ensure_agent",
    "ensure_team",
    "expire_disconnected",
    "expire_offers",
    "fifo_policy",
    "load_policy",
    "mark_connected",
    "mark_disconnected",
    "match_agent",
    "match_item",
    "rescore",
    "rescore_items",
    "route",
    "run_sweep",
    "set_capacity",
    "set_presence",
    "set_team",
    "settle",
    "sticky_agent",
    "take_touched",
    "transfer_item",
]
