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
    # --- end sla ---
    # --- knowledge (contactcenter/knowledge) ---
    # --- end knowledge ---
    # --- sales (contactcenter/sales) ---
    # --- end sales ---
    # --- phone (contactcenter/channels/phone) ---
    # --- end phone ---
    # --- chat and forms (contactcenter/channels/chat, forms) ---
    # --- end chat and forms ---
    # --- reports (contactcenter/reports) ---
    # --- end reports ---
    testing: bool = False
    demo: bool = False
    extra_warnings: tuple[str, ...] = field(default=(), compare=False)

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
