"""Routing rules and policy: parsing, validation, steps, thresholds and the sample file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from contactcenter.config import Settings
from contactcenter.routing.errors import RoutingConfigError
from contactcenter.routing.policy import (
    RoutingPolicy,
    default_policy,
    load_policy,
    parse_exclusive,
    parse_kind_map,
    parse_policy,
    read_rules_file,
)
from contactcenter.routing.rules import (
    QueueRules,
    RuleStep,
    active_step,
    agent_threshold,
    next_widening,
    preferred_lead,
    rules_clock,
    step_starts,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "config" / "routing.toml"
RULES = QueueRules(steps=(
    RuleStep("sticky", preferred=True, timeout=30),
    RuleStep("experts", min_level=4, timeout=60),
    RuleStep("tier2", team="tier2", timeout=30),
    RuleStep("billing any", skill="billing", min_level=1, timeout=60),
    RuleStep("anyone")))


def test_the_sample_file_spells_out_the_defaults() -> None:
    assert parse_policy(read_rules_file(SAMPLE), Settings()) == default_policy()
    assert default_policy() == RoutingPolicy()


def test_step_timeline() -> None:
    assert step_starts(RULES) == (0, 30, 90, 120, 180)
    assert preferred_lead(RULES) == 30
    assert rules_clock(RULES, NOW, True) == NOW
    assert rules_clock(RULES, NOW, False) == NOW - dt.timedelta(seconds=30)
    at = [active_step(RULES, NOW, NOW + dt.timedelta(seconds=s)) for s in (0, 29, 30, 90, 500)]
    assert at == [0, 0, 1, 2, 4]
    assert next_widening(RULES, NOW, NOW + dt.timedelta(seconds=95)) == NOW + dt.timedelta(
        seconds=120)
    assert next_widening(RULES, NOW, NOW + dt.timedelta(seconds=180)) is None


@pytest.mark.parametrize(("team", "levels", "queue_skill", "threshold"), [
    (None, {"tech": 5}, "tech", 30), ("tier2", {}, "tech", 90), (None, {"billing": 1}, "x", 120),
    (None, {}, "tech", 180), (None, {"tech": 3}, "tech", 180), (None, {}, None, 30)])
def test_agent_threshold_is_the_first_step_they_qualify_for(
        team: str | None, levels: dict[str, int], queue_skill: str | None,
        threshold: int) -> None:
    assert agent_threshold(RULES, queue_skill, team, levels) == threshold


def test_agents_may_qualify_for_no_step() -> None:
    rules = QueueRules(steps=(RuleStep("tier2", team="tier2"),))
    assert agent_threshold(rules, None, None, {}) is None
    assert agent_threshold(QueueRules(steps=()), None, None, {}) == 0


def test_queue_sections_override_the_defaults() -> None:
    policy = parse_policy({
        "default": {"targets": {"call": 15}},
        "queues": {"vip": {"ranking": ["idle"], "targets": {"chat": 30},
                           "steps": [{"name": "anyone"}]}}}, Settings())
    vip = policy.rules_for("vip")
    assert vip.ranking == ("idle",) and vip.steps == (RuleStep("anyone"),)
    assert vip.target_for("call") == 15 and vip.target_for("chat") == 30
    assert policy.rules_for("other") is policy.default_rules
    assert policy.rules_for(None).target_for("ticket") == 14400


def test_settings_feed_the_policy() -> None:
    policy = parse_policy({}, Settings(
        routing_capacity="chat=5", routing_offer_timeouts="ticket=0, call=10",
        routing_wrap_up_seconds="call=0", routing_exclusive="", routing_lapse_limit=0,
        routing_sticky_hours=1, routing_presence_grace_seconds=5,
        routing_decline_cooldown_seconds=7))
    assert policy.capacity_for("chat") == 5 and policy.capacity_for("call") == 1
    assert policy.offer_timeout("ticket") == 0 and policy.offer_timeout("call") == 10
    assert policy.wrap_up["call"] == 0 and policy.excluded_by("call") == frozenset()
    assert policy.lapse_limit == 0 and policy.sticky_window == dt.timedelta(hours=1)
    assert policy.presence_grace == dt.timedelta(seconds=5)
    assert policy.decline_cooldown == dt.timedelta(seconds=7)


def test_kind_maps_and_exclusive_pairs() -> None:
    assert parse_kind_map("X", "call=1, chat = 2,,") == {"call": 1, "chat": 2}
    assert parse_exclusive("call:chat,ticket:call") == {
        ("call", "chat"), ("chat", "call"), ("ticket", "call"), ("call", "ticket")}
    for bad in ("fax=1", "call", "call=x"):
        with pytest.raises(RoutingConfigError):
            parse_kind_map("X", bad)
    with pytest.raises(RoutingConfigError):
        parse_exclusive("call-chat")


@pytest.mark.parametrize("data", [
    {"surprise": {}},
    {"weights": {"nonsense": 1}},
    {"default": {"steps": []}},
    {"default": {"steps": [{"name": "a"}, {"name": "b"}]}},  # a timeout is missing
    {"default": {"steps": [{"name": "a", "timeout": 5}, {"preferred": True}]}},
    {"default": {"steps": [{"colour": "red"}]}},
    {"default": {"steps": [{"min_level": 0}]}},
    {"default": {"ranking": ["charm"]}},
    {"default": {"extra": 1}},
])
def test_bad_rules_are_refused_with_a_reason(data: dict[str, object]) -> None:
    with pytest.raises(RoutingConfigError):
        parse_policy(data, Settings())


def test_load_policy_reads_toml_or_json_and_rereads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"weights": {"tiers": {"A": 1}}}))
    settings = Settings(routing_rules_file=str(path))
    assert load_policy(settings).weights.tiers == {"A": 1}
    assert load_policy(settings) is load_policy(settings)
    path.write_text(json.dumps({"weights": {"tiers": {"A": 2}}}))
    import os

    os.utime(path, ns=(1, 1))
    assert load_policy(settings).weights.tiers == {"A": 2}
    broken = tmp_path / "broken.toml"
    broken.write_text("[default\n")
    with pytest.raises(RoutingConfigError, match="broken.toml"):
        load_policy(Settings(routing_rules_file=str(broken)))
    with pytest.raises(RoutingConfigError, match="cannot read"):
        load_policy(Settings(routing_rules_file=str(tmp_path / "missing.toml")))


def test_the_fifo_baseline_ignores_value_and_rules() -> None:
    from contactcenter.routing.policy import fifo_policy
    from contactcenter.routing.priority import PriorityInputs, priority_score

    policy = fifo_policy(Settings(routing_capacity="chat=7"))
    score = priority_score(PriorityInputs(
        kind="call", channel="voice", enqueued_at=NOW - dt.timedelta(hours=3), value_tier="A",
        contract_level="gold", response_minutes=10, due_at=NOW, manual_priority="urgent"),
        policy.weights, NOW)
    assert (score.score, score.changes_at) == (0, None)
    assert policy.rules_for("any").steps == (RuleStep("anyone"),)
    assert policy.rules_for("any").ranking == ("idle",)
    assert policy.capacity_for("chat") == 7 and policy.sticky_window == dt.timedelta(0)
