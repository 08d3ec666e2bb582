"""Walk a parsed MIME tree into body segments, attachments and report parts, under caps.

Shapes handled: multipart/alternative (text/plain gives the text, the richest HTML
branch the HTML and its inline images), mixed (inline text parts joined in order, as
mail clients show them), related (the root is the body, the other parts are inline
resources by Content-ID), signed (content kept, detached signatures dropped),
encrypted (kept as attachments), report (human part as body, machine parts for
``dsn``), nested message/rfc822 (kept as an ``.eml`` attachment and its text shown as a
forwarded block), a multipart whose boundary never appears (read as text), inline
uuencoded files in text bodies. Transfer encodings are decoded leniently (bad base64
padding, junk characters, unknown encodings read as 8-bit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from html import escape

from contactcenter.channels.base import AttachmentRef, QuarantineError
from contactcenter.channels.email.charsets import decode_text
from contactcenter.channels.email.mime_decode import (
    decode_payload,
    flatten,
    message_ids_in_headers,
    parse_field_blocks,
    raw_header,
    uudecode,
)
from contactcenter.channels.email.mime_headers import (
    MSGID_RE,
    header_text,
    parse_addresses,
    parse_params,
    unfold,
)
from contactcenter.channels.email.mime_limits import Budget, EmailLimits
from contactcenter.channels.email.mime_types import detect_type, generated_name

SIGNATURE_TYPES = frozenset({"application/pgp-signature", "application/pkcs7-signature",
                             "application/x-pkcs7-signature"})
REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status",
                          "message/feedback-report", "message/disposition-notification"})
ORIGINAL_TYPES = frozenset({"text/rfc822-headers", "message/rfc822-headers",
                            "text/rfc822-header"})
NESTED_TYPES = frozenset({"message/rfc822", "message/global", "message/news",
                          "message/partial"})
DROPPED_ALTERNATIVES = frozenset({"text/enriched", "text/richtext", "text/watch-html",
                                  "text/x-amp-html", "text/markdown"})
UUENCODE_BEGIN_RE = re.compile(r"^begin [0-7]{3,4} ([^\n]{1,255})\n", re.MULTILINE)


@dataclass
class Segment:
    """A piece of the body in reading order: its text, its HTML, or both (alternatives)."""

    text: str | None = None
    html: str | None = None
    forwarded: bool = False


@dataclass
class ReportParts:
    """The machine-readable parts of a report (DSN, feedback report, receipt)."""

    types: list[str] = field(default_factory=list)
    blocks: list[list[tuple[str, str]]] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)
    nested_ids: list[str] = field(default_factory=list)  # of every attached message


class Walker:
    """Collect segments, attachments and report parts from a message, within the caps."""

    def __init__(self, limits: EmailLimits, budget: Budget, hint: str | None) -> None:
        self.limits = limits
        self.budget = budget
        self.hint = hint
        self.parts = 0
        self.attachments: list[AttachmentRef] = []
        self.report = ReportParts()
        self.notes: list[str] = []
        self.signed = False
        self.encrypted = False
        self._names = 0

    # -- structure ----------------------------------------------------------------
    def walk(self, part: Message, depth: int, out: list[Segment], *, want_text: bool = True,
             want_html: bool = True, in_report: bool = False, related: bool = False) -> None:
        """Walk one part (and its children) into ``out`` and the walker's collections."""
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise QuarantineError(f"more than {self.limits.max_parts} MIME parts")
        if depth > self.limits.max_depth:
            raise QuarantineError(f"MIME structure deeper than {self.limits.max_depth} levels")
        if self.parts % 16 == 0:
            self.budget.check()
        ctype, params = self.content_type(part)
        payload = getattr(part, "_payload", None)
        if depth and ctype not in NESTED_TYPES:
            # A returned message pasted into a part without a blank line: its headers
            # became the part's own (some bounces); remember its Message-ID.
            self.report.nested_ids.extend(MSGID_RE.findall(
                unfold(raw_header(part, "Message-ID")))[:1])
        if ctype.startswith("multipart/") and isinstance(payload, list):
            self._multipart(ctype, params, payload, depth, out, want_text, want_html, in_report)
        elif ctype in NESTED_TYPES and isinstance(payload, list) and payload:
            self._nested(part, payload[0], depth, out, in_report)
        elif ctype in REPORT_TYPES:
            self._report(ctype, payload)
        elif ctype in ORIGINAL_TYPES:
            text = decode_text(decode_payload(part), params.get("charset"), self.hint)
            self.report.original_ids.extend(message_ids_in_headers(text))
        else:
            self._leaf(part, ctype, params, out, want_text, want_html, related)

    def content_type(self, part: Message) -> tuple[str, dict[str, str]]:
        """Return the lower-case content type (defaulted per RFC 2045) and its parameters."""
        raw = raw_header(part, "Content-Type")
        ctype, params = parse_params(raw, self.hint) if raw else ("", {})
        if "/" not in ctype or " " in ctype:
            ctype = part.get_default_type()
        return ctype, params

    def _multipart(self, ctype: str, params: dict[str, str], children: list[Message],
                   depth: int, out: list[Segment], want_text: bool, want_html: bool,
                   in_report: bool) -> None:
        sub = ctype.split("/", 1)[1]
        if not children:
            return
        if sub == "alternative":
            self._alternative(children, depth, out, want_text, want_html, in_report)
        elif sub == "related":
            root = self._related_root(children, params.get("start", ""))
            self.walk(root, depth + 1, out, want_text=want_text, want_html=want_html,
                      in_report=in_report)
            for child in children:
                if child is not root:
                    self.walk(child, depth + 1, out, want_text=False, want_html=False,
                              in_report=in_report, related=True)
        elif sub == "signed":
            self.signed = True
            self.walk(children[0], depth + 1, out, want_text=want_text, want_html=want_html,
                      in_report=in_report)
            for child in children[1:]:
                if self.content_type(child)[0] not in SIGNATURE_TYPES:
                    self.walk(child, depth + 1, out, want_text=False, want_html=False,
                              in_report=in_report)
        elif sub == "encrypted":
            self.encrypted = True
            for child in children:
                if self.content_type(child)[0] != "application/pgp-encrypted":
                    self.walk(child, depth + 1, out, want_text=False, want_html=False,
                              in_report=in_report)
        else:
            report = in_report or sub == "report"
            for child in children:
                self.walk(child, depth + 1, out, want_text=want_text, want_html=want_html,
                          in_report=report)

    def _related_root(self, children: list[Message], start: str) -> Message:
        start = start.strip().strip("<>")
        if start:
            for child in children:
                if raw_header(child, "Content-ID").strip().strip("<>") == start:
                    return child
        return children[0]

    def _alternative(self, children: list[Message], depth: int, out: list[Segment],
                     want_text: bool, want_html: bool, in_report: bool) -> None:
        types = [self.content_type(child)[0] for child in children]
        plain = [c for c, t in zip(children, types, strict=True) if t == "text/plain"]
        rich = [c for c, t in zip(children, types, strict=True)
                if t == "text/html" or t.startswith("multipart/")]
        text_parts: list[Segment] = []
        html_parts: list[Segment] = []
        if plain and want_text:
            self.walk(plain[-1], depth + 1, text_parts, want_html=False, in_report=in_report)
        if rich:
            self.walk(rich[-1], depth + 1, html_parts, want_text=not plain, want_html=want_html,
                      in_report=in_report)
        for child, ctype in zip(children, types, strict=True):
            if ctype not in ("text/plain", "text/html") and not ctype.startswith("multipart/") \
                    and ctype not in DROPPED_ALTERNATIVES:
                self.walk(child, depth + 1, out, want_text=False, want_html=False,
                          in_report=in_report)
        if not plain and not rich:
            self.walk(children[-1], depth + 1, out, want_text=want_text, want_html=want_html,
                      in_report=in_report)
            return
        html_bits = [s.html if s.html is not None else _pre(s.text or "") for s in html_parts]
        html = "\n".join(bit for bit in html_bits if bit) if want_html else ""
        if plain and sum(1 for s in html_parts if s.html is not None) > 1:
            # HTML stitched from several parts (Apple Mail inserts what was typed as parts
            # of a multipart/mixed): its plain alternative is often stale. Read the HTML.
            text: str | None = None
        elif plain:
            text = "\n\n".join(s.text for s in text_parts if s.text)
        else:
            text = "\n\n".join(s.text for s in html_parts if s.text) if not html else None
        if not (text or "").strip() and html:
            text = None  # an empty text alternative: render the HTML instead
        if text is not None or html:
            out.append(Segment(text=text, html=html or None))

    # -- leaves -------------------------------------------------------------------
    def _leaf(self, part: Message, ctype: str, params: dict[str, str], out: list[Segment],
              want_text: bool, want_html: bool, related: bool) -> None:
        disposition, dparams = parse_params(raw_header(part, "Content-Disposition"), self.hint)
        filename = (dparams.get("filename") or params.get("name") or "").strip()
        if ctype.startswith("multipart/"):
            ctype = "text/plain"  # a multipart whose boundary never appears: read as text
        body_like = ctype in ("text/plain", "text/html") and disposition != "attachment" \
            and not filename and not related
        if body_like:
            if not (want_text if ctype == "text/plain" else want_html):
                return
            text = decode_text(decode_payload(part), params.get("charset"), self.hint)
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            if ctype == "text/plain":
                if "begin " in text:
                    text = self._extract_uuencoded(text)
                out.append(Segment(text=text))
            else:
                out.append(Segment(html=text))
            return
        self._attach(part, ctype, filename, related or disposition == "inline")

    def _attach(self, part: Message, ctype: str, filename: str, inline: bool,
                data: bytes | None = None) -> None:
        if data is None:
            data = decode_payload(part)
        content_id = raw_header(part, "Content-ID").strip().strip("<>").strip() or None
        content_type = detect_type(ctype, filename, data)
        if not filename:
            self._names += 1
            filename = generated_name(content_type, self._names)
        self.attachments.append(AttachmentRef(
            filename=filename[:255], content_type=content_type, data=data,
            content_id=content_id[:250] if content_id else None,
            inline=bool(inline and content_id),
        ))

    def _extract_uuencoded(self, text: str) -> str:
        """Replace inline uuencoded files ("begin 644 name" ... "end") by attachments.

        Scanned forwards with ``str.find`` (no regex spanning the block), so a text with
        many "begin" lines and no "end" stays linear.
        """
        out: list[str] = []
        pos = 0
        for match in UUENCODE_BEGIN_RE.finditer(text):
            if match.start() < pos:
                continue
            end = text.find("\nend", match.end())
            if end < 0:
                break
            name = match.group(1).strip()
            data = uudecode(text[match.end():end])
            self.attachments.append(AttachmentRef(
                filename=name, content_type=detect_type("", name, data), data=data))
            out.append(text[pos:match.start()] + f"[attachment: {name}]")
            pos = end + 4
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline
        out.append(text[pos:])
        return "".join(out)

    def _report(self, ctype: str, payload: object) -> None:
        self.report.types.append(ctype)
        blocks: list[Message] = payload if isinstance(payload, list) else []
        for block in blocks:
            if isinstance(block, Message):
                self.report.blocks.append([(k, unfold(str(v))) for k, v in block.raw_items()])
        if isinstance(payload, str):
            self.report.blocks.extend(parse_field_blocks(payload))

    def _nested(self, part: Message, nested: Message, depth: int, out: list[Segment],
                in_report: bool) -> None:
        stored = getattr(nested, "_payload", None)
        if not nested.keys() and isinstance(stored, str):
            # A blank line before the attached message's headers: read it again without.
            body = stored.lstrip("\r\n").encode("utf-8", "surrogateescape")
            nested = BytesParser(policy=compat32).parsebytes(body)
        subject = header_text(raw_header(nested, "Subject"), self.hint)[:150]
        ids = MSGID_RE.findall(unfold(raw_header(nested, "Message-ID")))[:1]
        self.report.nested_ids.extend(ids)
        if in_report:
            self.report.original_ids.extend(ids)
            self._attach(part, "message/rfc822", "original-message.eml", False, flatten(nested))
            return
        position = len(self.attachments)
        inner: list[Segment] = []
        self.walk(nested, depth + 1, inner)  # first: the depth cap before any copying
        name = (subject or "forwarded message").replace("/", "_") + ".eml"
        self._attach(part, "message/rfc822", name, False, flatten(nested))
        self.attachments.insert(position, self.attachments.pop())
        out.append(self._forwarded_segment(nested, subject, inner))

    def _forwarded_segment(self, nested: Message, subject: str, inner: list[Segment]
                           ) -> Segment:
        head = ["---------- Forwarded message ----------"]
        for label, name in (("From", "From"), ("Date", "Date"), ("Subject", "Subject"),
                            ("To", "To")):
            raw = raw_header(nested, name)
            if not raw:
                continue
            if name in ("From", "To"):
                boxes = parse_addresses(raw[:4096], self.hint)[:10]
                value = ", ".join(f"{b.name} <{b.address}>" if b.name else b.address
                                  for b in boxes)
            else:
                value = subject if name == "Subject" else header_text(raw[:500], self.hint)
            head.append(f"{label}: {value}")
        text = "\n\n".join(s.text if s.text is not None else "" for s in inner if s.text)
        htmls = [s.html for s in inner if s.html is not None]
        header_html = "<p>" + "<br>".join(escape(line) for line in head) + "</p>"
        html = header_html + ("\n".join(htmls) if htmls else _pre(text))
        return Segment(text="\n".join(head) + "\n\n" + text, html=html, forwarded=True)


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>" if text else ""
