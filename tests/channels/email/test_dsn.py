"""Bounces and other automatic reports become delivery reports (never tickets)."""

from __future__ import annotations

import json

from contactcenter.channels.email.parser import email_to_contact, parse_email

ORIGINAL = ("From: Support <support@help.example.com>\nTo: anna@example.com\n"
            "Subject: Re: Router down [#1042]\nMessage-ID: <out-42.1042@help.example.com>\n"
            "Date: Mon, 2 Mar 2026 10:00:00 +0000\n")


def dsn(action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <anna@example.com>: Recipient address rejected") -> bytes:
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: support@help.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-1@mx.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon, 2 Mar 2026 10:00:01 +0000

Final-Recipient: rfc822; anna@example.com
Original-Recipient: rfc822;anna@example.com
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}

--r
Content-Type: message/rfc822

{ORIGINAL}
Please restart the router.

--r--
""".encode()


def test_rfc3464_dsn_gives_recipient_status_diagnostic_and_original_id() -> None:
    contact = email_to_contact(dsn(), inbox_id=None, raw_id=None)
    report = contact.delivery_report
    assert report is not None
    assert report.original_ids == ("out-42.1042@help.example.com",)
    assert report.recipients == ("anna@example.com",)
    assert report.status == "5.1.1"
    assert report.diagnostic == "550 5.1.1 <anna@example.com>: Recipient address rejected"
    assert (report.kind, report.hard) == ("failed", True)
    assert contact.auto_submitted
    assert "Please restart the router." not in contact.text  # the original is not shown


def test_generic_dsn_status_yields_to_the_diagnostic_code() -> None:
    report = parse_email(dsn(status="5.0.0", diagnostic="smtp; 552-5.2.2 Mailbox full")
                         ).delivery_report
    assert report is not None and report.status == "5.2.2"


def test_delayed_and_delivered_dsns_are_not_failures() -> None:
    delayed = parse_email(dsn(action="delayed", status="4.4.7", diagnostic="")).delivery_report
    assert delayed is not None and (delayed.kind, delayed.hard) == ("delayed", False)
    delivered = parse_email(dsn(action="delivered", status="2.0.0", diagnostic="")).delivery_report
    assert delivered is not None and (delivered.kind, delivered.hard) == ("delivered", False)


QMAIL = f"""Return-Path: <>
From: MAILER-DAEMON@mx4.example.jp
To: support@help.example.com
Subject: failure notice
Message-ID: <q1@mx4.example.jp>

Hi. This is the qmail-send program at mx4.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<anna@example.com>:
192.0.2.32 does not like recipient.
Remote host said: 550 5.1.1 <anna@example.com>... User Unknown
Giving up on 192.0.2.32.

--- Below this line is a copy of the message.

{ORIGINAL}
Please restart the router.
"""


def test_text_bounce_without_dsn_part_is_read_from_its_wording() -> None:
    contact = email_to_contact(QMAIL.encode(), inbox_id=None, raw_id=None)
    report = contact.delivery_report
    assert report is not None
    assert report.original_ids == ("out-42.1042@help.example.com",)
    assert report.recipients == ("anna@example.com",)
    assert report.status == "5.1.1" and report.hard
    assert "User Unknown" in report.diagnostic


def test_bounce_from_a_null_sender_gets_a_placeholder_identity() -> None:
    raw = QMAIL.replace("From: MAILER-DAEMON@mx4.example.jp", "From: MAILER-DAEMON <>")
    contact = email_to_contact(raw.encode(), inbox_id=None, raw_id=None)
    assert contact.delivery_report is not None
    assert contact.sender.address == "mailer-daemon@mx4.example.jp"


def test_exim_bounce_uses_x_failed_recipients() -> None:
    raw = (f"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n"
           f"To: support@help.example.com\nX-Failed-Recipients: anna@example.com\n"
           f"Subject: Mail delivery failed: returning message to sender\n\n"
           f"This message was created automatically by mail delivery software.\n\n"
           f"A message that you sent could not be delivered to one or more of its\n"
           f"recipients. This is a permanent error. The following address(es) failed:\n\n"
           f"  anna@example.com\n    host mx.example.com [192.0.2.1]: 554 5.7.0 Header error\n\n"
           f"------ This is a copy of the message, including all the headers. ------\n\n"
           f"{ORIGINAL}\nbody\n").encode()
    report = parse_email(raw).delivery_report
    assert report is not None and report.recipients == ("anna@example.com",)
    assert (report.status, report.original_ids) == ("5.7.0", ("out-42.1042@help.example.com",))


def test_feedback_report_and_read_receipt_and_ses_notice() -> None:
    arf = f"""From: abuse@isp.example
To: support@help.example.com
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f"

--f
Content-Type: text/plain

This is an email abuse report.
--f
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: <anna@example.com>

--f
Content-Type: message/rfc822

{ORIGINAL}
hello
--f--
"""
    report = parse_email(arf.encode()).delivery_report
    assert report is not None
    assert (report.kind, report.hard, report.recipients) == ("feedback", False, ("anna@example.com",))
    assert report.original_ids == ("out-42.1042@help.example.com",)

    mdn = """From: Anna <anna@example.com>
To: support@help.example.com
Subject: Read: Router down
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="d"

--d
Content-Type: text/plain

Your message was read.
--d
Content-Type: message/disposition-notification

Final-Recipient: rfc822; anna@example.com
Original-Message-ID: <out-42.1042@help.example.com>
Disposition: manual-action/MDN-sent-manually; displayed

--d--
"""
    report = parse_email(mdn.encode()).delivery_report
    assert report is not None and (report.kind, report.hard) == ("receipt", False)
    assert report.original_ids == ("out-42.1042@help.example.com",)

    notice = {"notificationType": "Bounce",
              "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
                  {"emailAddress": "anna@example.com", "status": "5.1.1",
                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
              "mail": {"messageId": "0100abc",
                       "commonHeaders": {"messageId": "<out-42.1042@help.example.com>"}}}
    ses = ("From: no-reply@sns.amazonaws.com\nTo: support@help.example.com\n"
           "Subject: AWS Notification Message\nx-amz-sns-message-id: 1\n\n"
           + json.dumps(notice) + "\n--\nunsubscribe\n")
    report = parse_email(ses.encode()).delivery_report
    assert report is not None and report.hard and report.status == "5.1.1"
    assert report.original_ids[0] == "out-42.1042@help.example.com"


def test_spam_with_a_null_return_path_is_not_a_bounce() -> None:
    raw = (b"Return-Path: <>\nFrom: offers@shop.example\nTo: support@help.example.com\n"
           b"Subject: Cheap loans\n\nBest rates, apply today.\n")
    parsed = parse_email(raw)
    assert parsed.delivery_report is None
    assert parsed.auto_submitted and parsed.from_address == "offers@shop.example"
