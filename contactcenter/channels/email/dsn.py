"""Turn bounces and other automatic reports into a ``DeliveryReport``.

Recognised: RFC 3464 delivery status notifications (``multipart/report`` with
``message/delivery-status``: Final-Recipient, Action, Status, Diagnostic-Code), the
common mail systems' own text bounces (qmail, Postfix, Exim, Sendmail, Exchange,
Yahoo, Gmail, "Undelivered Mail Returned to Sender", ...) recognised by a mail-system
sender plus a bounce subject or wording, Amazon SES notifications, ARF feedback reports
(RFC 5965), read receipts (RFC 8098) and vacation replies. The original message's
Message-ID comes from the attached ``message/rfc822`` or ``text/rfc822-headers`` part,
or from the returned headers quoted in the text. None of these opens a ticket; only a
``failed`` report marks the outbound message failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contactcenter.channels.base import DeliveryReport
from contactcenter.channels.email.autosubmit import is_robot_address
from contactcenter.channels.email.mime_decode import parse_field_blocks
from contactcenter.channels.email.mime_parts import ReportParts

SCAN_CHARS = 20_000
MAX_RECIPIENTS = 20
MAX_IDS = 10
BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (?:status )?failure|"
    r"returned mail|mail delivery failed|failure notice|delivery notification|"
    r"non remis|nicht zustellbar|unzustellbar|mail system error|returned to sender|"
    r"delivery has failed|could not be delivered|mail delivery system|delayed mail|"
    r"delivery delay|warning: could not send|недоставленное|не доставлено|"
    r"не может быть доставлено|mail failure|rejected:|delivery report|undeliverable",
    re.IGNORECASE,
)
BOUNCE_BODY_RE = re.compile(
    r"could not be delivered|was not delivered|wasn't able to deliver|unable to deliver|"
    r"delivery to the following recipients? (?:failed|was aborted)|permanent error|"
    r"error delivering your mail|not be delivered to|following address(?:es)? failed|"
    r"did not reach some or all|could not be reached|delivery has failed|"
    r"addresses had permanent fatal errors|message could not be delivered|"
    r"delivery status notification|returned to sender|"
    r"не может быть доставлено|не было доставлено|не удалось доставить",
    re.IGNORECASE,
)
DELAY_RE = re.compile(
    r"\bdelay(?:ed)?\b|will be retried|still being retried|warning message only|"
    r"not yet been delivered|will continue trying|verzögert|задерж",
    re.IGNORECASE,
)
ORIGINAL_MARK_RE = re.compile(
    r"^.{0,20}(?:copy of the (?:original )?message|original message (?:follows|headers)|"
    r"message headers follow|unsent message follows|header of the original message|"
    r"enclosed is a copy|below this line is a copy|returned message|original message:|"
    r"-{3,} ?original message)",
    re.IGNORECASE | re.MULTILINE,
)
MSGID_LINE_RE = re.compile(r"^[ \t>]*message-id:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]{1,450})>",
                           re.IGNORECASE | re.MULTILINE)
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
REPLY_STATUS_RE = re.compile(r"(?<!\d)([245]\d\d)[ -]['#]?([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)")
REPLY_CODE_RE = re.compile(r"(?:said|error|response|reason|reply|<<<|host \S+ \[[^\]]*\]):?"
                           r"\s{0,3}([45][0-5]\d)(?=[\s\-])", re.IGNORECASE)
ADDRESS_RE = re.compile(r"[A-Za-z0-9._%+=/'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")


@dataclass(frozen=True)
class ReportInput:
    """What ``find_delivery_report`` looks at, gathered by the parser."""

    report_type: str
    report: ReportParts
    text: str
    subject: str
    sender: str
    sender_name: str
    own_addresses: tuple[str, ...]
    own_message_id: str
    null_return_path: bool
    failed_recipients: str
    is_ses: bool
    vacation: bool
    thread_ids: tuple[str, ...]


def find_delivery_report(info: ReportInput) -> DeliveryReport | None:
    """Return the delivery report a message is, or None for ordinary mail."""
    if info.is_ses and info.text.lstrip().startswith("{"):
        report = _ses_report(info)
        if report is not None:
            return report
    types = info.report.types
    if info.report_type == "feedback-report" or "message/feedback-report" in types:
        return _feedback_report(info)
    if info.report_type == "disposition-notification" or \
            "message/disposition-notification" in types:
        return _receipt(info)
    if info.report_type == "delivery-status" or "message/delivery-status" in types \
            or "message/global-delivery-status" in types:
        return _dsn_report(info)
    if _looks_like_bounce(info):
        return _text_bounce(info)
    if info.vacation:
        return DeliveryReport(original_ids=info.thread_ids[:MAX_IDS], recipients=(info.sender,),
                              status="", diagnostic=f"automatic reply: {info.subject}"[:500],
                              hard=False, kind="auto_reply")
    return None


def _looks_like_bounce(info: ReportInput) -> bool:
    robot = not info.sender or is_robot_address(info.sender) or \
        "mail delivery" in info.sender_name.lower() or "mailer-daemon" in info.sender_name.lower()
    if not (robot or info.null_return_path):
        return False
    if BOUNCE_SUBJECT_RE.search(info.subject):
        return True
    head = info.text[:SCAN_CHARS]
    if robot and (BOUNCE_BODY_RE.search(head) or info.failed_recipients):
        return True
    return bool(info.null_return_path and BOUNCE_BODY_RE.search(head) and info.report.original_ids)


def _report_section(text: str) -> tuple[str, str]:
    """Split a bounce's text into the report and the returned original (if quoted)."""
    head = text[:SCAN_CHARS * 5]
    mark = ORIGINAL_MARK_RE.search(head)
    if mark is None:
        return head[:SCAN_CHARS], head
    return head[:mark.start()][:SCAN_CHARS], head[mark.start():]


def _original_ids(info: ReportInput, returned: str) -> tuple[str, ...]:
    ids = info.report.original_ids or info.report.nested_ids or MSGID_LINE_RE.findall(returned)
    if not ids:
        # Returned headers that landed among the delivery-status fields (a broken boundary).
        ids = [m.strip("<> ") for block in info.report.blocks for k, m in block
               if k.lower() == "message-id"]
    # A report never reports on itself (some anonymised samples reuse the original's id).
    return tuple(i for i in dict.fromkeys(ids) if i and i != info.own_message_id)[:MAX_IDS]


def _field(block: Sequence[tuple[str, str]], name: str) -> str:
    for key, value in block:
        if key.lower() == name:
            return value.strip()
    return ""


def _address(value: str) -> str:
    """Return the address of a recipient field (``rfc822; a@b`` -> ``a@b``)."""
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip()[:320]


def _status_of(status: str, diagnostic: str) -> str:
    """Return the status code; a generic one (5.0.0) yields to the diagnostic's own."""
    match = STATUS_RE.search(status)
    declared = ".".join(match.groups()) if match else ""
    if declared and not declared.endswith(".0.0"):
        return declared
    reply = REPLY_STATUS_RE.search(diagnostic)
    if reply:
        return reply.group(2)
    match = STATUS_RE.search(diagnostic)
    if match:
        return ".".join(match.groups())
    if declared:
        return declared
    code = REPLY_CODE_RE.search(diagnostic) or re.search(r"(?<!\d)([45][0-5]\d)(?!\d)",
                                                           diagnostic)
    return f"{code.group(1)[0]}.0.0" if code else ""


def _kind(actions: list[str], status: str, text: str) -> str:
    if "failed" in actions:
        return "failed"
    if "delayed" in actions:
        return "delayed"
    if actions and all(a in ("delivered", "relayed", "expanded") for a in actions):
        return "delivered"
    if status.startswith("2."):
        return "delivered"
    if status.startswith("4.") and DELAY_RE.search(text):
        return "delayed"
    return "failed"


def _dsn_report(info: ReportInput) -> DeliveryReport:
    blocks = [b for b in info.report.blocks if _field(b, "final-recipient")
              or _field(b, "original-recipient") or _field(b, "action")]
    if not blocks:
        blocks = [b for b in parse_field_blocks(info.text[:SCAN_CHARS])
                  if _field(b, "final-recipient") or _field(b, "action")]
    if not blocks:
        return _text_bounce(info)
    recipients, actions, statuses, diagnostics = [], [], [], []
    for block in blocks[:MAX_RECIPIENTS]:
        recipient = _address(_field(block, "final-recipient") or
                             _field(block, "original-recipient"))
        if recipient:
            recipients.append(recipient)
        actions.append(_field(block, "action").lower().split(" ", 1)[0])
        diagnostic = _field(block, "diagnostic-code")
        diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic[:12] else diagnostic
        statuses.append(_status_of(_field(block, "status"), diagnostic))
        if diagnostic:
            diagnostics.append(diagnostic)
    _, returned = _report_section(info.text)
    status = next((s for s in statuses if s), "")
    kind = _kind([a for a in actions if a], status, info.subject + "\n" + info.text[:2000])
    if not diagnostics:
        diagnostics = [_diagnostic_line(_report_section(info.text)[0], status)]
    return DeliveryReport(
        original_ids=_original_ids(info, returned),
        recipients=tuple(dict.fromkeys(recipients)),
        status=status or ("5.0.0" if kind == "failed" else ""),
        diagnostic=" ".join(diagnostics[0].split())[:500],
        hard=kind == "failed", kind=kind)


def _text_bounce(info: ReportInput) -> DeliveryReport:
    section, returned = _report_section(info.text)
    fields = [b for b in parse_field_blocks(section)
              if _field(b, "final-recipient") or _field(b, "status")]
    own = {a.lower() for a in info.own_addresses}
    recipients: list[str] = []
    for candidate in info.failed_recipients.split(","):
        if "@" in candidate:
            recipients.append(candidate.strip().strip("<>"))
    for block in fields:
        recipient = _address(_field(block, "final-recipient"))
        if recipient:
            recipients.append(recipient)
    ids = set(_original_ids(info, returned)) | set(MSGID_LINE_RE.findall(section))
    for candidate in ADDRESS_RE.findall(section):
        if candidate.lower() not in own and candidate not in ids \
                and not is_robot_address(candidate):
            recipients.append(candidate)
    reply = REPLY_STATUS_RE.search(section)
    status = reply.group(2) if reply else ""
    if not status and fields:
        status = next((_status_of(_field(b, "status"), "") for b in fields if _field(b, "status")),
                      "")
    if not status:
        status = _status_of("", section)
    actions = [_field(b, "action").lower() for b in fields if _field(b, "action")]
    kind = _kind(actions, status, info.subject + "\n" + section)
    if kind == "delivered" and not actions:
        kind = "failed"  # a stray 2.x.x in a bounce's text is not a delivery report
    return DeliveryReport(
        original_ids=_original_ids(info, returned),
        recipients=tuple(dict.fromkeys(r[:320] for r in recipients))[:MAX_RECIPIENTS],
        status=status or ("5.0.0" if kind == "failed" else "4.0.0"),
        diagnostic=_diagnostic_line(section, status),
        hard=kind == "failed", kind=kind)


def _diagnostic_line(section: str, status: str) -> str:
    lines = [line.strip() for line in section.split("\n") if line.strip()]
    for line in lines:
        if (status and status in line) or REPLY_CODE_RE.search(line):
            return line[:500]
    for line in lines:
        if BOUNCE_BODY_RE.search(line):
            return line[:500]
    return (lines[0] if lines else "")[:500]


def _feedback_report(info: ReportInput) -> DeliveryReport:
    block = info.report.blocks[0] if info.report.blocks else []
    recipients = [_address(v) for k, v in block if k.lower() == "original-rcpt-to"]
    feedback = _field(block, "feedback-type") or "abuse"
    _, returned = _report_section(info.text)
    return DeliveryReport(original_ids=_original_ids(info, returned),
                          recipients=tuple(r for r in recipients if r)[:MAX_RECIPIENTS],
                          status="", diagnostic=f"feedback report: {feedback}"[:500],
                          hard=False, kind="feedback")


def _receipt(info: ReportInput) -> DeliveryReport:
    block = info.report.blocks[0] if info.report.blocks else []
    original = _field(block, "original-message-id").strip("<> ")
    ids = ((original,) if original else ()) + info.thread_ids
    return DeliveryReport(original_ids=tuple(dict.fromkeys(ids))[:MAX_IDS],
                          recipients=(_address(_field(block, "final-recipient")) or info.sender,),
                          status="", diagnostic=_field(block, "disposition")[:500] or "receipt",
                          hard=False, kind="receipt")


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ses_report(info: ReportInput) -> DeliveryReport | None:
    try:
        data, _ = json.JSONDecoder().raw_decode(info.text.lstrip()[:SCAN_CHARS * 5])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind_name = str(data.get("notificationType") or data.get("eventType") or "")
    mail = _mapping(data.get("mail"))
    common = _mapping(mail.get("commonHeaders"))
    ses_id = str(mail.get("messageId") or "")
    ids = [str(common.get("messageId") or "").strip("<> "), ses_id,
           f"{ses_id}@email.amazonses.com" if ses_id else ""]
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            ids.append(str(header.get("value", "")).strip("<> "))
    original = tuple(i for i in dict.fromkeys(ids) if i)[:MAX_IDS]
    if kind_name == "Bounce":
        bounce = _mapping(data.get("bounce"))
        people = [r for r in bounce.get("bouncedRecipients") or [] if isinstance(r, dict)]
        permanent = bounce.get("bounceType") == "Permanent"
        return DeliveryReport(
            original_ids=original,
            recipients=tuple(str(r.get("emailAddress", "")) for r in people)[:MAX_RECIPIENTS],
            status=str(people[0].get("status", "")) if people else "",
            diagnostic=str(people[0].get("diagnosticCode", ""))[:500] if people else "",
            hard=permanent, kind="failed" if permanent else "delayed")
    if kind_name == "Complaint":
        return DeliveryReport(original_ids=original, status="", hard=False, kind="feedback",
                              diagnostic="feedback report: complaint")
    if kind_name == "Delivery":
        delivery = _mapping(data.get("delivery"))
        response = str(delivery.get("smtpResponse", ""))
        return DeliveryReport(
            original_ids=original,
            recipients=tuple(str(r) for r in delivery.get("recipients") or [])[:MAX_RECIPIENTS],
            status=_status_of(response, "") or "2.0.0", diagnostic=response[:500],
            hard=False, kind="delivered")
    return None
