"""Erlang C: waiting probability, service level, speed of answer and agents needed.

The classic formula divides ``A^N / N!`` by a sum of such terms; computed
directly it overflows a float past about 170 agents. Here the Erlang B
blocking probability comes from its recurrence
``B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1))``, which stays in [0, 1] at every
step, and Erlang C follows from it: ``C = N·B / (N - A·(1 - B))``. The cost is
one multiply-add per agent, so 10,000 agents take microseconds and never
overflow.

Given ``A`` Erlangs of traffic (contacts per interval × average handle time /
interval length), ``N`` agents, handle time ``H`` and target answer time ``T``:

- probability of waiting ``Pw = C(N, A)``;
- service level ``SL = 1 - Pw · exp(-(N - A) · T / H)``;
- average speed of answer ``ASA = Pw · H / (N - A)``;
- occupancy ``A / N``.

With ``N <= A`` the queue grows without bound: ``Pw = 1``, ``SL = 0`` and the
ASA is infinite (reported as ``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_AGENTS = 1_000_000


class ErlangInputError(ValueError):
    """Inputs the model cannot work with (negative, zero handle time, too large)."""


def traffic_intensity(contacts: float, interval_seconds: float, aht_seconds: float) -> float:
    """Return the offered load in Erlangs: contacts per interval × handle time / interval."""
    if interval_seconds <= 0:
        raise ErlangInputError("the interval must be longer than 0 seconds")
    if contacts < 0 or aht_seconds < 0:
        raise ErlangInputError("contacts and handle time cannot be negative")
    return contacts * aht_seconds / interval_seconds


def erlang_b(traffic: float, agents: int) -> float:
    """Return the Erlang B blocking probability by the stable recurrence."""
    if agents < 0 or traffic < 0:
        raise ErlangInputError("traffic and agents cannot be negative")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    return blocking


def erlang_c_from_b(traffic: float, agents: int, blocking: float) -> float:
    """Return the probability of waiting from an Erlang B value for the same inputs."""
    if agents <= traffic:
        return 1.0
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def erlang_c(traffic: float, agents: int) -> float:
    """Return the probability that a contact waits (1.0 when agents cannot keep up)."""
    if traffic == 0:
        return 0.0
    return erlang_c_from_b(traffic, agents, erlang_b(traffic, agents))


def service_level_of(traffic: float, agents: int, aht_seconds: float, target_seconds: float,
                     wait_probability: float | None = None) -> float:
    """Return the share of contacts answered within ``target_seconds``."""
    if traffic == 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    pw = erlang_c(traffic, agents) if wait_probability is None else wait_probability
    return max(0.0, 1.0 - pw * math.exp(-(agents - traffic) * target_seconds / aht_seconds))


def average_speed_of_answer(traffic: float, agents: int, aht_seconds: float,
                            wait_probability: float | None = None) -> float | None:
    """Return the mean wait in seconds over all contacts (None: unbounded)."""
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return None
    pw = erlang_c(traffic, agents) if wait_probability is None else wait_probability
    return pw * aht_seconds / (agents - traffic)


@dataclass(frozen=True)
class ErlangResult:
    """The figures of one staffing level."""

    traffic: float
    agents: int
    wait_probability: float
    service_level: float
    asa_seconds: float | None
    occupancy: float
    immediate_answer: float

    def to_json(self, digits: int = 10) -> dict[str, Any]:
        """Return the JSON-ready form, rounded to ``digits`` places."""
        return {
            "traffic_erlangs": round(self.traffic, digits),
            "agents": self.agents,
            "wait_probability": round(self.wait_probability, digits),
            "service_level": round(self.service_level, digits),
            "asa_seconds": None if self.asa_seconds is None else round(self.asa_seconds, digits),
            "occupancy": round(self.occupancy, digits),
            "immediate_answer": round(self.immediate_answer, digits),
        }


def _check(traffic: float, aht_seconds: float, target_seconds: float) -> None:
    if traffic < 0 or target_seconds < 0:
        raise ErlangInputError("traffic and target cannot be negative")
    if aht_seconds <= 0:
        raise ErlangInputError("the average handle time must be longer than 0 seconds")
    if traffic > MAX_AGENTS:
        raise ErlangInputError(f"more than {MAX_AGENTS} Erlangs is beyond this calculator")


def evaluate(traffic: float, agents: int, aht_seconds: float,
             target_seconds: float) -> ErlangResult:
    """Return every figure for a given number of agents."""
    _check(traffic, aht_seconds, target_seconds)
    if agents < 0 or agents > MAX_AGENTS:
        raise ErlangInputError(f"agents must be between 0 and {MAX_AGENTS}")
    pw = erlang_c(traffic, agents)
    return ErlangResult(
        traffic=traffic, agents=agents, wait_probability=pw,
        service_level=service_level_of(traffic, agents, aht_seconds, target_seconds, pw),
        asa_seconds=average_speed_of_answer(traffic, agents, aht_seconds, pw),
        occupancy=min(1.0, traffic / agents) if agents else (0.0 if traffic == 0 else 1.0),
        immediate_answer=1.0 - pw,
    )


def agents_for_service_level(traffic: float, aht_seconds: float, target_seconds: float,
                             service_level: float, *, max_occupancy: float | None = None
                             ) -> ErlangResult:
    """Return the fewest agents whose service level reaches ``service_level``.

    The search walks up from the smallest stable staffing, extending the
    Erlang B recurrence one agent at a time, so finding 2,000 agents costs
    about 2,000 steps in all. ``max_occupancy`` (e.g. 0.85) adds agents until
    occupancy is at or below it.
    """
    _check(traffic, aht_seconds, target_seconds)
    if not 0 <= service_level < 1:
        raise ErlangInputError("the target service level must be at least 0 and below 1")
    if traffic == 0:
        return evaluate(0.0, 0, aht_seconds, target_seconds)
    blocking = 1.0
    agents = 0
    while True:
        agents += 1
        if agents > MAX_AGENTS:
            raise ErlangInputError("no staffing up to the limit reaches the target")
        blocking = traffic * blocking / (agents + traffic * blocking)
        if agents <= traffic:
            continue
        pw = erlang_c_from_b(traffic, agents, blocking)
        sl = service_level_of(traffic, agents, aht_seconds, target_seconds, pw)
        if sl + 1e-12 < service_level:
            continue
        if max_occupancy is not None and traffic / agents > max_occupancy + 1e-12:
            continue
        return evaluate(traffic, agents, aht_seconds, target_seconds)


def scheduled_headcount(agents: int, shrinkage: float) -> int:
    """Return the agents to schedule so that ``agents`` are on the phones after shrinkage.

    Shrinkage is the share of paid time not spent handling contacts (breaks,
    training, absence): ``ceil(agents / (1 - shrinkage))``.
    """
    if not 0 <= shrinkage < 1:
        raise ErlangInputError("shrinkage must be at least 0 and below 1")
    # Round first: 14 / 0.7 is 20.000000000000004 in binary floating point.
    return math.ceil(round(agents / (1.0 - shrinkage), 9))
