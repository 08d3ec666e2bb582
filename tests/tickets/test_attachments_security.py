"""RELIABILITY ATT-1 and ATT-2 at the storage layer: hostile names, hostile types, size caps.

Attachment bytes live under ``<data_dir>/attachments/aa/bb/<sha256>`` (a key we make);
the sender's name is only a sanitised display name. Oversized files are dropped with a
note in the message text; archives are stored as the bytes they are, never unpacked.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import zipfile
from email.header import Header
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.channels.base import AttachmentRef
from contactcenter.channels.email.receive import receive_email
from contactcenter.config import Settings
from contactcenter.tickets.attachments import MAX_NAME, attachment_path, safe_filename
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Attachment, Message, Ticket
from tests.factories import make_contact

MIB = 1024 * 1024
HTML_AS_PNG = b"<!doctype html><script>alert(document.cookie)</script>"


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def ingest_with(session: Any, settings: Settings, *refs: AttachmentRef,
                channel: str = "api") -> Message:
    result = ingest_inbound(session, make_contact(channel=channel, attachments=refs),
                            settings=settings)
    session.commit()
    message = session.scalar(select(Message).join(Ticket)
                             .where(Ticket.number == result.ticket_number)
                             .order_by(Message.id.desc()).limit(1))
    assert message is not None
    return message


# --- display names ------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("../../x", "x"),
    ("../../../etc/passwd", "passwd"),
    ("/etc/passwd", "passwd"),
    ("C:\\Windows\\System32\\evil.dll", "evil.dll"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("..", "attachment"),
    ("/", "attachment"),
    ("report\x00.exe.pdf", "report.exe.pdf"),
    ("a\x00/../b.txt", "b.txt"),
    ("line\r\nbreak.txt", "linebreak.txt"),
    ("c1\x85control\x9b.txt", "c1control.txt"),
    ('quo"te<>|?*:.txt', "quo_te______.txt"),
    (".htaccess", "htaccess"),
    ("trailing. . ", "trailing"),
])
def test_paths_and_control_characters_leave_only_a_plain_name(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("CON", "_CON"), ("con", "_con"), ("NUL", "_NUL"), ("nul.txt", "_nul.txt"),
    ("PRN.pdf", "_PRN.pdf"), ("aux", "_aux"), ("COM1", "_COM1"), ("com9.tar.gz", "_com9.tar.gz"),
    ("LPT1", "_LPT1"), ("lpt1.doc", "_lpt1.doc"), ("CON .txt", "_CON .txt"),
    ("../NUL", "_NUL"),
])
def test_windows_device_names_are_prefixed(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


@pytest.mark.parametrize("raw", ["console.txt", "nullable.csv", "com10.txt", "lpt.txt",
                                 "auxiliary.md", "CONTRACT.pdf"])
def test_names_that_only_start_like_devices_are_left_alone(raw: str) -> None:
    assert safe_filename(raw) == raw


@pytest.mark.parametrize("char", [
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202egpj.exe" displays as "invoiceexe.jpg"
    "\u202d", "\u202a", "\u202b", "\u202c",  # LRO, LRE, RLE, PDF
    "\u2066", "\u2067", "\u2068", "\u2069",  # LRI, RLI, FSI, PDI
    "\u200e", "\u200f", "\u061c",  # LRM, RLM, ALM
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",  # zero-width, BOM, soft hyphen
    "\u2028", "\u2029",  # line and paragraph separators
])
def test_bidi_and_invisible_format_characters_are_stripped(char: str) -> None:
    name = safe_filename(f"invoice{char}gpj.exe")
    assert name == "invoicegpj.exe"
    assert not any(unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp") for c in name)


def test_only_invisible_characters_fall_back() -> None:
    assert safe_filename("\u202e\u200b\ufeff", "attachment-3") == "attachment-3"


def test_visible_non_ascii_names_are_kept() -> None:
    assert safe_filename("Счёт №5 café.pdf") == "Счёт №5 café.pdf"
    assert safe_filename("e\u0301.txt") == "\u00e9.txt"  # NFC


@pytest.mark.parametrize("raw", ["a" * 1000 + ".pdf", "ä" * 1000 + ".docx",
                                 "x" * 500 + " " * 300 + ".txt"])
def test_thousand_character_names_are_bounded_and_keep_their_extension(raw: str) -> None:
    name = safe_filename(raw)
    assert len(name) <= MAX_NAME
    assert name.endswith("." + raw.rsplit(".", 1)[1])
    assert not name[: -len(raw.rsplit(".", 1)[1]) - 1].endswith(" ")


def test_a_long_name_without_extension_is_cut() -> None:
    assert safe_filename("b" * 1000) == "b" * MAX_NAME


# --- storage key and place ------------------------------------------------------------

HOSTILE = [
    ("../../x", "text/plain", b"escape attempt"),
    ("/etc/passwd", "text/plain", b"root:x:0:0"),
    ("evil\x00.txt", "text/plain", b"nul byte"),
    ("CON", "text/plain", b"device"),
    ("invoice\u202egpj.exe", "image/jpeg", b"MZ not a jpeg"),
    ("n" * 1000 + ".pdf", "application/pdf", b"%PDF-1.7 long"),
    ("page.html", "text/html", b"<script>alert(1)</script>"),
    ("vector.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("doc.xhtml", "application/xhtml+xml", b'<html xmlns="http://www.w3.org/1999/xhtml"/>'),
    ("data.xml", "application/xml", b"<?xml version='1.0'?><x/>"),
    ("app.js", "application/javascript", b"fetch('/api/v1/me')"),
    ("photo.png", "image/png", HTML_AS_PNG),
]


def test_hostile_attachments_are_stored_under_their_digest_inside_the_data_dir(
        session: Any, settings: Settings, tmp_path: Path) -> None:
    refs = tuple(AttachmentRef(name, ctype, data) for name, ctype, data in HOSTILE)
    message = ingest_with(session, settings, *refs)
    assert len(message.attachments) == len(HOSTILE)
    data_dir = settings.data_dir.resolve()
    for row, (name, ctype, data) in zip(message.attachments, HOSTILE, strict=True):
        digest = hashlib.sha256(data).hexdigest()
        assert row.sha256 == digest
        path = attachment_path(settings.data_dir, row.sha256).resolve()
        assert path.is_relative_to(data_dir / "attachments")
        assert path.name == digest and path.read_bytes() == data
        assert row.filename == safe_filename(name)
        assert "/" not in row.filename and "\\" not in row.filename and "\x00" not in row.filename
        assert "\u202e" not in row.filename and len(row.filename) <= MAX_NAME
        assert row.content_type == ctype  # the sender's label is kept, never used to serve
    assert [p.name for p in stored_files(settings)] == sorted(
        hashlib.sha256(d).hexdigest() for _n, _c, d in HOSTILE)
    # Nothing was written where the names pointed.
    assert not (tmp_path / "x").exists() and not (settings.data_dir / "x").exists()
    assert not any(p.name in ("x", "passwd", "CON") for p in tmp_path.rglob("*"))


def test_attachment_path_accepts_only_a_digest(settings: Settings) -> None:
    for bad in ("../../etc/passwd", "a" * 63, "A" * 64, "g" * 64, "0" * 64 + "/x", ""):
        with pytest.raises(ValueError):
            attachment_path(settings.data_dir, bad)


def mail_with_attachment(header_filename: str, data: bytes, ctype: str = "text/plain") -> bytes:
    import base64

    body = base64.encodebytes(data).decode()
    return (
        "From: Anna <anna@example.com>\r\nTo: help@example.test\r\n"
        f"Subject: File\r\nMessage-ID: <att-{hashlib.md5(data).hexdigest()}@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        f"--b\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; filename=\"{header_filename}\"\r\n\r\n"
        f"{body}\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize("decoded", ["../../etc/passwd", "a/b/c.txt", "..\\..\\x.txt",
                                     "/abs/olute.txt", "ok/\u202efdp.exe"])
def test_encoded_word_names_with_slashes_arrive_without_them(
        session: Any, settings: Settings, registry: Any, decoded: str) -> None:
    encoded = Header(decoded, "utf-8").encode()
    assert encoded.startswith("=?utf-8?")
    raw = mail_with_attachment(encoded, b"payload " + decoded.encode())
    received = receive_email(session, raw, registry, settings)
    assert received.status == "created", received
    row = session.scalar(select(Attachment))
    assert row is not None
    assert "/" not in row.filename and "\\" not in row.filename and "\u202e" not in row.filename
    assert row.filename == safe_filename(decoded)
    assert attachment_path(settings.data_dir, row.sha256).resolve().is_relative_to(
        settings.data_dir.resolve())


# --- size and archives (ATT-2) -----------------------------------------------------------

def test_a_30_mib_file_over_the_20_mib_cap_is_dropped_with_a_note(
        session: Any, settings: Settings) -> None:
    assert settings.attachment_max_bytes == 20 * MIB
    big = AttachmentRef("huge.bin", "application/octet-stream", b"\0" * (30 * MIB))
    small = AttachmentRef("small.txt", "text/plain", b"kept")
    message = ingest_with(session, settings, big, small, channel="api")
    assert [a.filename for a in message.attachments] == ["small.txt"]
    assert f"[attachment huge.bin removed: {30 * MIB} bytes is over the limit]" in message.text
    assert [p.stat().st_size for p in stored_files(settings)] == [4]


def test_a_30_mib_email_attachment_is_dropped_with_a_note(
        session: Any, settings: Settings, registry: Any) -> None:
    raw = mail_with_attachment("huge.bin", b"\xff" * (30 * MIB), "application/octet-stream")
    received = receive_email(session, raw, registry, settings)
    assert received.status == "created", received
    message = session.scalar(select(Message))
    assert message is not None and message.attachments == []
    assert "huge.bin removed" in message.text and "over the limit" in message.text
    assert stored_files(settings) == []


def test_archives_are_stored_as_is_and_never_unpacked(session: Any, settings: Settings) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../../escaped.txt", "zip slip")
        zf.writestr("bomb.bin", b"\0" * (5 * MIB))  # compresses to a few KiB
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("nested.zip", inner.getvalue())
    data = outer.getvalue()
    assert len(data) < 64 * 1024
    message = ingest_with(session, settings, AttachmentRef("bundle.zip", "application/zip", data))
    (row,) = message.attachments
    assert row.size == len(data) and row.content_type == "application/zip"
    files = stored_files(settings)
    assert [p.read_bytes() for p in files] == [data]  # one file: the archive's own bytes
    root = settings.data_dir.parent
    assert not any(p.name in ("escaped.txt", "bomb.bin", "nested.zip") for p in root.rglob("*"))
