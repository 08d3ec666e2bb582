"""Send a stored reply as one MIME message through the configured SMTP relay.

Fields written: ``From`` (the inbox address, with the agent's and company's
names), ``To`` (exactly one address), ``Reply-To`` (the inbox address with the
ticket's plus-token ``support+t1042-<token>@x``, where the token is an HMAC over the
ticket and this recipient's address, ``tickets.reply_token``: the inbound side
threads a reply only when it was minted for its sender), ``Subject`` (exactly one
``[#1042]``), our ``Message-ID`` (deterministic:
``<msg-{message id}.{ticket number}.{token}@{smtp_domain}>``, so a resend after a
crash carries the same id and the receiver can drop the duplicate), ``In-Reply-To``
and ``References`` (RFC 5322 section 3.6.4), a text/plain body with an HTML
alternative, attachments, and on automatic messages ``Auto-Submitted:
auto-replied`` (RFC 3834 section 5) and ``X-Auto-Response-Suppress: All``.

Every header value is checked: addresses and ids with CR, LF, NUL or anything
outside their grammar are refused before an SMTP command is sent; free text
(subject, names) is folded onto one line. The generated header block is parsed
back and must hold exactly the headers we set: Python before 3.11.10 / 3.12.5
decodes an encoded word carrying CR LF into a raw line break (CVE-2024-6923).
Stored HTML is sanitised again (nh3) before it goes out; text-only replies get
an escaped HTML rendering. Bodies use 7bit-safe transfer encodings, so the relay
needs no 8BITMIME (SMTPUTF8 is used only for a non-ASCII local part).

A 5xx answer to MAIL, RCPT or DATA raises ``RelayRejectedError`` (the outbox
fails the message at once, with the server's answer). A 4xx, a timeout, a relay
that is down or unconfigured, and a refused greeting or AUTH (the relay's setup,
not this message) raise ``RelayUnavailableError``: retried with backoff. Port
465 means implicit TLS (RFC 8314); STARTTLS and AUTH are optional settings, and
AUTH without TLS is refused unless the relay is on loopback.
"""

from __future__ import annotations

import email.policy
import html
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from pathlib import Path

from contactcenter.channels.base import (
    ChannelError,
    OutboundMessage,
    PermanentDeliveryError,
    SendResult,
)
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.tickets.attachments import safe_filename
from contactcenter.tickets.html import sanitise_html
from contactcenter.tickets.reply_token import (
    minted_message_id,
    reply_token_key,
    sign_reply_token,
)

MAX_SUBJECT_CHARS = 250
MAX_NAME_CHARS = 120
MAX_REFERENCES = 20
MAX_ADDRESS_CHARS = 254
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
SPACE_RE = re.compile(r"\s+")
# An addr-spec as we accept it: dot-atom local part (non-ASCII letters allowed, for
# SMTPUTF8) and a domain of dot-separated labels. Quoted local parts are refused.
ATOM = r"[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+"
ADDRESS_RE = re.compile(rf"{ATOM}(?:\.{ATOM})*@{ATOM}(?:\.{ATOM})*")
MSG_ID_RE = re.compile(r"[!-;=?-~]{1,250}@[!-;=?-~]{1,250}")  # printable, no < > or space
TOKEN_RE = re.compile(r"\[#(\d{1,18})\]")
REPLY_PREFIX_RE = re.compile(r"^(?:\s*(?:re|aw|ответ)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
CONTENT_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
LANGUAGE_RE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,3}")
REPLY_TOKEN_RE = re.compile(r"[A-Za-z0-9]{1,32}")
HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
SMTP_7BIT = email.policy.SMTP.clone(cte_type="7bit")


class OutboundError(ChannelError):
    """A reply that could not be sent now: it stays pending and is retried with backoff."""


class RelayUnavailableError(OutboundError):
    """No relay configured, the relay down or timing out, or a 4xx answer."""


class HeaderInjectionError(PermanentDeliveryError, ValueError):
    """A header value (address, id, name) that would break the message's structure."""


class RelayRejectedError(PermanentDeliveryError):
    """The relay answered 5xx: retrying cannot help. The text is the server's answer."""


def fold_text(value: str, limit: int) -> str:
    """Return free header text on one line: controls and runs of whitespace become a space."""
    value = SPACE_RE.sub(" ", CONTROL_RE.sub(" ", value or "")).strip()
    return value[:limit].rstrip()


def validate_address(value: str, what: str = "recipient") -> str:
    """Return the one bare address in ``value`` (``<a@b>`` allowed) or raise.

    Anything else is refused rather than repaired: CR, LF, NUL, several addresses,
    display names, comments, quoted local parts, more than 254 characters.
    """
    if CONTROL_RE.search(value or ""):
        raise HeaderInjectionError(f"{what} address contains control characters: {value!r:.80}")
    address = (value or "").strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, _, domain = address.rpartition("@")
    if (not ADDRESS_RE.fullmatch(address) or len(address) > MAX_ADDRESS_CHARS
            or len(local) > 64 or ".." in address):
        raise HeaderInjectionError(f"{what} is not exactly one address: {value!r:.80}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise HeaderInjectionError(f"{what} has an invalid domain: {domain!r:.80}") from exc
    return f"{local}@{ascii_domain.lower()}"


def reply_token_for(outbound: OutboundMessage, settings: Settings) -> str:
    """Return the reply token bound to this ticket and this recipient (RELIABILITY ID-1)."""
    if not REPLY_TOKEN_RE.fullmatch(outbound.reply_token or ""):
        raise HeaderInjectionError("the ticket's reply token is not alphanumeric")
    return sign_reply_token(reply_token_key(settings), outbound.ticket_number,
                            outbound.reply_token, validate_address(outbound.recipient))


def message_id_for(outbound: OutboundMessage, settings: Settings) -> str:
    """Return our Message-ID for a reply, without angle brackets (as inbound ids are stored).

    ``msg-{message id}.{ticket number}.{reply token}@{smtp_domain}``: deterministic
    (a resend carries the same id), and a reply's In-Reply-To proves, through the
    token, that its sender received this mail.
    """
    if outbound.external_id and MSG_ID_RE.fullmatch(outbound.external_id):
        return outbound.external_id
    domain = settings.smtp_domain.strip().lower()
    if not HOSTNAME_RE.fullmatch(domain):
        raise HeaderInjectionError(f"smtp_domain is not a domain name: {domain!r:.80}")
    return minted_message_id(outbound.message_id, outbound.ticket_number,
                             reply_token_for(outbound, settings), domain)


def from_address(outbound: OutboundMessage, settings: Settings) -> str:
    """Return the address we send from: the inbox's, the configured one, or support@domain."""
    return validate_address(outbound.inbox_address or settings.smtp_from_address
                            or f"support@{settings.smtp_domain}", "sender")


def reply_to_address(base: str, ticket_number: int, reply_token: str) -> str:
    """Return ``local+t{number}-{token}@domain`` for the inbox address ``base``."""
    if not REPLY_TOKEN_RE.fullmatch(reply_token or ""):
        raise HeaderInjectionError("the ticket's reply token is not alphanumeric")
    local, _, domain = base.rpartition("@")
    return f"{local.split('+', 1)[0]}+t{ticket_number}-{reply_token}@{domain}"


def subject_with_token(subject: str, ticket_number: int) -> str:
    """Return the subject on one line with exactly one ``[#number]`` token, at the end.

    Other ticket tokens are removed too (they would thread the customer's answer
    elsewhere), and a pile of ``Re: Re: AW:`` prefixes becomes one ``Re:``.
    """
    text = fold_text(subject, MAX_SUBJECT_CHARS * 2)
    text = SPACE_RE.sub(" ", TOKEN_RE.sub(" ", text)).strip()
    if REPLY_PREFIX_RE.match(text):
        text = "Re: " + REPLY_PREFIX_RE.sub("", text)
    token = f"[#{ticket_number}]"
    text = text[: MAX_SUBJECT_CHARS - len(token) - 1].rstrip()
    return f"{text} {token}" if text else token


def html_from_text(text: str) -> str:
    """Return simple, escaped HTML for a plain-text body: paragraphs and line breaks."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>"
                     for p in paragraphs if p.strip())


def _references(outbound: OutboundMessage) -> tuple[list[str], str | None]:
    """Return the References chain (valid ids only, capped) and the In-Reply-To id."""
    chain = [i.strip().strip("<>") for i in (*outbound.references, *outbound.in_reply_to)]
    chain = [i for i in dict.fromkeys(chain)
             if MSG_ID_RE.fullmatch(i) and not i.endswith("@generated")]
    parent = outbound.in_reply_to[-1].strip().strip("<>") if outbound.in_reply_to else None
    if parent not in chain:
        parent = None
    if len(chain) > MAX_REFERENCES:  # keep the thread's root and the newest ids
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1):]]
    return chain, parent


def _attach(msg: EmailMessage, outbound: OutboundMessage, limit: int) -> None:
    total = 0
    for index, (filename, content_type, source) in enumerate(outbound.attachments):
        try:
            data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        except OSError as exc:
            raise PermanentDeliveryError(f"attachment {filename!r} is missing: {exc}") from exc
        total += len(data)
        if total > limit:
            raise PermanentDeliveryError(f"attachments exceed {limit} bytes")
        ctype = (content_type or "").strip().lower()
        if not CONTENT_TYPE_RE.fullmatch(ctype) or ctype.split("/")[0] in ("multipart", "message"):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype,
                           filename=safe_filename(filename, f"attachment-{index + 1}"))


def _address(addr_spec: str, name: str = "") -> Address | str:
    """Return a header address; a non-ASCII local part (SMTPUTF8) goes bare, without a name.

    ``Address`` refuses non-ASCII local parts even under the SMTPUTF8 policy, while the
    header parser accepts the plain string (already validated by ``validate_address``).
    """
    if addr_spec.isascii():
        return Address(display_name=name, addr_spec=addr_spec)
    return addr_spec


def _set_text(msg: EmailMessage, name: str, value: object) -> None:
    """Set a header, then refold it while its parsed value still holds control characters.

    The header parser decodes RFC 2047 encoded words, so ``=?utf-8?q?a=0D=0ABcc:?=``
    becomes a real CR LF (CVE-2024-6923): fold the decoded text again (each pass
    strips one level of encoding) and give up after a few passes.
    """
    msg[name] = value
    for _ in range(3):
        current = str(msg[name])
        if not CONTROL_RE.search(current):
            return
        del msg[name]
        msg[name] = fold_text(current, MAX_SUBJECT_CHARS)
    if CONTROL_RE.search(str(msg[name])):
        raise HeaderInjectionError(f"{name} keeps decoding to control characters")


def _verify_headers(data: bytes, expected: list[str]) -> None:
    """Parse the generated header block back; refuse a message whose headers changed."""
    end = data.find(b"\r\n\r\n")
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(data[: end + 4])
    found = sorted(k.lower() for k in headers)
    if found != sorted(k.lower() for k in expected) or headers.defects:
        extra = sorted(set(found) - {k.lower() for k in expected}) or found
        raise HeaderInjectionError(f"generated headers do not match what was set: {extra}")


@dataclass(frozen=True)
class BuiltEmail:
    """A rendered message with its envelope."""

    message: EmailMessage
    data: bytes
    sender: str
    recipient: str
    utf8: bool


def build_email(outbound: OutboundMessage, settings: Settings) -> BuiltEmail:
    """Build and render the MIME message with its envelope sender and recipient.

    :raises HeaderInjectionError: an address, id or name that would break a header.
    :raises PermanentDeliveryError: attachments missing or over the size limit.
    """
    recipient = validate_address(outbound.recipient)
    sender = from_address(outbound, settings)
    message_id = message_id_for(outbound, settings)
    utf8 = not (recipient.isascii() and sender.isascii())
    # 7bit transfer encodings unless SMTPUTF8 is needed: no reliance on 8BITMIME.
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else SMTP_7BIT)
    company = fold_text(settings.smtp_from_name, MAX_NAME_CHARS)
    agent = fold_text(outbound.sender_name, MAX_NAME_CHARS)
    name = f"{agent} ({company})" if agent and company else agent or company
    chain, parent = _references(outbound)
    try:
        _set_text(msg, "From", _address(sender, name))
        msg["To"] = _address(recipient)
        msg["Reply-To"] = _address(reply_to_address(
            sender, outbound.ticket_number, reply_token_for(outbound, settings)))
        _set_text(msg, "Subject", subject_with_token(outbound.subject, outbound.ticket_number))
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = f"<{message_id}>"
        if parent:
            msg["In-Reply-To"] = f"<{parent}>"
        if chain:
            msg["References"] = " ".join(f"<{i}>" for i in chain)
        if outbound.auto_submitted:
            msg["Auto-Submitted"] = "auto-replied"
            msg["X-Auto-Response-Suppress"] = "All"
        text = (outbound.text or "").replace("\r\n", "\n").replace("\x00", "")
        body_html = sanitise_html(outbound.html) if outbound.html.strip() else html_from_text(text)
        msg.set_content(text or " ")
        msg.add_alternative(f"<!DOCTYPE html>\n<html><body>\n{body_html}\n</body></html>\n",
                            subtype="html")
        _attach(msg, outbound, settings.smtp_max_message_bytes)
        if outbound.language and LANGUAGE_RE.fullmatch(outbound.language):
            # After the body: set_content() moves Content-* fields into the first part.
            msg["Content-Language"] = outbound.language
        data = msg.as_bytes()
        _verify_headers(data, msg.keys())
    except (ValueError, TypeError) as exc:
        if isinstance(exc, HeaderInjectionError):
            raise
        raise HeaderInjectionError(f"cannot build the message: {exc}") from exc
    return BuiltEmail(msg, data, sender, recipient, utf8)


def _relay(settings: Settings) -> smtplib.SMTP:
    """Connect to the relay: EHLO, STARTTLS and AUTH as configured."""
    host = settings.smtp_relay_host.strip()
    if not host:
        raise RelayUnavailableError("no relay configured (CONTACTCENTER_SMTP_RELAY_HOST)")
    port, timeout = settings.smtp_relay_port, max(settings.smtp_relay_timeout_seconds, 1)
    tls = port == 465 or settings.smtp_relay_starttls
    if settings.smtp_relay_user and not tls and host not in LOOPBACK:
        raise RelayUnavailableError("refusing SMTP AUTH without TLS to a remote relay: "
                                    "set CONTACTCENTER_SMTP_RELAY_STARTTLS")
    local = settings.smtp_domain if HOSTNAME_RE.fullmatch(settings.smtp_domain) else None
    if port == 465:  # implicit TLS (RFC 8314)
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, local_hostname=local, timeout=timeout,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, local_hostname=local, timeout=timeout)
    try:
        smtp.ehlo()
        if settings.smtp_relay_starttls and port != 465:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_relay_user:
            smtp.login(settings.smtp_relay_user, settings.smtp_relay_password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _answer(code: int, text: bytes | str) -> str:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {fold_text(reply, 500)}"


def send_email(outbound: OutboundMessage, settings: Settings) -> SendResult:
    """Send one reply through the relay; return our Message-ID (no angle brackets).

    :raises HeaderInjectionError: refused before any SMTP command is sent.
    :raises RelayRejectedError: a 5xx answer to MAIL, RCPT or DATA (permanent).
    :raises RelayUnavailableError: unconfigured, unreachable, timeout, 4xx (retried).
    """
    built = build_email(outbound, settings)
    recipient = built.recipient
    try:
        smtp = _relay(settings)
        try:
            if built.utf8 and not smtp.has_extn("smtputf8"):
                raise RelayRejectedError("the address needs SMTPUTF8, which the relay lacks")
            smtp.sendmail(built.sender, [recipient], built.data,
                          mail_options=["SMTPUTF8", "BODY=8BITMIME"] if built.utf8 else [])
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        error = RelayRejectedError if code >= 500 else RelayUnavailableError
        raise error(f"{_answer(code, text)} (recipient {recipient})") from exc
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPConnectError,
            smtplib.SMTPHeloError) as exc:  # the relay's setup, not this message: retry
        raise RelayUnavailableError(_answer(exc.smtp_code, exc.smtp_error)) from exc
    except smtplib.SMTPResponseException as exc:
        error = RelayRejectedError if exc.smtp_code >= 500 else RelayUnavailableError
        raise error(_answer(exc.smtp_code, exc.smtp_error)) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise RelayUnavailableError(f"relay {settings.smtp_relay_host}:"
                                    f"{settings.smtp_relay_port}: {exc or type(exc).__name__}"
                                    ) from exc
    return SendResult(provider_id=message_id_for(outbound, settings))


def check_relay(settings: Settings) -> str:
    """Probe the relay (connect, EHLO, STARTTLS/AUTH as configured, NOOP); describe it."""
    if not settings.smtp_relay_host.strip():
        return "no relay configured"
    where = f"{settings.smtp_relay_host}:{settings.smtp_relay_port}"
    try:
        smtp = _relay(settings)
        try:
            code, _ = smtp.noop()
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except (smtplib.SMTPException, OSError, ChannelError) as exc:
        return f"error: relay {where}: {exc or type(exc).__name__}"
    return f"ok: relay {where} answered {code}"
