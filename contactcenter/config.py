"""Read the product's settings from the environment, with embedded defaults.

Nothing here runs at import time: ``Settings.from_env(os.environ)`` is a pure
function of the mapping it is given, so tests build settings from plain dicts and
the app factory accepts a ready ``Settings`` as an override.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "CONTACTCENTER_"


class SettingsError(ValueError):
    """A configuration value that cannot be parsed or is unsafe."""


def parse_bool(name: str, raw: str) -> bool:
    """Parse a boolean the way people write it in env files."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


def parse_int(name: str, raw: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Parse a bounded integer."""
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def parse_list(raw: str) -> list[str]:
    """Parse a comma separated list, dropping blanks."""
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Settings:
    """Everything the product can be configured with.

    Field names map to environment variables: ``database_url`` is
    ``CONTACTCENTER_DATABASE_URL``. Defaults describe the embedded deployment:
    SQLite in the data folder, in-process jobs, no Redis, SMTP on loopback.
    """

    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:5000"
    host: str = "127.0.0.1"
    port: int = 5000
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_max_message_bytes: int = 25 * 1024 * 1024
    smtp_domain: str = "support.example.test"
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""
    smtp_timeout_seconds: int = 300
    smtp_max_connections_per_ip: int = 20
    smtp_relay_host: str = ""
    smtp_relay_port: int = 25
    smtp_relay_user: str = ""
    smtp_relay_password: str = ""
    smtp_relay_starttls: bool = False
    smtp_relay_timeout_seconds: int = 30
    smtp_from_address: str = ""
    smtp_from_name: str = "Customer Support"
    autoreply_enabled: bool = True
    autoreply_sender_hourly_cap: int = 3
    autoreply_sender_daily_cap: int = 10
    autoreply_mailbox_hourly_cap: int = 200
    new_ticket_sender_limit: int = 0
    new_ticket_sender_window_minutes: int = 60
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    imap_processed_folder: str = ""
    imap_inbox: str = ""
    imap_mailboxes: str = ""
    imap_poll_seconds: int = 60
    imap_idle_seconds: int = 600
    imap_timeout_seconds: int = 30
    imap_max_message_bytes: int = 0
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    reopen_window_days: int = 14
    attachment_max_bytes: int = 20 * 1024 * 1024
    event_retention: int = 10_000
    session_cookie_secure: bool = False
    routing_rules_file: str = ""
    routing_capacity: str = "call=1,chat=3,ticket=10"
    routing_offer_timeouts: str = "call=20,chat=30,ticket=120"
    routing_wrap_up_seconds: str = "call=30,chat=0,ticket=0"
    routing_exclusive: str = "call:chat"
    routing_lapse_limit: int = 3
    routing_sticky_hours: int = 72
    routing_presence_grace_seconds: int = 60
    routing_decline_cooldown_seconds: int = 300
    # --- sla (contactcenter/sla) ---
    sla_entitled_priority: str = "high"
    sla_entitlement_queue: str = ""
    sla_on_warning: str = ""
    sla_on_breach: str = "raise_priority"
    sla_notify_emails: str = ""
    sla_email_on_breach: bool = True
    sla_contract_alert_days: str = "30,7,1"
    sla_allowance_alert_percent: int = 80
    sla_sweep_batch: int = 500
    # --- end sla ---
    # --- knowledge (contactcenter/knowledge) ---
    kb_index_dir: str = ""
    kb_review_required: bool = True
    kb_stale_days: int = 180
    kb_suggestion_limit: int = 5
    # --- end knowledge ---
    # --- sales (contactcenter/sales) ---
    sales_value_windows_days: str = "90,365"
    sales_tier_shares: str = "80,95"
    sales_ltv_retention_percent: int = 80
    sales_ltv_discount_percent: int = 10
    sales_offer_limit: int = 3
    sales_decline_cooldown_days: int = 30
    sales_renewal_before_days: int = 30
    sales_renewal_after_days: int = 60
    sales_exclude_open_complaint: bool = True
    sales_exclude_breached_sla: bool = True
    sales_complaint_keywords: str = "complaint,complain,refund"
    sales_complaint_priorities: str = "urgent"
    sales_prior_acceptance_percent: int = 10
    sales_renewal_prior_percent: int = 40
    sales_prior_strength: int = 20
    sales_renewal_margin_percent: int = 30
    sales_impression_reuse_minutes: int = 60
    sales_rule_min_support: str = "0.01"
    sales_rule_min_confidence: str = "0.1"
    sales_rule_min_lift: str = "1.2"
    sales_rule_min_count: int = 5
    sales_rule_max_proposed: int = 200
    # --- end sales ---
    # --- phone (contactcenter/channels/phone) ---
    twilio_api_base_url: str = ""
    twilio_api_timeout_seconds: int = 10
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    twilio_twiml_app_sid: str = ""
    twilio_caller_id: str = ""
    # Where a phone number written without its country code is (forms, agents' dialling,
    # identities added by hand, imported customers without a country): ISO 3166 alpha-2.
    phone_region: str = "US"
    twilio_sms_from: str = ""
    twilio_whatsapp_from: str = ""
    twilio_media_hosts: str = "api.twilio.com,media.twiliocdn.com,mms.twiliocdn.com"
    twilio_media_max_bytes: int = 5 * 1024 * 1024
    twilio_ivr_menu: str = ""
    twilio_voice_queue: str = ""
    twilio_business_hours: str = ""
    twilio_timezone: str = "UTC"
    twilio_hold_music_url: str = ""
    twilio_announce_seconds: int = 30
    twilio_max_wait_seconds: int = 900
    twilio_fast_track_tiers: str = "A"
    twilio_voicemail_max_seconds: int = 120
    twilio_agent_ring_seconds: int = 20
    twilio_record_calls: bool = False
    twilio_sms_max_chars: int = 1600
    twilio_sms_help_text: str = ""
    # --- end phone ---
    # --- chat and forms (contactcenter/channels/chat, forms) ---
    chat_allowed_origins: str = ""
    chat_identity_secret: str = ""
    chat_queue: str = "chat"
    chat_hours: str = ""
    chat_timezone: str = "UTC"
    chat_prechat_fields: str = "name,email,topic"
    chat_topics: str = "General,Billing,Technical"
    chat_inactivity_minutes: int = 15
    chat_inactivity_warning_minutes: int = 2
    chat_waiting_minutes: int = 10
    chat_messages_per_minute: int = 30
    chat_address_messages_per_minute: int = 600
    chat_connections_per_address: int = 100
    chat_upload_max_bytes: int = 5 * 1024 * 1024
    chat_uploads_per_hour: int = 20
    chat_upload_types: str = ("image/png,image/jpeg,image/gif,image/webp,application/pdf,"
                              "text/plain")
    forms_file: str = ""
    forms_posts_per_hour: int = 20
    forms_attachment_max_bytes: int = 10 * 1024 * 1024
    forms_attachment_types: str = ("image/png,image/jpeg,image/gif,image/webp,"
                                   "application/pdf,text/plain")
    forms_trusted_proxies: str = ""
    # --- end chat and forms ---
    # --- reports (contactcenter/reports) ---
    reports_service_level_percent: int = 80
    reports_service_level_targets: str = ""
    reports_sl_red_margin_percent: int = 10
    reports_wait_amber_seconds: int = 60
    reports_wait_red_seconds: int = 180
    reports_abandon_amber_percent: int = 5
    reports_abandon_red_percent: int = 10
    reports_risk_window_minutes: int = 60
    reports_contract_lapse_days: int = 14
    csat_enabled: bool = True
    csat_survey_valid_days: int = 14
    # --- end reports ---
    # --- field (contactcenter/field) ---
    field_onsite_commitments: str = "Enterprise=240,Premium=480,Standard=960"
    field_default_onsite_minutes: int = 0
    field_warning_minutes: int = 60
    field_slot_minutes: int = 120
    field_slot_count: int = 6
    field_offer_valid_days: int = 7
    field_survey_valid_days: int = 14
    field_photo_max_bytes: int = 5 * 1024 * 1024
    field_photo_types: str = "image/jpeg,image/png,image/webp"
    # --- end field ---
    # --- ops (contactcenter/ops) ---
    log_format: str = "text"
    metrics_enabled: bool = True
    metrics_allowed_ips: str = "127.0.0.1/32,::1/128"
    # --- end ops ---
    testing: bool = False
    demo: bool = False
    extra_warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        from contactcenter.customers.identity import phone_region

        try:
            region = phone_region(self.phone_region, "CONTACTCENTER_PHONE_REGION")
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        object.__setattr__(self, "phone_region", region)

    @property
    def effective_database_url(self) -> str:
        """Return the database URL, defaulting to SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'contactcenter.db').resolve()}"

    @property
    def scaled(self) -> bool:
        """Whether jobs and Socket.IO go through Redis."""
        return bool(self.redis_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; warn on unknown keys."""
        kwargs: dict[str, object] = {}
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra_warnings"}
        warnings: list[str] = []
        for key, raw in environ.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):].lower()
            spec = known.get(name)
            if spec is None:
                warnings.append(f"unknown setting {key} ignored")
                continue
            default = spec.default
            if isinstance(default, bool):
                kwargs[name] = parse_bool(key, raw)
            elif isinstance(default, int):
                kwargs[name] = parse_int(key, raw, minimum=0)
            elif isinstance(default, Path):
                kwargs[name] = Path(raw).expanduser()
            else:
                kwargs[name] = raw.strip()
        for message in warnings:
            log.warning(message)
        kwargs["extra_warnings"] = tuple(warnings)
        return cls(**kwargs)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: the configured one or one kept in the data folder.

    The embedded deployment generates a random key on first start and keeps it
    (mode 0600) so sessions survive restarts. The scaled deployment must set one
    explicitly: sharing a generated file between hosts is not a thing to rely on.
    """
    if settings.secret_key:
        if len(settings.secret_key) < 16:
            raise SettingsError("CONTACTCENTER_SECRET_KEY must be at least 16 characters")
        return settings
    if settings.scaled:
        raise SettingsError(
            "CONTACTCENTER_SECRET_KEY must be set when CONTACTCENTER_REDIS_URL is set: "
            "every web process must share the same key"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return settings.replace(secret_key=path.read_text().strip())


def default_settings() -> Settings:
    """Read settings from the real process environment (used by the CLI only)."""
    return Settings.from_env(os.environ)
