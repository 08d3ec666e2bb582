"""Read the IMAP mailboxes to poll from settings: one from the single-mailbox variables, more
from ``CONTACTCENTER_IMAP_MAILBOXES``.

``CONTACTCENTER_IMAP_MAILBOXES`` holds URLs separated by spaces, commas or newlines::

    imaps://help%40example.com:s3cret@mail.example.com/INBOX?inbox=help@example.com
    imap://test:test@127.0.0.1:10143/Support?processed=Done&idle=0&poll=30

or a JSON list of objects with ``MailboxConfig`` field names (and the URL option
names as aliases). ``imaps`` connects with TLS (port 993), ``imap`` in plain text
(port 143) unless ``starttls=1``. TLS certificates are verified unless
``tls_verify=0``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from contactcenter.config import Settings, SettingsError, parse_bool, parse_int

SETTING = "CONTACTCENTER_IMAP_MAILBOXES"

# Short option names of the URL form (and JSON) -> MailboxConfig fields.
ALIASES = {"processed": "processed_folder", "oversized": "oversized_folder", "poll": "poll_seconds", "timeout": "timeout_seconds",
           "max_bytes": "max_message_bytes", "batch": "batch_size", "cap": "run_cap",
           "backoff_max": "backoff_max_seconds", "backoff": "backoff_seconds"}


@dataclass(frozen=True)
class MailboxConfig:
    """One IMAP folder to poll, and how.

    ``key`` names the mailbox in the database (watermarks, health, skipped
    messages); set ``name`` to keep it stable when the host or user changes.
    ``max_message_bytes`` 0 means the settings' limit. ``batch_size`` UIDs are
    examined per FETCH of metadata; ``run_cap`` bounds one poll so that a huge
    backlog is taken in bounded runs.
    """

    host: str
    user: str
    password: str = field(default="", repr=False)
    port: int = 993
    ssl: bool = True
    starttls: bool = False
    tls_verify: bool = True
    folder: str = "INBOX"
    inbox: str = ""
    processed_folder: str = ""
    # Where mail over the size limit is moved (after its sender was told); "" leaves it.
    oversized_folder: str = ""
    idle: bool = True
    poll_seconds: float = 60.0
    idle_seconds: float = 600.0
    timeout_seconds: float = 30.0
    max_message_bytes: int = 0
    batch_size: int = 100
    run_cap: int = 500
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    name: str = ""

    @property
    def key(self) -> str:
        """Return the mailbox's stable name in the database."""
        return (self.name or f"{self.user}@{self.host}:{self.port}/{self.folder}")[:300]

    def replace(self, **changes: Any) -> MailboxConfig:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        return value if isinstance(value, bool) else parse_bool(name, str(value))
    if isinstance(default, int):
        return value if isinstance(value, int) else parse_int(name, str(value), minimum=0)
    if isinstance(default, float):
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{SETTING}: {name} must be a number, got {value!r}") from exc
        if number < 0:
            raise SettingsError(f"{SETTING}: {name} must not be negative")
        return number
    return str(value).strip()


def mailbox_from_fields(fields: dict[str, Any], defaults: MailboxConfig) -> MailboxConfig:
    """Build a mailbox from named values over defaults; unknown names are an error."""
    known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(MailboxConfig)}
    values: dict[str, Any] = {}
    for raw_name, value in fields.items():
        name = ALIASES.get(raw_name, raw_name)
        if name not in known:
            raise SettingsError(f"{SETTING}: unknown mailbox option {raw_name!r}")
        values[name] = _coerce(f"{SETTING} {raw_name}", value, known[name])
    if not values.get("host"):
        raise SettingsError(f"{SETTING}: a mailbox needs a host")
    if "port" not in values:
        values["port"] = 993 if values.get("ssl", defaults.ssl) else 143
    mailbox = defaults.replace(**values)
    if mailbox.ssl and mailbox.starttls:
        raise SettingsError(f"{SETTING}: starttls is for imap:// (plain) URLs, not imaps://")
    if mailbox.batch_size < 1 or mailbox.run_cap < 1:
        raise SettingsError(f"{SETTING}: batch and cap must be at least 1")
    return mailbox


def mailbox_from_url(url: str, defaults: MailboxConfig) -> MailboxConfig:
    """Parse ``imaps://user:password@host:port/folder?option=value``."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise SettingsError(f"{SETTING}: {parts.scheme!r} is not imap:// or imaps://")
    fields: dict[str, Any] = {"ssl": parts.scheme == "imaps",
                              "host": parts.hostname or "",
                              "user": unquote(parts.username or ""),
                              "password": unquote(parts.password or "")}
    try:
        if parts.port is not None:
            fields["port"] = parts.port
    except ValueError as exc:
        raise SettingsError(f"{SETTING}: bad port in {parts.hostname}") from exc
    folder = unquote(parts.path.lstrip("/"))
    if folder:
        fields["folder"] = folder
    fields.update(parse_qsl(parts.query, keep_blank_values=True))
    return mailbox_from_fields(fields, defaults)


def parse_mailboxes(raw: str, defaults: MailboxConfig) -> list[MailboxConfig]:
    """Parse the value of ``CONTACTCENTER_IMAP_MAILBOXES`` (URLs or a JSON list)."""
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{SETTING}: invalid JSON: {exc}") from exc
        if not all(isinstance(item, dict) for item in items):
            raise SettingsError(f"{SETTING}: the JSON form is a list of objects")
        return [mailbox_from_fields(item, defaults) for item in items]
    return [mailbox_from_url(url, defaults) for url in re.split(r"[\s,]+", raw) if url]


def mailboxes_from_settings(settings: Settings) -> list[MailboxConfig]:
    """Return every configured mailbox; keys must be distinct."""
    defaults = MailboxConfig(
        host="", user="", ssl=settings.imap_ssl, poll_seconds=float(settings.imap_poll_seconds),
        idle_seconds=float(settings.imap_idle_seconds),
        timeout_seconds=float(settings.imap_timeout_seconds),
        max_message_bytes=settings.imap_max_message_bytes,
    )
    mailboxes: list[MailboxConfig] = []
    if settings.imap_host:
        mailboxes.append(defaults.replace(
            host=settings.imap_host, port=settings.imap_port, user=settings.imap_user,
            password=settings.imap_password, folder=settings.imap_folder or "INBOX",
            processed_folder=settings.imap_processed_folder, inbox=settings.imap_inbox))
    mailboxes.extend(parse_mailboxes(settings.imap_mailboxes, defaults))
    keys = [m.key for m in mailboxes]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise SettingsError(f"IMAP mailbox configured twice: {', '.join(duplicated)}")
    return mailboxes
