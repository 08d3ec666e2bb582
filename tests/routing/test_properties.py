"""Random sequences of arrivals, presence changes, accepts, declines, timeouts, completions,
abandons, transfers and manual assignments on SQLite, with the invariants checked after
every step and every decision audited as it is made:

- never over capacity (and the stored load equals what is held; exclusive kinds apart);
- never offered or assigned to two agents (one holder, exactly one open offer);
- only eligible agents (skills, language, queue, presence, capacity, rule step);
- never an idle eligible agent beside a waiting item once a step is done;
- within one queue, strict priority-then-age order: no agent is given an item while an
  earlier one of the same queue that they could take waits.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from contactcenter.accounts.models import AgentSkill, User
from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer
from contactcenter.db import Database
from contactcenter.routing import engine
from contactcenter.routing.errors import InvalidStateError, NotEligibleError
from contactcenter.routing.models import ItemState, Offer, OfferOutcome, RoutingItem
from contactcenter.routing.policy import parse_policy
from contactcenter.tickets.models import Queue, QueueMember
from tests.routing.helpers import T0, DecisionAudit, check_invariants

STEPS = {
    "default": None,
    "open": [{"name": "anyone"}],
    "teams": [{"name": "tier2", "team": "tier2", "timeout": 60},
              {"name": "skilled", "min_level": 2, "timeout": 60}, {"name": "anyone"}],
}
_template: sqlite3.Connection | None = None


def fresh_database() -> Database:
    """Return an in-memory database with the schema, copied from a template (fast)."""
    global _template
    if _template is None:
        template = Database("sqlite://")
        template.create_all()
        _template = sqlite3.connect(":memory:", check_same_thread=False)
        template.engine.raw_connection().driver_connection.backup(_template)  # type: ignore[union-attr]
        template.dispose()
    database = Database("sqlite://")
    target = database.engine.raw_connection()
    _template.backup(target.driver_connection)  # type: ignore[arg-type]
    target.close()
    return database


queue_configs = st.lists(st.tuples(st.sampled_from([None, None, "billing"]),
                                   st.sampled_from([None, None, "en", "ru"])),
                         min_size=1, max_size=2)
agent_configs = st.lists(st.fixed_dictionaries({
    "languages": st.sampled_from(["en", "ru", "en,ru", "en,ru"]),
    "level": st.sampled_from([None, 1, 2, 3, 5]),
    "team": st.sampled_from([None, "tier2"]),
    "queues": st.sets(st.integers(0, 1), min_size=1),
    "capacity": st.fixed_dictionaries({"call": st.integers(0, 1), "chat": st.integers(0, 2),
                                       "ticket": st.integers(0, 2)}),
    "presence": st.sampled_from(["available", "available", "away"]),
}), min_size=1, max_size=4)


class RoutingMachine(RuleBasedStateMachine):
    """The engine driven through random histories, checked after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.db = fresh_database()
        self.session = self.db.session()
        self.now = T0
        self.agents: list[int] = []
        self.queues: list[int] = []
        self.customers: list[int] = []

    @initialize(steps=st.sampled_from(sorted(STEPS)), ticket_timeout=st.sampled_from([0, 60]),
                exclusive=st.booleans(), queues=queue_configs, agents=agent_configs,
                tiers=st.lists(st.sampled_from([None, "A", "B", "C"]), min_size=3, max_size=3))
    def setup(self, steps: str, ticket_timeout: int, exclusive: bool,
              queues: list[tuple[str | None, str | None]], agents: list[dict[str, Any]],
              tiers: list[str | None]) -> None:
        rules: dict[str, Any] = {"steps": STEPS[steps]} if STEPS[steps] else {}
        self.policy = parse_policy({"default": rules}, Settings(
            routing_offer_timeouts=f"call=20,chat=30,ticket={ticket_timeout}",
            routing_exclusive="call:chat" if exclusive else "", routing_lapse_limit=2,
            routing_decline_cooldown_seconds=60))
        self.audit = DecisionAudit(self.policy)
        self.audit.install(self.session)
        s = self.session
        for index, (skill, language) in enumerate(queues):
            queue = Queue(slug=f"q{index}", name=f"Q{index}", skill=skill, language=language)
            s.add(queue)
            s.flush()
            self.queues.append(queue.id)
        for index, tier in enumerate(tiers):
            customer = Customer(name=f"C{index}", value_tier=tier)
            s.add(customer)
            s.flush()
            self.customers.append(customer.id)
        s.add(Contract(external_id="k1", customer_id=self.customers[0], level="gold",
                       starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31),
                       response_minutes=30))
        for index, config in enumerate(agents):
            user = User(email=f"a{index}@example.test", name=f"A{index}",
                        languages=config["languages"])
            if config["level"]:
                user.skills = [AgentSkill(skill="billing", level=config["level"])]
            s.add(user)
            s.flush()
            for q in sorted(config["queues"]):
                if q < len(self.queues):
                    s.add(QueueMember(queue_id=self.queues[q], user_id=user.id))
            engine.ensure_agent(s, user.id, self.now, self.policy)
            for kind, maximum in config["capacity"].items():
                engine.set_capacity(s, user.id, kind, maximum, self.now, self.policy)
            if config["team"]:
                engine.set_team(s, user.id, config["team"], self.now, self.policy)
            engine.set_presence(s, user.id, config["presence"], self.now, self.policy)
            self.agents.append(user.id)
        s.commit()

    def teardown(self) -> None:
        self.session.close()
        self.db.dispose()

    def _commit(self) -> None:
        engine.commit_and_settle(self.session, self.now, self.policy)

    def _items(self, *states: str) -> list[int]:
        return list(self.session.scalars(select(RoutingItem.id).where(
            RoutingItem.state.in_(states)).order_by(RoutingItem.id)))

    @rule(queue=st.integers(0, 1), kind=st.sampled_from(["call", "chat", "ticket"]),
          customer=st.sampled_from([None, 0, 1, 2]),
          manual=st.sampled_from(["normal", "normal", "high", "urgent", "low"]),
          level=st.sampled_from([None, None, 1, 3]),
          language=st.sampled_from([None, None, "ru"]))
    def arrive(self, queue: int, kind: str, customer: int | None, manual: str,
               level: int | None, language: str | None) -> None:
        engine.enqueue_item(
            self.session, kind=kind, channel={"call": "voice"}.get(kind, kind),
            queue_id=self.queues[queue % len(self.queues)], now=self.now, policy=self.policy,
            customer_id=self.customers[customer] if customer is not None else None,
            manual_priority=manual, skills={"billing": level} if level else None,
            language=language)
        self._commit()

    @rule(agent=st.integers(0, 3),
          presence=st.sampled_from(["available", "available", "busy", "away", "offline"]))
    def change_presence(self, agent: int, presence: str) -> None:
        engine.set_presence(self.session, self.agents[agent % len(self.agents)], presence,
                            self.now, self.policy)
        self._commit()

    def _open_offers(self) -> list[Offer]:
        return list(self.session.scalars(select(Offer).where(
            Offer.outcome == OfferOutcome.PENDING, Offer.expires_at > self.now)
            .order_by(Offer.id)))

    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        offers = self._open_offers()
        if offers:
            offer = data.draw(st.sampled_from(offers))
            engine.accept_offer(self.session, offer.id, offer.agent_id, self.now, self.policy)
            self._commit()

    @rule(data=st.data())
    def decline(self, data: st.DataObject) -> None:
        offers = self._open_offers()
        if offers:
            offer = data.draw(st.sampled_from(offers))
            engine.decline_offer(self.session, offer.id, offer.agent_id, self.now, self.policy)
            self._commit()

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        items = self._items(ItemState.ASSIGNED)
        if items:
            engine.complete_item(self.session, data.draw(st.sampled_from(items)), self.now,
                                 self.policy)
            self._commit()

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        items = self._items(ItemState.WAITING, ItemState.OFFERED)
        if items:
            engine.abandon_item(self.session, data.draw(st.sampled_from(items)), self.now,
                                self.policy)
            self._commit()

    @rule(data=st.data(), to_queue=st.booleans())
    def transfer(self, data: st.DataObject, to_queue: bool) -> None:
        items = self._items(ItemState.ASSIGNED, ItemState.WAITING)
        if not items:
            return
        item_id = data.draw(st.sampled_from(items))
        try:
            if to_queue:
                engine.transfer_item(self.session, item_id, self.now, self.policy,
                                     to_queue_id=data.draw(st.sampled_from(self.queues)))
            else:
                engine.transfer_item(self.session, item_id, self.now, self.policy,
                                     to_agent_id=data.draw(st.sampled_from(self.agents)))
        except NotEligibleError:
            self.session.rollback()
            return
        self._commit()

    @rule(data=st.data())
    def assign_by_hand(self, data: st.DataObject) -> None:
        items = self._items(ItemState.WAITING, ItemState.OFFERED)
        if not items:
            return
        try:
            engine.assign_manually(self.session, data.draw(st.sampled_from(items)),
                                   data.draw(st.sampled_from(self.agents)), self.now,
                                   self.policy, actor_id=self.agents[0])
        except NotEligibleError:
            self.session.rollback()
            return
        self._commit()

    @rule(agent=st.integers(0, 3), kind=st.sampled_from(["call", "chat", "ticket"]),
          maximum=st.integers(0, 2))
    def change_capacity(self, agent: int, kind: str, maximum: int) -> None:
        try:
            engine.set_capacity(self.session, self.agents[agent % len(self.agents)], kind,
                                maximum, self.now, self.policy)
        except InvalidStateError:
            self.session.rollback()
            return
        self._commit()

    @rule(agent=st.integers(0, 3), connected=st.booleans())
    def socket(self, agent: int, connected: bool) -> None:
        agent_id = self.agents[agent % len(self.agents)]
        if connected:
            engine.mark_connected(self.session, agent_id, self.now)
        else:
            engine.mark_disconnected(self.session, agent_id, self.now)
        self._commit()

    @rule(seconds=st.sampled_from([1, 5, 15, 25, 31, 45, 61, 90, 121, 400]))
    def time_passes(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)
        engine.route(self.session, self.now, self.policy)
        self._commit()

    @invariant()
    def invariants_hold(self) -> None:
        if not self.agents:
            return
        assert self.audit.problems == []
        assert self.session.info.get("routing_mismatches", []) == []
        assert check_invariants(self.session, self.policy, self.now) == []


RoutingMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_routing_invariants_hold_over_random_histories = RoutingMachine.TestCase
