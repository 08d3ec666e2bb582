"""The aiosmtpd session protocol with our guards: per-address caps, timeouts, clear replies.

``GuardedSMTP`` is aiosmtpd's ``SMTP`` protocol (one instance per connection) with:

- a cap on concurrent sessions per client address (an IPv4 address, or an IPv6 /64,
  since one host owns a whole /64): the connection over the cap is answered
  ``421 4.7.0`` and closed before the greeting work starts;
- a ``421 4.4.2`` line before aiosmtpd closes an idle or slow session, so that the
  client knows why (RFC 5321 §3.8 lets a server close with 421);
- RFC 3463 enhanced codes on aiosmtpd's fixed replies that matter to senders
  (552 5.3.4 for oversize mail, 500 5.5.2 for overlong lines);
- body lines up to ``MAX_LINE_OCTETS`` instead of aiosmtpd's 1001: RFC 5321
  §4.5.3.1.6 allows 998 octets, but real mail breaks it (three messages of the shared
  corpus have 1031-1187 octet lines, a GMX and an Amazon SES bounce among them), and
  refusing them would bounce a customer's mail for a formality. Postfix, too, accepts
  such lines. Commands keep their 512-octet limit (``500 5.5.2`` beyond it);
- an envelope that remembers the inbox each accepted recipient maps to.

It relies on aiosmtpd 1.4.6 internals (``_handle_client``, ``_timeout_cb``,
``_create_envelope``); the tests in ``tests/channels/email/test_smtp_abuse.py``
pin the behaviour so an aiosmtpd upgrade that changes them fails loudly.
"""

from __future__ import annotations

import ipaddress
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope

# aiosmtpd's own reply texts (1.4.6), with RFC 3463 codes and plain wording.
REPLIES = {
    "552 Error: message size exceeds fixed maximum message size":
        "552 5.3.4 Message size exceeds fixed maximum message size",
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long",
    "500 Command line too long": "500 5.5.2 Command line too long",
}
MAX_LINE_OCTETS = 64 * 1024  # also the stream reader's buffer step (two of it per session)
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
TIMED_OUT = b"421 4.4.2 Timeout exceeded, closing connection\r\n"


def address_key(peer: Any) -> str:
    """Return the key a client's connections are counted under: its IPv4 address or IPv6 /64."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RoutedEnvelope(Envelope):
    """An envelope that also keeps the inbox id of each accepted recipient, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox_ids: list[int] = []


class SessionTable:
    """The open sessions, counted per client address.

    Only touched from the server's event loop thread, so it needs no lock.
    """

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self.counts: dict[str, int] = {}
        self.open: set[GuardedSMTP] = set()

    def admit(self, protocol: GuardedSMTP, key: str) -> bool:
        """Count a new session; False when its address is already at the cap."""
        count = self.counts.get(key, 0)
        if self.per_address and count >= self.per_address:
            return False
        self.counts[key] = count + 1
        self.open.add(protocol)
        return True

    def release(self, protocol: GuardedSMTP, key: str) -> None:
        """Forget a session that ended."""
        self.open.discard(protocol)
        count = self.counts.get(key, 0) - 1
        if count > 0:
            self.counts[key] = count
        else:
            self.counts.pop(key, None)


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a per-address session cap and explicit replies."""

    line_length_limit = MAX_LINE_OCTETS

    def __init__(self, handler: Any, *, sessions: SessionTable, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions = sessions
        self._address_key: str | None = None
        self._refused = False

    def _create_envelope(self) -> Envelope:
        return RoutedEnvelope()

    def connection_made(self, transport: Any) -> None:
        # Called again on the same protocol after STARTTLS (with _original_transport
        # set): the session was counted on the first call only.
        if self._original_transport is None and self._address_key is None and not self._refused:
            key = address_key(transport.get_extra_info("peername"))
            if self._sessions.admit(self, key):
                self._address_key = key
            else:
                self._refused = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._address_key is not None:
            self._sessions.release(self, self._address_key)
            self._address_key = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refused:
            await self.push(TOO_MANY_CONNECTIONS)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def _timeout_cb(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(TIMED_OUT)  # type: ignore[attr-defined]
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(REPLIES.get(status, status))
        else:
            await super().push(status)

    def close(self) -> None:
        """Close the connection (server shutdown)."""
        if self.transport is not None:
            self.transport.close()
