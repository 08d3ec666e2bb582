"""The parser on hostile and broken mail: caps (PARSE-2), malformed MIME (PARSE-1), active
HTML (PARSE-3) and markup in plain fields (PARSE-4)."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from contactcenter.channels.base import QuarantineError
from contactcenter.channels.email import parser as parser_module
from contactcenter.channels.email.mime_limits import EmailLimits
from contactcenter.channels.email.parser import email_to_contact, parse_email

HEAD = ("From: Anna <anna@example.com>\nTo: support@help.example.com\nSubject: Test\n"
        "Message-ID: <t1@example.com>\nMIME-Version: 1.0\n")


def multipart(body: str, boundary: str = "b", subtype: str = "mixed") -> bytes:
    return (HEAD + f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n' + body).encode()


# -- caps -------------------------------------------------------------------------------

def test_ten_thousand_addresses_in_to_are_quarantined() -> None:
    to = ", ".join(f"user{i}@example.com" for i in range(10_000))
    raw = HEAD.replace("To: support@help.example.com", f"To: {to}").encode() + b"\nhi\n"
    started = time.monotonic()
    with pytest.raises(QuarantineError, match="more than 1000 addresses"):
        parse_email(raw)
    assert time.monotonic() - started < 2


def test_rfc822_nested_a_hundred_deep_is_quarantined() -> None:
    inner = "From: a@example.com\nSubject: deepest\n\nbottom\n"
    for _ in range(100):
        inner = "From: a@example.com\nContent-Type: message/rfc822\n\n" + inner
    with pytest.raises(QuarantineError, match="deeper than 20 levels|too deeply nested"):
        parse_email(HEAD.encode() + b"Content-Type: message/rfc822\n\n" + inner.encode())


def test_thousands_of_nested_multiparts_are_quarantined_not_crashing() -> None:
    body = "Content-Type: text/plain\n\nhi\n"
    for level in range(1500):
        body = (f'Content-Type: multipart/mixed; boundary="n{level}"\n\n--n{level}\n{body}'
                f"\n--n{level}--\n")
    with pytest.raises(QuarantineError):
        parse_email(HEAD.encode() + body.encode())


def test_five_thousand_parts_are_quarantined() -> None:
    body = "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(5000)) + "--b--\n"
    with pytest.raises(QuarantineError, match="more than 500 MIME parts"):
        parse_email(multipart(body))


def test_a_megabyte_subject_is_truncated_not_refused() -> None:
    raw = HEAD.replace("Subject: Test", "Subject: " + "A" * 1_000_000).encode() + b"\nhi\n"
    parsed = parse_email(raw)
    assert parsed.subject == "A" * 500
    assert parsed.text == "hi"
    assert any("truncated" in note for note in parsed.notes)


def test_a_header_block_over_the_cap_is_quarantined() -> None:
    received = "".join(f"Received: from relay{i}.example.com by mx.example.com\n"
                       for i in range(8000))
    with pytest.raises(QuarantineError, match="header block"):
        parse_email((received + HEAD).encode() + b"\nhi\n")


def test_the_time_budget_quarantines_a_slow_parse() -> None:
    with pytest.raises(QuarantineError, match="time budget"):
        parse_email(HEAD.encode() + b"\nhi\n", EmailLimits(time_budget_s=-1))


def test_html_with_five_thousand_links_is_replaced_by_a_notice() -> None:
    html = "<p>" + "".join(f'<a href="https://x.example/{i}">{i}</a> ' for i in range(5000)) + "</p>"
    parsed = parse_email(HEAD.encode() + b"Content-Type: text/html\n\n" + html.encode())
    assert "5000 links" in parsed.html and "href" not in parsed.html
    [original] = [a for a in parsed.attachments if a.filename == "original-body.html"]
    assert original.data.count(b"<a href") == 5000


def test_thousands_of_rfc2231_continuations_stay_cheap() -> None:
    params = "".join(f'; filename*{i}="x{i}"' for i in range(5000))
    raw = multipart(f"--b\nContent-Type: application/octet-stream{params}\n\nabc\n--b--\n")
    started = time.monotonic()
    parse_email(raw)
    assert time.monotonic() - started < 2


def test_long_encoded_word_chains_and_nested_comments_stay_cheap() -> None:
    subject = " ".join(["=?utf-8?B?0J/RgNC40LLQtdGC?="] * 5000)
    from_ = "Anna " + "(" * 5000 + "x" + ")" * 5000 + " <anna@example.com>"
    raw = (HEAD.replace("Subject: Test", "Subject: " + subject)
           .replace("From: Anna <anna@example.com>", "From: " + from_)).encode() + b"\nhi\n"
    started = time.monotonic()
    parsed = parse_email(raw)
    assert time.monotonic() - started < 2
    assert parsed.subject == "Привет" * 83 + "Пр"  # 500 characters
    assert parsed.from_address == "anna@example.com"


# -- malformed MIME ---------------------------------------------------------------------

def test_missing_closing_boundary_still_reads_every_part() -> None:
    raw = multipart("--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: text/plain\n"
                    "Content-Disposition: attachment; filename=a.txt\n\nfile body\n")
    parsed = parse_email(raw)
    assert parsed.text == "first"
    assert [a.filename for a in parsed.attachments] == ["a.txt"]


def test_boundary_that_never_appears_reads_the_body_as_text() -> None:
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="nowhere"\n'
           "Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n").encode()
    assert parse_email(raw).text == "Grüße"


@pytest.mark.parametrize("cte, payload, expected", [
    ("base64", "SGVsbG8gd29ybGQ", "Hello world"),              # padding missing
    ("base64", "SGVs!!bG8g\nd29y*bGQ=", "Hello world"),        # junk characters
    ("base64", "SGVsbG8gd29ybGQ=====extra", "Hello world"),    # junk after the padding
    ("quoted-printable", "caf=C3=A9 =ZZ broken=\nsoft", "café =ZZ brokensoft"),
    ("x-unknown-encoding", "plain bytes", "plain bytes"),
    ("BASE64 ", "SGk=", "Hi"),
])
def test_bad_transfer_encodings_are_read_best_effort(cte: str, payload: str, expected: str
                                                     ) -> None:
    raw = (HEAD + f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}\n\n"
           + payload + "\n").encode()
    assert parse_email(raw).text.startswith(expected)


def test_bogus_charsets_and_headers_without_values_do_not_crash() -> None:
    raw = (b"From: anna@example.com\nTo:\nCc: ,,,\nSubject:\nDate: yesterday-ish\n"
           b"Content-Type: text/plain; charset=\"utf-99\"\nContent-Disposition: ;;;=\n\n"
           b"Caf\xe9 cr\xe8me br\xfbl\xe9e\n")
    parsed = parse_email(raw)
    assert parsed.text == "Café crème brûlée"
    assert (parsed.subject, parsed.date, parsed.to, parsed.cc) == ("", None, (), ())


def test_headers_only_mail_and_empty_mail() -> None:
    parsed = parse_email(b"From: anna@example.com\nSubject: no body")
    assert parsed.text == "" and parsed.subject == "no body"
    assert parse_email(b"").from_address == ""
    with pytest.raises(QuarantineError, match="no sender address"):
        email_to_contact(b"\x00\xff garbage", inbox_id=None, raw_id=None)


def test_an_unexpected_email_package_error_is_quarantined(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    def explode(self: object, data: bytes) -> None:
        raise ValueError("feedparser exploded")

    monkeypatch.setattr(parser_module.BytesParser, "parsebytes", explode)
    with pytest.raises(QuarantineError, match="unparseable message: ValueError: feedparser"):
        parse_email(HEAD.encode() + b"\nhi\n")


# -- active content ---------------------------------------------------------------------

ACTIVE_HTML = """<html><head><base href="https://evil.example/"><meta http-equiv="refresh"
content="0;url=https://evil.example/"><script>alert('head')</script>
<style>p { background: expression(alert(1)) }</style></head><body>
<p onclick="alert(1)">Hello</p><img src="x" onerror="alert(2)">
<a href="javascript:alert(3)">js</a> <a href="vbscript:msgbox(4)">vb</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==">data</a>
<svg onload="alert(6)"><script>alert(7)</script></svg><math><mi xlink:href="javascript:alert(8)">m</mi></math>
<iframe src="https://evil.example/frame"></iframe><form action="https://evil.example/"><input name=p></form>
<object data="evil.swf"></object><embed src="evil.swf">
<noscript><p title="</noscript><img src=x onerror=alert(9)>"></noscript>
<a href="https://ok.example/">safe link</a> <a href="mailto:a@example.com">mail</a>
</body></html>"""


def test_active_html_is_sanitised_and_links_keep_only_safe_schemes() -> None:
    parsed = parse_email(HEAD.encode() + b"Content-Type: text/html; charset=utf-8\n\n"
                         + ACTIVE_HTML.encode())
    lowered = parsed.html.lower()
    for bad in ("<script", "onerror", "onclick", "onload", "javascript:", "vbscript:", "data:",
                "<svg", "<math", "<iframe", "<base", "<meta", "<form", "<input", "<object",
                "<embed", "expression(", "evil.example"):
        assert bad not in lowered, bad
    assert 'href="https://ok.example/"' in parsed.html
    assert 'href="mailto:a@example.com"' in parsed.html
    assert "alert" not in parsed.text
    assert "Hello" in parsed.text and "safe link" in parsed.text


def test_markup_in_subject_names_and_file_names_stays_literal_text() -> None:
    payload = '<img src=x onerror=alert(1)>'
    raw = multipart("--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/plain\n"
                    f'Content-Disposition: attachment; filename="{payload}.txt"\n\nx\n--b--\n')
    raw = raw.replace(b"Subject: Test", f"Subject: {payload} =HYPERLINK(\"x\")".encode())
    raw = raw.replace(b"From: Anna <anna@example.com>",
                      b'From: "<script>alert(2)</script>" <anna@example.com>')
    parsed = parse_email(raw)
    assert parsed.subject == f'{payload} =HYPERLINK("x")'
    assert parsed.from_name == "<script>alert(2)</script>"
    assert parsed.attachments[0].filename == f"{payload}.txt"


def test_cid_images_are_kept_as_attachments_while_html_drops_the_cid_scheme() -> None:
    gif = base64.b64encode(b"GIF89a" + b"\x00" * 10).decode()
    raw = multipart('--r\nContent-Type: text/html\n\n<img src="cid:pic1">Hi\n'
                    f"--r\nContent-Type: image/gif\nContent-ID: <pic1>\n"
                    f"Content-Transfer-Encoding: base64\n\n{gif}\n--r--\n",
                    boundary="r", subtype="related")
    parsed = parse_email(raw)
    assert "cid:" not in parsed.html
    assert parsed.attachments[0].content_id == "pic1" and parsed.attachments[0].inline


# -- fuzzing ----------------------------------------------------------------------------

SEED_MAIL = multipart(
    "--b\nContent-Type: multipart/alternative; boundary=\"a\"\n\n--a\nContent-Type: text/plain; "
    "charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9=D7=C5=D4\n--a\n"
    "Content-Type: text/html\n\n<p>Hi <b>there</b></p>\n--a--\n--b\nContent-Type: message/rfc822\n\n"
    "From: x@example.com\nSubject: =?utf-8?B?0J/RgNC4?=\n\ninner\n--b\nContent-Type: image/png;\n"
    " name*=utf-8''%D1%84.png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n")


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SEED_MAIL) - 1), st.binary(min_size=0, max_size=4)),
                max_size=6))
def test_mutated_mail_never_raises_anything_but_quarantine(edits: list[tuple[int, bytes]]
                                                           ) -> None:
    raw = bytearray(SEED_MAIL)
    for position, replacement in edits:
        raw[position:position + len(replacement)] = replacement
    try:
        parsed = parse_email(bytes(raw))
    except QuarantineError:
        return
    assert isinstance(parsed.text, str) and isinstance(parsed.html, str)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_but_quarantine(raw: bytes) -> None:
    try:
        email_to_contact(raw, inbox_id=None, raw_id=None)
    except QuarantineError:
        pass
