"""RELIABILITY PARSE-5: remote and bulky content in HTML mail.

Nothing in a customer's HTML makes an agent's browser fetch from elsewhere (a tracking
pixel would leak the agent's address and read time): ``<link>``, ``<style>`` and
``style`` attributes are dropped, and a remote ``<img src>`` is kept only as
``data-remote-src`` (never loaded), so this holds even outside our CSP, which also
forbids remote images. Bodies too large or with too many links to show are replaced by a
notice, the original kept as the attachment ``original-body.html``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.channels.email.receive import receive_email
from contactcenter.tickets.attachments import attachment_path
from contactcenter.tickets.html import MAX_HTML_CHARS, REMOTE_SRC_ATTR, sanitise_html
from contactcenter.tickets.models import Attachment, Message

_ids = itertools.count(1)

TRACKED = """<html><head>
<link rel="stylesheet" href="https://tracker.example/s.css">
<link rel=preload as=image href="https://tracker.example/pre.png">
<style>@import url(https://tracker.example/i.css); body { background: url(https://tracker.example/bg.png) }</style>
<meta http-equiv="refresh" content="0; url=https://tracker.example/r">
</head><body style="background:url(https://tracker.example/body.png)">
<p style="background-image:url('https://tracker.example/p.png')">Hello, my router is down.</p>
<img src="https://tracker.example/p.gif" width="1" height="1" alt="">
<img src="//tracker.example/scheme-relative.gif">
<img src="/api/v1/me">
<img srcset="https://tracker.example/1x.png 1x, https://tracker.example/2x.png 2x">
<table background="https://tracker.example/table.png"><tr><td background="https://tracker.example/td.png">cell</td></tr></table>
<video poster="https://tracker.example/poster.png"></video>
<svg><image href="https://tracker.example/svg.png"/></svg>
<a href="https://shop.example/order/1">my order</a>
</body></html>"""


def html_mail(html: str, subject: str = "Router down") -> bytes:
    return ("From: Anna <anna@example.com>\r\nTo: help@example.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: <remote-{next(_ids)}@example.com>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + html + "\r\n").encode()


def receive(session: Any, settings: Any, registry: Any, html: str) -> Message:
    received = receive_email(session, html_mail(html), registry, settings)
    assert received.status == "created", received
    message = session.scalar(select(Message).where(Message.raw_id == received.raw_id))
    assert message is not None
    return message


def remote_fetches(html: str) -> list[str]:
    """Everything in rendered HTML a browser would load on its own from another host."""
    found = re.findall(r"""\s(?:src|srcset|poster|background|href|data)\s*=\s*["']?[^"'\s>]*""",
                       html, re.IGNORECASE)
    loading = [f for f in found if not f.strip().lower().startswith("href")]
    links = re.findall(r"<link\b[^>]*>", html, re.IGNORECASE)
    css = re.findall(r"url\s*\(|@import", html, re.IGNORECASE)
    return loading + links + css


def test_tracking_pixel_and_remote_css_are_not_fetchable_after_ingest(
        session: Any, settings: Any, registry: Any) -> None:
    message = receive(session, settings, registry, TRACKED)
    html = message.html
    assert "Hello, my router is down." in html
    assert "<link" not in html.lower() and "<style" not in html.lower()
    assert "<meta" not in html.lower() and "<svg" not in html.lower()
    assert "style=" not in html.lower() and "url(" not in html.lower()
    assert "@import" not in html and "background" not in html.lower()
    assert "srcset" not in html and "poster" not in html
    assert remote_fetches(html) == []
    # The pixel's address is kept as inert data (for a later "show images" proxy).
    assert f'{REMOTE_SRC_ATTR}="https://tracker.example/p.gif"' in html
    assert f'{REMOTE_SRC_ATTR}="//tracker.example/scheme-relative.gif"' in html
    assert "/api/v1/me" not in html  # a same-origin GET with the agent's cookies: dropped
    # Ordinary links stay (clicking is the agent's choice) and cannot reach back.
    assert 'href="https://shop.example/order/1"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert "tracker.example/p.gif" not in message.text


@pytest.mark.parametrize("img", [
    '<img src="https://tracker.example/p.gif">',
    "<IMG SRC=https://tracker.example/p.gif>",
    "<img src = 'HTTP://tracker.example/p.gif' >",
    '<img alt="x>y" src="https://tracker.example/p.gif" title=\'a"b\'>',
    '<img src="https://tracker.example/p.gif?a=1&amp;b=2" width=1>',
    '<img src="  https://tracker.example/p.gif">',
    '<img src="\\\\tracker.example\\p.gif">',
    '<img src="https://tracker.example/a.gif" src="https://tracker.example/b.gif">',
    '<img data-remote-src="https://x.example/y" src="https://tracker.example/p.gif">',
    '<p><img src="https://tracker.example/p.gif"/></p>',
])
def test_no_image_keeps_a_src(img: str) -> None:
    cleaned = sanitise_html(f"<p>hi</p>{img}")
    assert " src=" not in cleaned.replace(REMOTE_SRC_ATTR, "")
    assert "<img" in cleaned


@pytest.mark.parametrize("value", ["javascript:alert(1)", "data:image/png;base64,AA",
                                   "cid:logo", "/relative", "relative.png"])
def test_data_remote_src_only_carries_remote_urls(value: str) -> None:
    assert REMOTE_SRC_ATTR not in sanitise_html(f'<img {REMOTE_SRC_ATTR}="{value}">')
    assert " src=" not in sanitise_html(f'<img src="{value}">')


def test_pages_csp_forbids_remote_images_and_styles(client: Any) -> None:
    for path in ("/login", "/healthz", "/api/v1/me"):
        csp = client.get(path).headers["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives["default-src"] == ["'self'"]
        for name in ("img-src", "style-src"):
            sources = directives.get(name, directives["default-src"])
            assert set(sources) <= {"'self'", "data:"}, (path, name, sources)
            assert not any(s in ("*", "http:", "https:") or "://" in s or s.startswith("*.")
                           for s in sources)


def test_a_huge_html_body_is_replaced_by_a_notice_with_the_original_attached(
        session: Any, settings: Any, registry: Any) -> None:
    chunk = "<p>Line of a very long newsletter with <b>bold</b> text.</p>\n"
    original = "<html><body>" + chunk * (MAX_HTML_CHARS // len(chunk) + 5000) + "</body></html>"
    assert 2_000_000 < len(original) < 3_000_000
    message = receive(session, settings, registry, original)
    assert "too large to show" in message.html and "original-body.html" in message.html
    assert len(message.html) < 1000
    (kept,) = session.scalars(select(Attachment).where(Attachment.message_id == message.id))
    assert kept.filename == "original-body.html"
    stored = attachment_path(settings.data_dir, kept.sha256).read_bytes()
    assert kept.sha256 == hashlib.sha256(stored).hexdigest()
    assert chunk.strip().encode() in stored and len(stored) >= 2_000_000


def test_five_thousand_links_are_replaced_by_a_notice(session: Any, settings: Any,
                                                      registry: Any) -> None:
    original = "<p>" + "".join(f'<a href="https://spam.example/{i}">{i}</a> '
                               for i in range(5000)) + "</p>"
    message = receive(session, settings, registry, original)
    assert "5000 links" in message.html and "spam.example" not in message.html
    (kept,) = session.scalars(select(Attachment).where(Attachment.message_id == message.id))
    assert kept.filename == "original-body.html"
    assert b"https://spam.example/4999" in attachment_path(settings.data_dir,
                                                           kept.sha256).read_bytes()


def test_a_body_under_the_limits_is_shown(session: Any, settings: Any, registry: Any) -> None:
    message = receive(session, settings, registry,
                      "<p>" + '<a href="https://ok.example/">x</a>' * 10 + "</p>")
    assert message.html.count("https://ok.example/") == 10
    assert session.scalars(select(Attachment)).all() == []
