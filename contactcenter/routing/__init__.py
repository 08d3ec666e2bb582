"""Route work to agents: priority, skills, presence, capacity, offers and queue statistics.

Everything an agent can be given (a ticket waiting for an answer, a live call, a
live chat) is a ``RoutingItem``. The policy is pure and deterministic (clock passed
in); the store applies it with indexed queries and row locks, so that a decision
costs the same with 5,000 or 500,000 waiting items.

Modules
=======

``models``       RoutingItem, AgentState, AgentCapacity, Offer, Team, RoutingItemSkill
                 and the enums ItemKind (ticket/call/chat), ItemState (waiting/offered/
                 assigned/completed/abandoned), Presence (available/busy/away/wrap_up/
                 offline), OfferOutcome.
``priority``     pure: ``priority_score(inputs, weights, now) -> PriorityScore`` (score,
                 reason text such as "VIP tier A, contract Gold, SLA due in 12 min",
                 components, and ``changes_at``: when the score next changes).
``eligibility``  pure: ``AgentSnapshot``, ``ItemSnapshot``, ``is_eligible(agent, item,
                 rules, now)`` and ``ineligibility(...)`` (the reasons), ``free_kinds``.
``ranking``      pure: ``rank_agents(agents, item, rules, now, order)`` (sticky agent,
                 least busy, longest idle, skill level; stable tie-break on id).
``rules``        ``RoutingPolicy`` (weights, per-queue TaskRouter-style steps, targets,
                 capacities, offer timeouts, wrap-up, lapse limit, sticky window,
                 presence grace): ``load_policy(settings)``, ``default_policy()``,
                 ``parse_policy(mapping, settings)``; pure step helpers
                 ``active_step``, ``agent_threshold``.
``engine``       the use cases (all take a ``Session`` and an aware ``now``; none
                 commits; each returns what it decided):

                 - ``ensure_agent(session, user_id, now, policy=...) -> AgentState``
                 - ``set_presence(session, agent_id, presence, now, reason="")``
                 - ``mark_disconnected`` / ``mark_connected`` (socket drop with grace)
                 - ``set_capacity(session, agent_id, kind, maximum)``
                 - ``enqueue_item(session, kind=, channel=, queue_id=, now=, ...)``
                 - ``enqueue_ticket(session, ticket, now, due_at=None)``,
                   ``complete_for_ticket(session, ticket_id, now)``
                 - ``match_item(session, item_id, now)``,
                   ``match_agent(session, agent_id, now)``,
                   ``route(session, now, limit=None)`` -> ``MatchResult`` (its
                   ``decisions`` are ``Decision`` values; ``contended`` says a
                   locked row was skipped and the call should be repeated after
                   commit)
                 - ``accept_offer(session, offer_id, agent_id, now)``,
                   ``decline_offer(session, offer_id, agent_id, now, reason="")``,
                   ``expire_offers(session, now)``
                 - ``complete_item``, ``abandon_item``, ``transfer_item`` (to an
                   agent or a queue), ``assign_manually`` (same eligibility rules)
                 - ``commit_and_settle(session, now)``: commit, then re-match what
                   the transaction touched until no lock was contended (closes
                   the lost-wakeup window between concurrent writers)
``stats``        ``queue_stats(session, now, queue_id=None) -> list[QueueStats]`` per
                 queue and kind (waiting, longest wait, estimated wait, agents by
                 presence, service level and abandonment over 15 min and today),
                 ``item_position(session, item_id)``.
``jobs``         periodic sweeps ``routing.sweep`` (expire offers, end wrap-ups,
                 offline after the grace, rescore, re-match) and ``routing.rematch``.

Concurrency
===========

Lock order: items (ascending id, may wait) before agent states (ascending id, may
wait); an agent-first path takes items only with ``FOR UPDATE SKIP LOCKED``. Every
state change is a compare-and-set on the row, so SQLite (one writer; routing
transactions begin ``IMMEDIATE``) and PostgreSQL share the code. Events
(``offer.made``, ``offer.accepted``, ``offer.declined``, ``offer.expired``,
``offer.withdrawn``, ``item.queued``, ``item.assigned``, ``item.transferred``,
``item.completed``, ``item.abandoned``, ``agent.presence_changed``) go to the
rooms ``agent:<id>``, ``queue:<id>`` and ``supervisors``.
"""
