"""The sales settings, parsed once into typed values (``SalesConfig.from_settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contactcenter.config import SettingsError, parse_list

if TYPE_CHECKING:
    from contactcenter.config import Settings


def _fraction(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a decimal number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class SalesConfig:
    """Eligibility switches, the acceptance prior and the rule-mining thresholds."""

    offer_limit: int = 3
    decline_cooldown_days: int = 30
    renewal_before_days: int = 30
    renewal_after_days: int = 60
    exclude_open_complaint: bool = True
    exclude_breached_sla: bool = True
    complaint_keywords: tuple[str, ...] = ("complaint", "complain", "refund")
    complaint_priorities: tuple[str, ...] = ("urgent",)
    prior_acceptance: float = 0.10
    renewal_prior: float = 0.40
    prior_strength: float = 20.0
    renewal_margin: float = 0.30
    impression_reuse_minutes: int = 60
    rule_min_support: float = 0.01
    rule_min_confidence: float = 0.1
    rule_min_lift: float = 1.2
    rule_min_count: int = 5
    rule_max_proposed: int = 200

    @classmethod
    def from_settings(cls, s: Settings) -> SalesConfig:
        """Parse the ``CONTACTCENTER_SALES_*`` settings."""
        for name, value in (("PRIOR_ACCEPTANCE_PERCENT", s.sales_prior_acceptance_percent),
                            ("RENEWAL_PRIOR_PERCENT", s.sales_renewal_prior_percent),
                            ("RENEWAL_MARGIN_PERCENT", s.sales_renewal_margin_percent)):
            if value > 100:
                raise SettingsError(f"CONTACTCENTER_SALES_{name} must be at most 100")
        return cls(
            offer_limit=max(1, min(s.sales_offer_limit, 20)),
            decline_cooldown_days=s.sales_decline_cooldown_days,
            renewal_before_days=s.sales_renewal_before_days,
            renewal_after_days=s.sales_renewal_after_days,
            exclude_open_complaint=s.sales_exclude_open_complaint,
            exclude_breached_sla=s.sales_exclude_breached_sla,
            complaint_keywords=tuple(k.lower() for k in parse_list(s.sales_complaint_keywords)),
            complaint_priorities=tuple(parse_list(s.sales_complaint_priorities)),
            prior_acceptance=s.sales_prior_acceptance_percent / 100,
            renewal_prior=s.sales_renewal_prior_percent / 100,
            prior_strength=float(max(s.sales_prior_strength, 1)),
            renewal_margin=s.sales_renewal_margin_percent / 100,
            impression_reuse_minutes=s.sales_impression_reuse_minutes,
            rule_min_support=_fraction("CONTACTCENTER_SALES_RULE_MIN_SUPPORT",
                                       s.sales_rule_min_support, 0.0, 1.0),
            rule_min_confidence=_fraction("CONTACTCENTER_SALES_RULE_MIN_CONFIDENCE",
                                          s.sales_rule_min_confidence, 0.0, 1.0),
            rule_min_lift=_fraction("CONTACTCENTER_SALES_RULE_MIN_LIFT",
                                    s.sales_rule_min_lift, 0.0, 1e6),
            rule_min_count=max(1, s.sales_rule_min_count),
            rule_max_proposed=max(1, s.sales_rule_max_proposed),
        )
