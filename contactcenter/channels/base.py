"""The one shape of every contact, the adapter protocol and the adapter registry.

Adapters are the only code that knows a provider. Each turns a provider payload
into a frozen ``InboundContact`` and sends ``OutboundMessage`` values; core code
asks the registry for the adapter of a channel kind and never branches on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from contactcenter.config import Settings


class ChannelError(Exception):
    """A provider payload that cannot be turned into a contact."""


class PermanentDeliveryError(ChannelError):
    """A send the provider refused for good (an SMTP 5xx, a message that cannot be built).

    The outbox marks the message failed at once, with this error's text (the
    provider's answer) for the agent to read, instead of retrying with backoff.
    """


class QuarantineError(ChannelError):
    """A payload kept but not processed: over a safety cap, or unparseable by design.

    Intake marks the raw row ``quarantined`` with the reason; it waits there for a
    person (or a fixed parser) to replay it, and is never retried automatically.
    """


@dataclass(frozen=True)
class Identity:
    """An address the sender is known by: kind is ``email``, ``phone``, ``chat`` or ``external``."""

    kind: str
    address: str
    name: str = ""


@dataclass(frozen=True)
class AttachmentRef:
    """A file that came with a contact; ``data`` holds its bytes until intake stores them.

    ``sha256`` set: the bytes are stored already, durably, under that digest in the data
    folder (by a parse worker, which then sends no bytes): ``data`` is empty and
    ``size`` is their length.
    """

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False
    sha256: str | None = None
    size: int | None = None

    @property
    def length(self) -> int:
        """The file's length in bytes, stored or not."""
        return self.size if self.sha256 is not None and self.size is not None else len(self.data)


@dataclass(frozen=True)
class ThreadHints:
    """What tells intake which ticket a contact belongs to, strongest first."""

    ticket_number: int | None = None
    reply_token: str | None = None
    in_reply_to: tuple[str, ...] = ()
    thread_on_open_ticket: bool = True
    # The sender address is not authenticated (e-mail's From): a ticket is joined only
    # with proof (a reply token minted for it, or the sender's own earlier message id),
    # else the contact opens a new ticket marked unverified (RELIABILITY ID-1).
    verify_sender: bool = False


@dataclass(frozen=True)
class DeliveryReport:
    """A report on a message we sent (a bounce, an RFC 3464 DSN, an automatic reply).

    ``original_ids`` are the external ids (Message-IDs) of the messages it reports on.
    ``kind`` is ``failed`` (not delivered), ``delayed`` (still being retried),
    ``delivered``, ``auto_reply`` (out of office), ``feedback`` (an abuse or spam
    report) or ``receipt`` (a read receipt); only ``failed`` is ``hard``.
    """

    original_ids: tuple[str, ...]
    recipients: tuple[str, ...] = ()
    status: str = ""
    diagnostic: str = ""
    hard: bool = True
    kind: str = "failed"


@dataclass(frozen=True)
class InboundContact:
    """One contact from any channel, normalised.

    ``external_id`` makes intake idempotent per channel (Message-ID, CallSid,
    MessageSid, chat message id, form submission id). ``sender`` is the
    provider-native identity; ``other_identities`` are further addresses the
    contact proves (a form's phone field, a signed chat identity).
    ``quoted_text`` is the history a reply quotes (kept, shown collapsed).
    ``auto_submitted`` marks machine-sent mail that must never get an automatic
    answer. A contact with a ``delivery_report`` opens no ticket: it marks the
    outbound message it reports on as failed. ``routed_live`` marks a contact its
    channel routes itself while the customer is still there (a ringing call, in the
    voice menu until it asks for an agent): intake files it in its inbox and queue
    but puts no "waiting for a reply" item in front of the router.
    """

    channel: str
    external_id: str
    sender: Identity
    subject: str = ""
    text: str = ""
    html: str = ""
    inbox_id: int | None = None
    recipient: str = ""
    thread: ThreadHints = field(default_factory=ThreadHints)
    attachments: tuple[AttachmentRef, ...] = ()
    other_identities: tuple[Identity, ...] = ()
    received_at: dt.datetime | None = None
    raw_id: int | None = None
    language: str | None = None
    quoted_text: str = ""
    auto_submitted: bool = False
    delivery_report: DeliveryReport | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    routed_live: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    """A reply on its way out, as the outbox hands it to an adapter.

    ``in_reply_to`` holds the id of the message answered (the customer's last one),
    ``references`` the earlier ids of the thread, oldest first. ``attachments`` are
    ``(filename, content_type, path or bytes)``. ``sender_name`` is the author's
    display name (empty for automatic messages); ``auto_submitted`` marks a message
    no person wrote (an acknowledgement), which must say so (RFC 3834).
    """

    message_id: int
    channel: str
    recipient: str
    subject: str
    text: str
    html: str
    external_id: str | None
    ticket_number: int
    reply_token: str
    in_reply_to: tuple[str, ...] = ()
    inbox_address: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[tuple[str, str, Path | bytes], ...] = ()
    language: str | None = None
    sender_name: str = ""
    auto_submitted: bool = False


@dataclass(frozen=True)
class SendResult:
    """What a provider answered to a send: its id for the message, if any."""

    provider_id: str | None = None


@runtime_checkable
class ChannelAdapter(Protocol):
    """What each channel provides to the core."""

    kind: str

    def enabled(self, settings: Settings) -> bool: ...

    def check(self, settings: Settings) -> str: ...

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact: ...

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult: ...


class ChannelRegistry:
    """Map channel kinds to adapters."""

    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}

    def register(self, adapter: ChannelAdapter) -> ChannelAdapter:
        """Register (or replace) the adapter of a kind."""
        self._adapters[adapter.kind] = adapter
        return adapter

    def get(self, kind: str) -> ChannelAdapter:
        """Return the adapter of a kind or raise ``ChannelError``."""
        try:
            return self._adapters[kind]
        except KeyError:
            raise ChannelError(f"no adapter registered for channel {kind!r}") from None

    def find(self, kind: str) -> ChannelAdapter | None:
        """Return the adapter of a kind, or None."""
        return self._adapters.get(kind)

    def kinds(self) -> list[str]:
        """Return every registered kind."""
        return sorted(self._adapters)

    def unregister(self, kind: str) -> None:
        """Remove an adapter (tests)."""
        self._adapters.pop(kind, None)


registry = ChannelRegistry()

AdapterFactory = Callable[[], ChannelAdapter]


def load_builtin_adapters() -> ChannelRegistry:
    """Register the adapters that ship with the product."""
    from contactcenter.channels import api as _api
    from contactcenter.channels.email import adapter as _email

    _api.register(registry)
    _email.register(registry)
    __import__("contactcenter.channels.chat.adapter", fromlist=["register"]).register(registry)
    __import__("contactcenter.channels.forms.adapter", fromlist=["register"]).register(registry)
    __import__("contactcenter.channels.phone.adapter", fromlist=["register"]).register(registry)
    return registry
