"""Parse raw RFC 5322 mail into a ``ParsedEmail``, and into the email channel's contact.

Provider fields read: the whole message. Headers: Message-ID (through
``receive.message_id_of``, so store and parse agree), From (falling back to Sender,
Return-Path, Reply-To), To, Cc, Reply-To, Delivered-To, X-Original-To, Subject, Date,
In-Reply-To, References, Content-Language, the automatic-mail headers of ``autosubmit``
and X-Failed-Recipients. Body: every MIME shape of ``mime_parts``, quoted history split
off by ``quoting``, bounces and reports read by ``dsn``. Example::

    InboundContact(channel="email", external_id="CAF=abc@mail.example.com",
                   sender=Identity("email", "anna@example.com", "Anna Petrova"),
                   subject="Re: Router down [#1042]", text="Still blinking.",
                   quoted_text="On Mon, 2 Mar 2026, Support wrote:\\n> Try a restart.",
                   thread=ThreadHints(ticket_number=1042, reply_token="9f2c4e1a0b3d5f67",
                                      in_reply_to=("msg-7.1042@help.example.com",),
                                      thread_on_open_ticket=True))

Nothing here raises for a malformed message: it is read best-effort, and what cannot
be read within the caps of ``EmailLimits`` raises ``QuarantineError`` (kept raw,
replayable) with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from html import escape

from contactcenter.channels.base import (
    AttachmentRef,
    DeliveryReport,
    Identity,
    InboundContact,
    QuarantineError,
    ThreadHints,
)
from contactcenter.channels.email.autosubmit import (
    auto_submitted_reason,
    first,
    is_vacation_reply,
)
from contactcenter.channels.email.dsn import ReportInput, find_delivery_report
from contactcenter.channels.email.mime_headers import (
    Mailbox,
    count_addresses,
    header_text,
    parse_addresses,
    parse_date,
    parse_message_ids,
    parse_params,
)
from contactcenter.channels.email.mime_html import count_links, html_to_text
from contactcenter.channels.email.mime_limits import DEFAULT_LIMITS, Budget, EmailLimits
from contactcenter.channels.email.mime_parts import Segment, Walker
from contactcenter.channels.email.quoting import split_quoted
from contactcenter.channels.email.receive import message_id_of
from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_email
from contactcenter.tickets.html import MAX_HTML_CHARS, sanitise_html

__all__ = ["DEFAULT_LIMITS", "EmailLimits", "ParsedEmail", "email_to_contact", "parse_email"]

log = logging.getLogger(__name__)

TICKET_TOKEN_RE = re.compile(r"\[#(\d{1,12})\]")
PLUS_TOKEN_RE = re.compile(r"\+t(\d{1,12})-([0-9a-fA-F]{16})@")
REPLY_SUBJECT_RE = re.compile(
    r"^\s*(?:\[[^\]]{0,60}\]\s*)?(?:re|aw|antw|antwort|ответ|отв|sv|vs|r|rif|odp|res|atb|"
    r"vá|απ|回复|答复|回覆|返信)\s*(?:\[\d{1,4}\]|\(\d{1,4}\))?\s*[:：]",
    re.IGNORECASE,
)
CHARSET_HINT_RE = re.compile(rb"charset\s*=\s*\"?([\w.:-]{1,40})", re.IGNORECASE)
LANGUAGE_RE = re.compile(r"^\s*([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]{1,8})*\s*(?:,|$)")
ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "delivered-to", "x-original-to",
                   "return-path")
THREAD_HEADERS = (b"references", b"in-reply-to")


@dataclass(frozen=True)
class ParsedEmail:
    """Everything the email channel reads from one message.

    ``text`` is the new text only; ``quoted_text`` the quoted history and signature
    (kept, shown collapsed); ``html`` is sanitised. ``from_address`` is empty when no
    From, Sender, Return-Path or Reply-To address is usable (``sender_source`` says which
    one was used). ``delivery_report`` is set for bounces, delay and delivery reports,
    vacation replies, feedback reports and read receipts.
    """

    message_id: str
    from_name: str
    from_address: str
    sender_source: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    delivered_to: tuple[str, ...]
    recipient: str
    subject: str
    date: dt.datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    quoted_text: str
    html: str
    attachments: tuple[AttachmentRef, ...]
    auto_submitted: bool
    auto_submitted_reason: str
    delivery_report: DeliveryReport | None
    ticket_number: int | None
    reply_token: str | None
    is_reply: bool
    language: str | None = None
    notes: tuple[str, ...] = field(default=())
    # Why the sender cannot be trusted to be who it says (RELIABILITY ID-3): "" when the
    # first From address was usable and the only From field.
    sender_doubt: str = ""

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To then References, without repeats, at most 50."""
        return tuple(dict.fromkeys(self.in_reply_to + self.references))[:50]


def parse_email(raw: bytes, limits: EmailLimits = DEFAULT_LIMITS) -> ParsedEmail:
    """Parse raw mail; raise ``QuarantineError`` with the reason beyond a cap or if unreadable."""
    budget = Budget(limits.time_budget_s)
    try:
        return _parse(raw, limits, budget)
    except QuarantineError:
        raise
    except RecursionError as exc:
        raise QuarantineError("MIME structure too deeply nested to parse") from exc
    except MemoryError:
        raise
    except Exception as exc:
        # The email package (or a codec) failed on input we did not foresee. The raw
        # mail is kept: quarantine it with the reason, and log the trace so a parser
        # bug gets fixed and the message replayed.
        log.exception("email parse failed")
        raise QuarantineError(f"unparseable message: {type(exc).__name__}: {exc}"[:500]) from exc


def email_to_contact(raw: bytes, *, inbox_id: int | None, raw_id: int | None) -> InboundContact:
    """Parse raw mail into the email channel's ``InboundContact``."""
    parsed = parse_email(raw)
    address, name = parsed.from_address, parsed.from_name
    if not address:
        if parsed.delivery_report is None:
            raise QuarantineError("no sender address")
        # A bounce from "MAILER-DAEMON <>": intake never looks the sender up for it.
        domain = parsed.message_id.rpartition("@")[2] if "@" in parsed.message_id else ""
        address = f"mailer-daemon@{domain}" if "." in domain else "mailer-daemon@unknown.invalid"
        name = name or "Mail Delivery System"
    metadata = {"to": list(parsed.to[:50]), "cc": list(parsed.cc[:50]),
                "reply_to": list(parsed.reply_to[:10]), "sender_source": parsed.sender_source,
                "date": parsed.date.isoformat() if parsed.date else None,
                "auto_submitted_reason": parsed.auto_submitted_reason,
                "notes": list(parsed.notes)}
    if parsed.sender_doubt:
        metadata["sender_doubt"] = parsed.sender_doubt
    if parsed.sender_source == "reply-to" or parsed.sender_doubt:
        # Identified by Reply-To alone, or From was ambiguous (two From fields: either may
        # be forged) or present but unusable and another header stood in for it: a new
        # ticket, never someone's existing one (RELIABILITY ID-1, ID-3).
        thread = ThreadHints(thread_on_open_ticket=False, verify_sender=True)
    else:
        thread = ThreadHints(ticket_number=parsed.ticket_number, reply_token=parsed.reply_token,
                             in_reply_to=parsed.thread_ids, thread_on_open_ticket=parsed.is_reply,
                             verify_sender=True)
    return InboundContact(
        channel="email", external_id=parsed.message_id,
        sender=Identity("email", address, name),
        subject=parsed.subject, text=parsed.text, html=parsed.html, inbox_id=inbox_id,
        recipient=parsed.recipient,
        thread=thread,
        attachments=parsed.attachments, raw_id=raw_id, language=parsed.language,
        quoted_text=parsed.quoted_text, auto_submitted=parsed.auto_submitted,
        delivery_report=parsed.delivery_report, metadata=metadata,
    )


def _header_end(raw: bytes) -> int:
    """Return where the header block ends (the blank line), scanning no further than it."""
    newline = raw.find(b"\n")
    likely, other = ((b"\n\r\n", b"\n\n") if newline > 0 and raw[newline - 1] == 13
                     else (b"\n\n", b"\n\r\n"))
    end = raw.find(likely)
    end = len(raw) if end < 0 else end
    earlier = raw.find(other, 0, end)
    return earlier if earlier >= 0 else end


def cap_header_block(raw: bytes, limits: EmailLimits) -> tuple[bytes, list[str]]:
    """Cut oversized header fields (harmless), then refuse a header block over the cap."""
    end = _header_end(raw)
    if end <= limits.max_field_bytes:
        return raw, []
    fields: list[bytes] = []
    for line in raw[:end].split(b"\n"):
        if fields and line[:1] in (b" ", b"\t"):
            if len(fields[-1]) <= limits.max_field_bytes * 2:
                fields[-1] += b"\n" + line
        else:
            fields.append(line)
    notes = []
    for index, value in enumerate(fields):
        if len(value) > limits.max_field_bytes:
            name = value.split(b":", 1)[0]
            notes.append(f"header {name[:40].decode('ascii', 'replace')} truncated "
                         f"({len(value)} bytes)")
            if name.strip().lower() in THREAD_HEADERS:
                fields[index] = name + b": " + value[-(limits.max_field_bytes - 100):]
            else:
                fields[index] = value[:limits.max_field_bytes]
    head = b"\n".join(fields)
    if len(head) > limits.max_header_bytes:
        raise QuarantineError(f"header block of {len(head)} bytes is over the "
                              f"{limits.max_header_bytes} byte cap")
    return head + raw[end:], notes


def _headers(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.strip().lower(), []).append(str(value))
    return headers


def _mailboxes(headers: dict[str, list[str]], name: str, limits: EmailLimits,
               hint: str | None) -> list[Mailbox]:
    boxes: list[Mailbox] = []
    for value in headers.get(name, ()):
        if count_addresses(value) > limits.max_addresses:
            raise QuarantineError(f"{name.title()} has more than {limits.max_addresses} addresses")
        boxes.extend(parse_addresses(value, hint))
    return boxes


def _usable(address: str) -> str:
    try:
        return normalise_email(address)
    except InvalidIdentityError:
        return ""


def _choose_sender(boxes: dict[str, list[Mailbox]]) -> tuple[str, str, str]:
    """Return (address, display name, header used): From, else Sender, Return-Path, Reply-To.

    Reply-To is a last resort for mail with no other address at all; such a contact is
    never threaded onto an existing ticket (see ``email_to_contact``), because anyone can
    set Reply-To to a victim's address (RELIABILITY ID-1).
    """
    for source in ("from", "sender", "return-path", "reply-to"):
        for box in boxes[source][:1] if source == "from" else boxes[source]:
            address = _usable(box.address)
            if address:
                return address, box.name, source
    name = boxes["from"][0].name if boxes["from"] else ""
    return "", name, ""


def _text_of(segment: Segment) -> str:
    if segment.text is not None:
        return segment.text
    return html_to_text(segment.html or "", mark_quotes=True)


@dataclass
class _Body:
    """The readable body: own text (before the quote split), forwarded text, HTML, files."""

    own_text: str
    forwarded: str
    html: str
    attachments: list[AttachmentRef]


def _body(segments: list[Segment], walker: Walker, limits: EmailLimits, notes: list[str]
          ) -> _Body:
    own_text = "\n\n".join(t for t in (_text_of(s) for s in segments if not s.forwarded)
                            if t.strip())
    if len(own_text) > limits.max_text_chars:
        notes.append(f"text truncated ({len(own_text)} characters)")
        own_text = own_text[:limits.max_text_chars] + "\n[text truncated: the full mail is kept]"
    attachments = list(walker.attachments)
    html = ""
    if any(s.html for s in segments):
        html = "\n".join(s.html if s.html is not None else f"<pre>{escape(s.text or '')}</pre>"
                         for s in segments)
    links = count_links(html) if html else 0
    if links >= limits.max_links or len(html) > MAX_HTML_CHARS:
        # Zammad's excessive-links rule (RELIABILITY.md 2.3, PARSE-5): a browser should not
        # render it; the original stays one click away.
        notes.append(f"HTML body ({len(html)} characters, {links} links) replaced by a notice")
        attachments.append(AttachmentRef("original-body.html", "text/html",
                                         html.encode("utf-8", "surrogateescape")))
        html = (f"<p>This message's HTML ({links} links) is too large to show; the original "
                "is attached as original-body.html.</p>")
    forwarded = "\n\n".join(s.text for s in segments if s.forwarded and s.text)
    return _Body(own_text, forwarded, sanitise_html(html), attachments)


def _parse(raw: bytes, limits: EmailLimits, budget: Budget) -> ParsedEmail:
    capped, notes = cap_header_block(raw, limits)
    if capped.count(b"oundary=") > limits.max_parts:
        # Checked before the standard library parses: its cost grows with the square of
        # the nesting of boundaries (each line is matched against every open one).
        raise QuarantineError(f"more than {limits.max_parts} multipart boundaries")
    message = BytesParser(policy=compat32).parsebytes(capped)
    headers = _headers(message)
    hint_match = CHARSET_HINT_RE.search(capped, 0, 65536)
    hint = hint_match.group(1).decode("ascii") if hint_match else None

    subject = " ".join(header_text(first_raw(headers, "subject"), hint).split())
    if len(subject) > limits.max_subject_chars:
        notes.append(f"subject truncated ({len(subject)} characters)")
        subject = subject[:limits.max_subject_chars]
    boxes = {name: _mailboxes(headers, name, limits, hint) for name in ADDRESS_HEADERS}
    doubt = ""
    if len(headers.get("from", ())) > 1:
        doubt = f"ambiguous sender: {len(headers['from'])} From fields"
        notes.append(doubt)
    address, name, source = _choose_sender(boxes)
    if not doubt and source and source != "from" and any(
            v.strip() for v in headers.get("from", ())):
        doubt = f"unusable From; identified by {source.title()}"
    raw_from = boxes["from"][0].address.lower() if boxes["from"] else ""
    null_return_path = "return-path" in headers and \
        first(headers, "return-path").strip("<> \t") == ""
    in_reply_to = tuple(parse_message_ids(first_raw(headers, "in-reply-to"),
                                          limits.max_thread_ids))
    references = tuple(parse_message_ids(first_raw(headers, "references"),
                                         limits.max_thread_ids))
    message_id = message_id_of(raw)

    walker = Walker(limits, budget, hint)
    segments: list[Segment] = []
    walker.walk(message, 0, segments)
    budget.check()
    body = _body(segments, walker, limits, notes)
    budget.check()
    new_text, quoted = split_quoted(body.own_text, subject)

    reason = auto_submitted_reason(headers, address or raw_from, null_return_path)
    to = tuple(b.address for b in boxes["to"])
    cc = tuple(b.address for b in boxes["cc"])
    delivered = tuple(b.address for b in boxes["delivered-to"] + boxes["x-original-to"])
    report_type = parse_params(first_raw(headers, "content-type"), hint)[1].get("report-type", "")
    report = find_delivery_report(ReportInput(
        report_type=report_type.lower(), report=walker.report, text=body.own_text,
        subject=subject, sender=raw_from,
        sender_name=boxes["from"][0].name if boxes["from"] else "",
        own_addresses=to + cc + delivered, own_message_id=message_id,
        null_return_path=null_return_path,
        failed_recipients=first(headers, "x-failed-recipients")[:2000],
        is_ses="x-amz-sns-message-id" in headers or raw_from.endswith("@sns.amazonaws.com"),
        vacation=is_vacation_reply(subject, reason),
        thread_ids=tuple(dict.fromkeys(in_reply_to + references)),
    ))
    if report is not None and not reason:
        reason = f"delivery report ({report.kind})"

    ticket_number, reply_token, recipient = _tokens(subject, to + cc + delivered)
    return ParsedEmail(
        message_id=message_id, from_name=name, from_address=address, sender_source=source,
        to=to, cc=cc, reply_to=tuple(b.address for b in boxes["reply-to"]),
        delivered_to=delivered,
        recipient=recipient or (delivered[0] if delivered else (to[0] if to else "")),
        subject=subject, date=parse_date(first_raw(headers, "date")),
        in_reply_to=in_reply_to, references=references,
        text="\n\n".join(t for t in (new_text, body.forwarded) if t), quoted_text=quoted,
        html=body.html, attachments=tuple(body.attachments),
        auto_submitted=bool(reason), auto_submitted_reason=reason, delivery_report=report,
        ticket_number=ticket_number, reply_token=reply_token,
        is_reply=bool(in_reply_to or references or REPLY_SUBJECT_RE.match(subject)),
        language=_language(first(headers, "content-language")), notes=tuple(notes),
        sender_doubt=doubt,
    )


def first_raw(headers: dict[str, list[str]], name: str) -> str:
    """Return the first raw value of a header, or ""."""
    values = headers.get(name)
    return values[0] if values else ""


def _tokens(subject: str, addresses: tuple[str, ...]) -> tuple[int | None, str | None, str]:
    """Return (ticket number, reply token, the address carrying it) from our tokens."""
    for address in addresses:
        match = PLUS_TOKEN_RE.search(address)
        if match:
            return int(match.group(1)), match.group(2).lower(), address
    match = TICKET_TOKEN_RE.search(subject)
    return (int(match.group(1)) if match else None), None, ""


def _language(value: str) -> str | None:
    match = LANGUAGE_RE.match(value)
    return match.group(1).lower() if match else None
