"""Decode MIME parts leniently: transfer encodings, attached messages, report fields.

Helpers of ``mime_parts``: nothing here raises for a malformed part. Base64 with bad
padding or junk characters decodes as far as it goes, quoted-printable never fails, an
unknown transfer encoding is read as 8-bit, and an attached message the standard
library refuses to serialise is written out field by field.
"""

from __future__ import annotations

import binascii
import re
from email.errors import MessageError
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from io import BytesIO

from contactcenter.channels.email.mime_headers import unfold

BASE64_DELETE = bytes(b for b in range(256) if not (chr(b).isalnum() and b < 128)
                      and b not in b"+/")
HEADER_MSGID_RE = re.compile(r"^message-id:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]{1,450})>",
                             re.IGNORECASE | re.MULTILINE)


def raw_header(part: Message, name: str) -> str:
    """Return a header's first value as stored (folded, 8-bit bytes as surrogates), or ""."""
    lname = name.lower()
    for key, value in part.raw_items():
        if key.lower() == lname:
            return str(value)
    return ""


def decode_payload(part: Message) -> bytes:
    """Return a leaf part's decoded bytes; never raises for a bad transfer encoding."""
    # The stored payload, not get_payload(): compat32 would decode 8-bit bytes with the
    # declared charset first. The parser keeps undecodable bytes as surrogate escapes.
    payload = getattr(part, "_payload", None)
    if isinstance(payload, list):
        return b""
    if isinstance(payload, bytes):
        raw = payload
    else:
        raw = str(payload or "").encode("utf-8", "surrogateescape")
    cte = unfold(raw_header(part, "Content-Transfer-Encoding")).strip().strip("\"'").lower()
    if cte in ("base64", "base-64", "b64", "x-base64"):
        data = raw.translate(None, BASE64_DELETE)
        data = data[:-1] if len(data) % 4 == 1 else data + b"=" * (-len(data) % 4)
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            return raw
    if cte in ("quoted-printable", "quoted_printable", "qp", "x-qp"):
        return binascii.a2b_qp(raw)
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return uudecode(raw.decode("ascii", "replace").split("\n", 1)[-1])
    return raw


def uudecode(block: str) -> bytes:
    out = bytearray()
    for text in block.split("\n"):
        line = text.rstrip("\r").encode("ascii", "replace")
        if not line or line in (b"`", b"end"):
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders drop trailing spaces: pad the line to its declared length.
            length = ((line[0] - 32) & 63) * 4 // 3
            try:
                out += binascii.a2b_uu(line[: length + 1].ljust(length + 1))
            except binascii.Error:
                continue
    return bytes(out)


def flatten(message: Message) -> bytes:
    """Return an attached message's bytes, as close to what was received as possible."""
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(message)
    except (MessageError, TypeError, ValueError, LookupError, UnicodeError):
        return flatten_plainly(message)  # a header the generator refuses to refold
    return buffer.getvalue()


def flatten_plainly(message: Message) -> bytes:
    head = "".join(f"{name}: {value}\n" for name, value in message.raw_items())
    payload = getattr(message, "_payload", None)
    if isinstance(payload, list):
        body = b"\n".join(flatten_plainly(part) for part in payload if isinstance(part, Message))
    else:
        body = str(payload or "").encode("utf-8", "surrogateescape")
    return head.encode("utf-8", "surrogateescape") + b"\n" + body


def message_ids_in_headers(text: str) -> list[str]:
    """Return the Message-ID of a returned header block (text/rfc822-headers)."""
    match = HEADER_MSGID_RE.search(text)
    return [match.group(1)] if match else []


def parse_field_blocks(text: str) -> list[list[tuple[str, str]]]:
    """Parse "Name: value" blocks separated by blank lines (RFC 3464 field groups)."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
        elif line[:1] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            if name and " " not in name.strip():
                current.append((name.strip(), value.strip()))
    if current:
        blocks.append(current)
    return blocks
