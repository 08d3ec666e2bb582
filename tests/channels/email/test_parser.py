"""Golden tests of the email parser on hand-made edge cases (structure, text, threading)."""

from __future__ import annotations

import base64

import pytest

from contactcenter.channels.email.parser import email_to_contact, parse_email
from contactcenter.channels.email.receive import message_id_of


def mail(headers: str, body: str | bytes = "Hello.\n", *, crlf: bool = False) -> bytes:
    """Build raw mail from a header block (one field per line) and a body."""
    head = headers.strip("\n") + "\n\n"
    raw = head.encode("utf-8") + (body if isinstance(body, bytes) else body.encode("utf-8"))
    return raw.replace(b"\n", b"\r\n") if crlf else raw


BASIC = """From: Anna Petrova <anna@example.com>
To: support@help.example.com
Subject: Router down
Date: Mon, 2 Mar 2026 10:00:00 +0000
Message-ID: <m1@example.com>"""


def test_plain_mail_gives_sender_subject_text_and_message_id() -> None:
    parsed = parse_email(mail(BASIC, "It blinks red.\n"))
    assert (parsed.from_address, parsed.from_name) == ("anna@example.com", "Anna Petrova")
    assert parsed.subject == "Router down"
    assert parsed.text == "It blinks red."
    assert parsed.quoted_text == ""
    assert parsed.message_id == "m1@example.com"
    assert parsed.date is not None and parsed.date.year == 2026
    assert parsed.to == ("support@help.example.com",)
    assert not parsed.auto_submitted and parsed.delivery_report is None


def test_reply_separates_new_text_from_quote_and_signature() -> None:
    body = ("Thanks, the restart fixed it.\n\n-- \nAnna Petrova\nACME Ltd\n\n"
            "On Mon, 2 Mar 2026 at 10:00, Support <support@help.example.com> wrote:\n"
            "> Please restart the router.\n> Regards\n")
    parsed = parse_email(mail(BASIC.replace("Router down", "Re: Router down") +
                              "\nIn-Reply-To: <out-7@help.example.com>", body, crlf=True))
    assert parsed.text == "Thanks, the restart fixed it."
    assert parsed.quoted_text.startswith("-- \nAnna Petrova")
    assert "> Please restart the router." in parsed.quoted_text
    assert parsed.is_reply


@pytest.mark.parametrize("body, new, quoted_start", [
    ("Спасибо, работает.\n\n2 марта 2026 г., в 10:00, Support <s@x.com> написал(а):\n> Перезагрузите",
     "Спасибо, работает.", "2 марта 2026 г."),
    ("Danke!\n\nAm 02.03.2026 um 10:00 schrieb Support <s@x.com>:\n> Bitte neu starten",
     "Danke!", "Am 02.03.2026"),
    ("Done.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nSubject: x\n\nold",
     "Done.", "-----Original Message-----"),
    (("Done.\n________________________________\nFrom: Support <s@x.com>\nSent: Monday, March 2\n"
      "To: Anna\nSubject: Router\n\nold text"), "Done.", "________"),
    ("Ok\n\nVon: Support <s@x.com>\nGesendet: Montag\nAn: Anna\nBetreff: Router\n\nalt",
     "Ok", "Von:"),
    ("Yes.\n\nOn Mon, 2 Mar 2026 at 10:00, Support Team <\nsupport@help.example.com> wrote:\n> x",
     "Yes.", "On Mon, 2 Mar 2026"),
])
def test_quoted_history_in_many_clients_is_split_off(body: str, new: str,
                                                      quoted_start: str) -> None:
    parsed = parse_email(mail(BASIC, body))
    assert parsed.text == new
    assert parsed.quoted_text.startswith(quoted_start)


def test_interleaved_reply_keeps_its_quotes_and_all_quote_mail_keeps_everything() -> None:
    inline = "> Is it red?\nYes, red.\n> Since when?\nSince Monday.\n"
    parsed = parse_email(mail(BASIC, inline))
    assert parsed.text == inline.strip() and parsed.quoted_text == ""
    only_quote = "On Mon, Support wrote:\n> only the quote\n"
    parsed = parse_email(mail(BASIC, only_quote))
    assert parsed.text == only_quote.strip() and parsed.quoted_text == ""


def test_forwarded_mail_is_not_split() -> None:
    body = "FYI\n-- \nAnna\n\n---------- Forwarded message ---------\nFrom: x@y.com\n\nThe invoice."
    parsed = parse_email(mail(BASIC.replace("Router down", "Fwd: invoice"), body))
    assert "The invoice." in parsed.text and parsed.quoted_text == ""


def test_in_reply_to_and_references_are_stripped_ordered_and_capped() -> None:
    refs = " ".join(f"<r{i}@x.example>" for i in range(80))
    parsed = parse_email(mail(BASIC + f"\nIn-Reply-To: <r79@x.example>\nReferences: {refs}"))
    assert parsed.in_reply_to == ("r79@x.example",)
    assert len(parsed.thread_ids) == 50
    assert parsed.thread_ids[0] == "r79@x.example"
    assert parsed.thread_ids[1] == "r0@x.example"  # the thread's root survives the cap
    assert parsed.thread_ids[-1] == "r78@x.example"
    contact = email_to_contact(mail(BASIC + f"\nReferences: {refs}"), inbox_id=None, raw_id=None)
    assert contact.thread.thread_on_open_ticket
    assert contact.thread.in_reply_to[-1] == "r79@x.example"


@pytest.mark.parametrize("subject, is_reply", [
    ("Router down", False), ("Re: Router down", True), ("AW: Router", True),
    ("Ответ: роутер", True), ("RE[2]: Router", True), ("[EXT] Re: Router", True),
    ("Fwd: Router", False), ("Regarding the router", False), ("Re router", False),
])
def test_only_replies_thread_onto_an_open_ticket(subject: str, is_reply: bool) -> None:
    contact = email_to_contact(mail(BASIC.replace("Router down", subject)), inbox_id=3, raw_id=9)
    assert contact.thread.thread_on_open_ticket is is_reply
    assert (contact.inbox_id, contact.raw_id) == (3, 9)


def test_subject_token_and_plus_address_token_give_thread_hints() -> None:
    contact = email_to_contact(mail(BASIC.replace("Router down", "Re: Router down [#1234]")),
                               inbox_id=None, raw_id=None)
    assert (contact.thread.ticket_number, contact.thread.reply_token) == (1234, None)
    headers = BASIC.replace("To: support@help.example.com",
                            "To: Support <support+t1042-9f2c4e1a0b3d5f67@help.example.com>")
    contact = email_to_contact(mail(headers), inbox_id=None, raw_id=None)
    assert contact.thread.ticket_number == 1042
    assert contact.thread.reply_token == "9f2c4e1a0b3d5f67"
    assert contact.recipient == "support+t1042-9f2c4e1a0b3d5f67@help.example.com"
    for header in ("Cc", "Delivered-To", "X-Original-To"):
        contact = email_to_contact(mail(BASIC + f"\n{header}: support+t7-00112233445566aa@h.example"),
                                   inbox_id=None, raw_id=None)
        assert (contact.thread.ticket_number, contact.thread.reply_token) == (7, "00112233445566aa")


def test_koi8r_and_cp1251_bodies_decode_with_and_without_a_correct_charset() -> None:
    text = "Здравствуйте! Роутер не работает, помогите пожалуйста."
    for actual in ("koi8-r", "windows-1251"):
        for declared in (actual, None, "us-ascii", "utf-8", "x-unknown",
                         "koi8-r" if actual == "windows-1251" else "windows-1251"):
            ctype = "text/plain" + (f"; charset={declared}" if declared else "")
            raw = mail(BASIC + f"\nContent-Type: {ctype}\nContent-Transfer-Encoding: 8bit",
                       text.encode(actual))
            assert parse_email(raw).text == text, (actual, declared)


def test_raw_8bit_headers_are_decoded_by_detection() -> None:
    for charset in ("koi8-r", "windows-1251", "utf-8"):
        head = ("From: Иван Петров <ivan@example.ru>\nTo: support@help.example.com\n"
                "Subject: Не работает интернет\nMessage-ID: <8bit@example.ru>\n"
                f"Content-Type: text/plain; charset={charset}\n").encode(charset)
        parsed = parse_email(head + b"\n" + "Помогите".encode(charset))
        assert parsed.subject == "Не работает интернет", charset
        assert parsed.from_name == "Иван Петров"
        assert parsed.text == "Помогите"


def test_encoded_words_including_broken_ones() -> None:
    headers = BASIC.replace(
        "Subject: Router down",
        "Subject: =?utf-8?B?0J/RgNC4?= =?utf-8?B?0LLQtdGC?= =?koi8-r?Q?=F0=D2=C9=D7=C5=D4?="
        " plain =?bogus-charset?Q?caf=C3=A9?= =?utf-8?B?0JTQsA?=")
    # Whitespace between two encoded words is not text (RFC 2047 section 6.2).
    assert parse_email(mail(headers)).subject == "ПриветПривет plain caféДа"
    headers = BASIC.replace("From: Anna Petrova <anna@example.com>",
                            'From: "=?utf-8?Q?Petrova=2C_Anna_=22AP=22?=" <anna@example.com>')
    assert parse_email(mail(headers)).from_name == 'Petrova, Anna "AP"'


@pytest.mark.parametrize("from_header, address, name", [
    ('"Petrova, Anna" <anna@example.com>', "anna@example.com", "Petrova, Anna"),
    ("Petrova, Anna <anna@example.com>", "anna@example.com", "Petrova, Anna"),
    ("anna@example.com (Anna Petrova)", "anna@example.com", "Anna Petrova"),
    ('"Anna \\"AP\\" Petrova" <Anna@Example.COM>', "anna@example.com", 'Anna "AP" Petrova'),
    ("Bob | ACME [example.com] <bob@example.com>", "bob@example.com", "Bob | ACME [example.com]"),
    ("boss@example.com <attacker@evil.example>", "attacker@evil.example", ""),
    ('"support@help.example.com" <attacker@evil.example>', "attacker@evil.example", ""),
])
def test_from_is_parsed_robustly(from_header: str, address: str, name: str) -> None:
    parsed = parse_email(mail(BASIC.replace("Anna Petrova <anna@example.com>", from_header)))
    assert (parsed.from_address, parsed.from_name) == (address, name)


def test_sender_falls_back_to_sender_return_path_then_reply_to() -> None:
    no_from = BASIC.replace("From: Anna Petrova <anna@example.com>\n", "")
    for extra, expected, source in (
        ("Sender: sec@example.com\nReply-To: r@example.com", "sec@example.com", "sender"),
        ("Return-Path: <bounce@example.com>\nReply-To: r@example.com", "bounce@example.com",
         "return-path"),
        ("Return-Path: <>\nReply-To: Rita <r@example.com>", "r@example.com", "reply-to"),
    ):
        parsed = parse_email(mail(no_from + "\n" + extra))
        assert (parsed.from_address, parsed.sender_source) == (expected, source)
    unusable = BASIC.replace("Anna Petrova <anna@example.com>", '"=?GB2312?B?ztI=?=" <>')
    parsed = parse_email(mail(unusable + "\nReply-To: <vip@example.com>"))
    assert parsed.from_address == "vip@example.com"


def test_mail_without_any_sender_is_quarantined() -> None:
    from contactcenter.channels.base import QuarantineError

    raw = mail(BASIC.replace("From: Anna Petrova <anna@example.com>", "From: Anna Petrova"))
    assert parse_email(raw).from_address == ""
    with pytest.raises(QuarantineError, match="no sender address"):
        email_to_contact(raw, inbox_id=None, raw_id=None)


def test_missing_message_id_gets_the_deterministic_md5_id_used_by_store() -> None:
    raw = mail("From: anna@example.com\nTo: support@help.example.com\nSubject: no id, no date")
    contact = email_to_contact(raw, inbox_id=None, raw_id=None)
    assert contact.external_id.startswith("md5-") and contact.external_id.endswith("@generated")
    assert contact.external_id == message_id_of(raw) == parse_email(raw).message_id
    assert email_to_contact(raw, inbox_id=None, raw_id=None).external_id == contact.external_id
    assert parse_email(raw).date is None
    other = email_to_contact(raw + b"x", inbox_id=None, raw_id=None)
    assert other.external_id != contact.external_id


def test_alternative_prefers_plain_for_text_and_keeps_html() -> None:
    raw = mail(BASIC + '\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"',
               "--b\nContent-Type: text/plain; charset=utf-8\n\nPlain version\n"
               "--b\nContent-Type: text/html; charset=utf-8\n\n<p><b>HTML</b> version</p>\n--b--\n")
    parsed = parse_email(raw)
    assert parsed.text == "Plain version"
    assert parsed.html == "<p><b>HTML</b> version</p>"


def test_html_only_mail_gets_a_readable_text_and_gmail_quote_is_split() -> None:
    html = ("<html><head><style>p{color:red}</style><title>t</title></head><body>"
            "<p>Hello&nbsp;team,</p><p>the router <b>still</b> blinks &amp; beeps.</p>"
            "<ul><li>model X1</li><li>firmware 2.3</li></ul>"
            '<div class="gmail_quote"><div class="gmail_attr">On Mon, Support wrote:</div>'
            '<blockquote class="gmail_quote">Please restart it.</blockquote></div></body></html>')
    raw = mail(BASIC + "\nContent-Type: text/html; charset=utf-8", html)
    parsed = parse_email(raw)
    assert parsed.text == "Hello team,\n\nthe router still blinks & beeps.\n\n- model X1\n- firmware 2.3"
    assert parsed.quoted_text == "On Mon, Support wrote:\n\n> Please restart it."
    assert "Please restart it." in parsed.html  # the HTML is kept whole, sanitised


def test_inline_image_by_content_id_is_an_inline_attachment() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    raw = mail(BASIC + '\nMIME-Version: 1.0\nContent-Type: multipart/related; boundary="r"',
               '--r\nContent-Type: text/html; charset=utf-8\n\n<p>See <img src="cid:logo@x"></p>\n'
               "--r\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n"
               + base64.b64encode(png).decode() + "\n--r--\n")
    parsed = parse_email(raw)
    [image] = parsed.attachments
    assert (image.inline, image.content_id, image.content_type, image.data) == (
        True, "logo@x", "image/png", png)
    assert image.filename == "image-1.png"
    assert parsed.text == "See"


def test_rfc2231_and_rfc2047_file_names_are_decoded() -> None:
    raw = mail(BASIC + '\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nsee attached\n"
               "--m\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n"
               " filename*0*=utf-8''%D1%81%D1%87%D1%91%D1%82;\n filename*1=\"_2026.pdf\"\n"
               "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(b"%PDF-1.4 x").decode() +
               "\n--m\nContent-Type: application/octet-stream;\n"
               ' name="=?utf-8?B?0L/RgNCw0LnRgS5kb2N4?="\n\nPK\x03\x04rest\n--m--\n')
    first, second = parse_email(raw).attachments
    assert (first.filename, first.content_type, first.data) == ("счёт_2026.pdf", "application/pdf",
                                                               b"%PDF-1.4 x")
    assert second.filename == "прайс.docx"
    assert second.content_type.endswith("wordprocessingml.document")


def test_nested_rfc822_is_kept_as_eml_and_shown_as_forwarded_text() -> None:
    inner = ("From: Boss <boss@example.com>\nTo: anna@example.com\nSubject: Invoice 42\n"
             "Message-ID: <inner@example.com>\n\nPlease pay invoice 42.\n")
    raw = mail(BASIC + '\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nSee below.\n-- \nAnna\n"
               "--m\nContent-Type: message/rfc822\n\n" + inner + "--m--\n")
    parsed = parse_email(raw)
    assert parsed.text.startswith("See below.")
    assert "---------- Forwarded message ----------" in parsed.text
    assert "From: Boss <boss@example.com>" in parsed.text
    assert "Please pay invoice 42." in parsed.text
    assert parsed.quoted_text == "-- \nAnna"
    [eml] = parsed.attachments
    assert (eml.filename, eml.content_type) == ("Invoice 42.eml", "message/rfc822")
    assert b"Please pay invoice 42." in eml.data and b"Message-ID: <inner@example.com>" in eml.data
    assert parsed.delivery_report is None


def test_signed_mail_keeps_content_and_drops_the_detached_signature() -> None:
    raw = mail(BASIC + '\nMIME-Version: 1.0\nContent-Type: multipart/signed; '
               'protocol="application/pgp-signature"; boundary="s"',
               "--s\nContent-Type: text/plain\n\nSigned text.\n"
               "--s\nContent-Type: application/pgp-signature; name=signature.asc\n\n"
               "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n--s--\n")
    parsed = parse_email(raw)
    assert parsed.text == "Signed text." and parsed.attachments == ()


def test_attachment_types_come_from_bytes_and_names_when_declared_generically() -> None:
    parts = [("application/octet-stream", "scan", b"%PDF-1.7 ..."),
             ("application/others", "photo.jpg", b"\xff\xd8\xff\xe0JFIF"),
             ("image/png", "cat.png", b"<!DOCTYPE html><script>alert(1)</script>"),
             ("", "notes.txt", b"plain notes"),
             ("image/jpg", "a.jpg", b"\xff\xd8\xff\xe1")]
    body = ""
    for ctype, name, data in parts:
        header = f"Content-Type: {ctype}\n" if ctype else ""
        body += (f"--m\n{header}Content-Disposition: attachment; filename={name}\n"
                 f"Content-Transfer-Encoding: base64\n\n{base64.b64encode(data).decode()}\n")
    raw = mail(BASIC + '\nContent-Type: multipart/mixed; boundary="m"', body + "--m--\n")
    types = [a.content_type for a in parse_email(raw).attachments]
    assert types == ["application/pdf", "image/jpeg", "text/html", "text/plain", "image/jpeg"]


def test_inline_uuencoded_file_in_a_text_body_becomes_an_attachment() -> None:
    body = "Report attached.\n\nbegin 644 report.csv\n#86)C\n`\nend\n\nBye\n"
    parsed = parse_email(mail(BASIC, body))
    [report] = parsed.attachments
    assert (report.filename, report.data) == ("report.csv", b"abc")
    assert "begin 644" not in parsed.text and "[attachment: report.csv]" in parsed.text


def test_email_to_contact_maps_every_field() -> None:
    raw = mail(BASIC + "\nCc: Boris <boris@example.com>\nContent-Language: ru-RU\n"
               "In-Reply-To: <out-1@help.example.com>\nAuto-Submitted: auto-generated")
    contact = email_to_contact(raw, inbox_id=5, raw_id=11)
    assert contact.channel == "email"
    assert contact.external_id == "m1@example.com" == message_id_of(raw)
    assert (contact.sender.kind, contact.sender.address, contact.sender.name) == (
        "email", "anna@example.com", "Anna Petrova")
    assert contact.thread.in_reply_to == ("out-1@help.example.com",)
    assert contact.auto_submitted and contact.delivery_report is None
    assert contact.language == "ru"
    assert contact.metadata["cc"] == ["boris@example.com"]
    assert contact.recipient == "support@help.example.com"


def test_reply_to_alone_identifies_the_sender_but_never_threads_onto_a_ticket() -> None:
    from contactcenter.channels.email.parser import email_to_contact

    raw = (b"From: <>\r\nReply-To: <victim@example.com>\r\nTo: support@example.com\r\n"
           b"Subject: Re: your ticket [#1000]\r\nIn-Reply-To: <msg-1.1000@support.example.test>\r\n"
           b"Message-ID: <forged-1@attacker.example>\r\n\r\nPlease send me the invoice.\r\n")
    contact = email_to_contact(raw, inbox_id=None, raw_id=None)
    assert contact.sender.address == "victim@example.com"
    assert contact.thread.ticket_number is None
    assert contact.thread.in_reply_to == ()
    assert contact.thread.thread_on_open_ticket is False


def test_reply_to_never_overrides_a_from_address() -> None:
    from contactcenter.channels.email.parser import email_to_contact

    raw = (b"From: Mallory <mallory@attacker.example>\r\nReply-To: <victim@example.com>\r\n"
           b"To: support@example.com\r\nSubject: hello\r\nMessage-ID: <m-2@attacker.example>\r\n"
           b"\r\nHi\r\n")
    contact = email_to_contact(raw, inbox_id=None, raw_id=None)
    assert contact.sender.address == "mallory@attacker.example"
