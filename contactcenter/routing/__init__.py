"""Route work to agents: priority, skills, presence, capacity, offers and queue statistics.

Everything an agent can be given (a ticket waiting for an answer, a live call, a
live chat) is a ``RoutingItem``. The policy is pure and deterministic (the clock
is passed in); the store applies it with indexed queries and row locks, so that a
decision costs the same with 5,000 or 500,000 waiting items.

Public API
==========

Every use case takes the ``Session``, an aware ``now`` and a ``RoutingPolicy``;
none commits. Import them from ``contactcenter.routing.engine``::

    from contactcenter.routing import engine
    policy = engine.load_policy(settings)          # or engine.default_policy()
    queued = engine.enqueue_item(session, kind="call", channel="voice", queue_id=q,
                                 now=now, policy=policy, customer_id=c)
    engine.commit_and_settle(session, now, policy)  # commit (+ re-match on PostgreSQL)

``policy``       ``RoutingPolicy`` (weights, per-queue rules, capacities, offer
                 timeouts, wrap-up, exclusive kinds, lapse limit, sticky window,
                 presence grace, refusal cooldown): ``load_policy(settings)``,
                 ``default_policy()``, ``parse_policy(mapping, settings)``, and
                 ``fifo_policy(settings)``, the first-come-first-served round-robin
                 baseline (zero weights, one step, longest idle) for benchmarks.
``engine``       agents: ``ensure_agent(s, user_id, now, p) -> AgentState``;
                 ``set_presence(s, agent_id, presence, now, p, reason="")``;
                 ``mark_disconnected(s, agent_id, now)`` / ``mark_connected`` (offline
                 after the grace); ``set_capacity(s, agent_id, kind, maximum, now, p)``;
                 ``set_team(s, agent_id, slug | None, now, p)``.
                 work: ``enqueue_item(s, *, kind, channel, queue_id, now, policy,
                 customer_id=None, ticket_id=None, skills=None, language=None,
                 manual_priority="normal", due_at=None, external_ref=None,
                 preferred_agent_id=None, match=True) -> Enqueued(item, match)``;
                 ``enqueue_ticket(s, ticket, now, p, due_at=None) -> Enqueued | None``;
                 ``complete_for_ticket(s, ticket_id, now, p)``;
                 ``complete_item(s, item_id, now, p, wrap_up=True)``;
                 ``abandon_item(s, item_id, now, p)``;
                 ``transfer_item(s, item_id, now, p, to_agent_id=, to_queue_id=,
                 actor_id=)``; ``assign_manually(s, item_id, agent_id, now, p,
                 actor_id=)`` (both raise ``NotEligibleError``: roll back).
                 offers: ``accept_offer(s, offer_id, agent_id, now, p) -> RoutingItem``;
                 ``decline_offer(s, offer_id, agent_id, now, p, reason="")``;
                 ``expire_offers(s, now, p)``.
                 matching: ``match_item(s, item_id, now, p)``,
                 ``match_agent(s, agent_id, now, p, limit=None)``, ``route(s, now, p,
                 limit=None)`` (everything time changes, then matching, in one
                 transaction), ``run_sweep(s, now, p)`` (the same in short committed
                 transactions: the periodic job), ``commit_and_settle(s, now, p)``,
                 ``settle(s, item_ids, agent_ids, now, p)``, ``rescore_items``.
                 Matching use cases return ``MatchResult(decisions, contended)``;
                 a ``Decision`` is ``(action "offer" | "assign", item_id, agent_id,
                 queue_id, kind, priority, offer_id, expires_at)``. ``contended``
                 means a row locked elsewhere was skipped: repeat after commit
                 (``settle`` does).
``stats``        ``queue_stats(s, now, p, queue_id=None, day_start=None) ->
                 list[QueueStats]`` per queue and kind (waiting, offered, assigned,
                 longest and estimated wait, free and staffed slots, agents by
                 presence, answered / within target / abandoned, service level and
                 abandonment over the last 15 minutes and today);
                 ``item_position(s, item_id)``, ``item_estimated_wait(s, item_id,
                 now, p)``, ``estimated_wait(ahead, free, staffed, handle_seconds)``.
``priority``     pure: ``priority_score(PriorityInputs, PriorityWeights, now) ->
                 PriorityScore(score, reason, components, changes_at)``; the reason
                 reads like "VIP tier A, contract Gold, SLA due in 12 min".
``eligibility``  pure: ``AgentSnapshot``, ``ItemSnapshot``, ``is_eligible(agent, item,
                 policy, now)``, ``ineligibility(...)`` (the reasons), ``free_kinds``.
``ranking``      pure: ``rank_agents(agents, item, order, excludes)`` (sticky, blocking,
                 load, idle, level).
``rules``        pure: ``RuleStep``, ``QueueRules``, ``active_step``,
                 ``agent_threshold``, ``rules_clock``, ``next_widening``.
``models``       ``RoutingItem``, ``RoutingItemSkill``, ``AgentState``,
                 ``AgentCapacity``, ``Offer``, ``Team``; enums ``ItemKind`` (ticket,
                 call, chat), ``ItemState`` (waiting, offered, assigned, completed,
                 abandoned), ``Presence`` (available, busy, away, wrap_up, offline),
                 ``OfferOutcome``.
``store``        the SQL half (snapshots, ``pick_statement``, ``candidate_agents``,
                 locks); ``vacancy``: each agent's stored ``free_kinds`` (rewritten
                 with their load, under their lock) behind the partial index of free
                 agents; ``jobs``: ``routing.sweep`` (every 5 s) and
                 ``routing.rematch(item_ids, agent_ids)``; ``errors``;
                 ``durability``: offer-only transactions (``settle``, the expiry
                 sweep) commit with ``synchronous_commit`` off on PostgreSQL when
                 the policy's ``async_offers`` is on (``[durability]`` in the rules).

Bulk-loading waiting items for a benchmark: insert ``RoutingItem`` rows with
``state="waiting"``, ``priority``, ``enqueued_at`` and ``rules_since`` set (see
``arrival.enqueue_item`` for what it fills in), and agents with ``ensure_agent``.
``session.info["routing_audit"]``, when set to a callable, is called with
``(session, item, agent_state, now, direct)`` before every decision (tests).

Concurrency
===========

Lock order: items (ascending id, may wait) before agent states (ascending id,
may wait); a path holding an agent takes items only with ``FOR UPDATE SKIP
LOCKED``. An agent's capacity counters change only under its state row's lock.
SQLite serialises writers: routing transactions begin ``IMMEDIATE``. Events
(``offer.made``, ``offer.accepted``, ``offer.declined``, ``offer.expired``,
``offer.withdrawn``, ``item.queued``, ``item.assigned``, ``item.transferred``,
``item.completed``, ``item.abandoned``, ``agent.presence_changed``) go to
``agent:<id>``, ``queue:<id>``, ``ticket:<id>`` and ``supervisors``.
"""
