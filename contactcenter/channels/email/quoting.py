"""Separate the new text of a reply from the history it quotes and the sender's signature.

The split point is the first of: a quote mark left by the HTML renderer (Gmail,
Outlook, Thunderbird and Yahoo quote containers), an attribution line ("On ... wrote:",
"Am ... schrieb ...:", "... написал(а):"), an Outlook separator ("-----Original
Message-----", or a "From:" line followed by "Sent:"/"To:"/"Subject:" lines), a block of
">" lines that runs to the end, or the "-- " signature delimiter (RFC 3676 section
4.3). Everything from there on is kept as the quoted text, shown collapsed. Interleaved
replies keep their quotes inline (the answers make no sense without them); forwarded
mail is never split; and a split that would leave no new text is not made.
"""

from __future__ import annotations

import re

from contactcenter.channels.email.mime_html import QUOTE_MARK

SCAN_CHARS = 400
ATTRIBUTION_RE = re.compile(
    r"^(?:>\s*)?(?:on|am|le|el|il|op|em|w dniu|den|på|dne)\s.{0,300}?"
    r"(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|napisał|skrev|"
    r"napsal|kirjoitti|írta)\s*:?\s*$",
    re.IGNORECASE,
)
ATTRIBUTION_VERB_FIRST_RE = re.compile(  # "Am 2. März schrieb Anna <a@b>:"
    r"^(?:am|op|le|el|il)\s.{0,200}?\b(?:schrieb|schreef|a écrit|escribió|ha scritto)\b"
    r".{0,200}:\s*$",
    re.IGNORECASE)
ATTRIBUTION_RU_RE = re.compile(
    r"^.{0,300}?(?:написал|написала|написал\(а\)|пишет|писал|писала)\s*:\s*$", re.IGNORECASE)
WROTE_END_RE = re.compile(
    r"(?:wrote|schrieb|a écrit|escribió|написал|написала|написал\(а\)|пишет)\s*:\s*$",
    re.IGNORECASE)
ATTRIBUTION_START_RE = re.compile(r"^(?:on|am|le|el)\s", re.IGNORECASE)
ORIGINAL_RE = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|исходное сообщение|"
    r"message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|"
    r"originalmeddelande|původní zpráva)\s*-{2,}\s*$",
    re.IGNORECASE,
)
HEADER_FROM_RE = re.compile(r"^\s*\*?(?:from|von|от|de|da|van|från|fra|od)\s*:\*?\s*\S",
                            re.IGNORECASE)
HEADER_NEXT_RE = re.compile(
    r"^\s*\*?(?:sent|gesendet|отправлено|envoyé|enviado|inviato|verzonden|skickat|date|"
    r"datum|дата|to|an|кому|à|para|a|aan|till|subject|betreff|тема|objet|asunto|oggetto|"
    r"onderwerp|ämne|cc|копия)\s*(?::|\t)",
    re.IGNORECASE,
)
SEPARATOR_RE = re.compile(r"^\s*_{10,}\s*$")
FORWARD_RE = re.compile(
    r"^\s*(?:-{3,}\s*(?:forwarded message|weitergeleitete nachricht|пересылаемое сообщение|"
    r"message transféré|mensaje reenviado)|begin forwarded message:)",
    re.IGNORECASE,
)
MOBILE_SIGNATURE_RE = re.compile(
    r"^(?:sent from my (?:iphone|ipad|android|samsung|mobile)|get outlook for (?:ios|android)|"
    r"отправлено с (?:iphone|ipad|моего)|von meinem (?:iphone|ipad) gesendet)",
    re.IGNORECASE,
)


def is_signature_delimiter(line: str) -> bool:
    """Whether a line is the "-- " signature delimiter (also accepted without its space)."""
    return line.rstrip("\r") in ("-- ", "--")


def _is_header_block(lines: list[str], index: int) -> bool:
    if not HEADER_FROM_RE.match(lines[index][:SCAN_CHARS]):
        return False
    found = 0
    for line in lines[index + 1:index + 6]:
        if HEADER_NEXT_RE.match(line[:SCAN_CHARS]):
            found += 1
    return found >= 2


def _is_attribution(lines: list[str], index: int) -> bool:
    line = lines[index][:SCAN_CHARS].strip()
    if not line:
        return False
    if (line.endswith(":") or line[-5:].lower() == "wrote") and (
            ATTRIBUTION_RE.match(line) or ATTRIBUTION_RU_RE.match(line)
            or ATTRIBUTION_VERB_FIRST_RE.match(line)):
        return True
    # "On Mon, 2 Mar 2026 at 10:00, Anna Petrova <anna@example.com>" / "wrote:" wrapped.
    if ATTRIBUTION_START_RE.match(line) and index + 1 < len(lines):
        return bool(WROTE_END_RE.search(lines[index + 1][:SCAN_CHARS]))
    return False


def find_split(lines: list[str]) -> int | None:
    """Return the index of the first line of quoted history or signature, or None."""
    last_unquoted = -1
    for index, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith(">") and line != QUOTE_MARK:
            last_unquoted = index
    for index, line in enumerate(lines):
        if line == QUOTE_MARK or is_signature_delimiter(line):
            return index
        stripped = line.lstrip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            if index > last_unquoted:
                return index
            continue
        if ORIGINAL_RE.match(line[:SCAN_CHARS]) or _is_attribution(lines, index):
            return index
        if _is_header_block(lines, index):
            if index > 0 and SEPARATOR_RE.match(lines[index - 1]):
                return index - 1
            return index
        if MOBILE_SIGNATURE_RE.match(stripped[:SCAN_CHARS]):
            return index
    return None


def is_forward(text: str, subject: str = "") -> bool:
    """Whether a message forwards another one (its history is the point, not noise)."""
    head = subject.lstrip().lower()[:12]
    if head.startswith(("fwd:", "fw:", "wg:", "tr:", "rv:", "fwd :", "fw :", "пересл:",
                        "переслано:", "enc:")):
        return True
    return any(FORWARD_RE.match(line[:SCAN_CHARS]) for line in text.split("\n")
               if line[:1] in "-bB ")


def split_quoted(text: str, subject: str = "") -> tuple[str, str]:
    """Return (new text, quoted history and signature); see the module docstring."""
    if not text:
        return "", ""
    lines = text.split("\n")
    cut = None if is_forward(text, subject) else find_split(lines)
    if cut is not None:
        new = "\n".join(line for line in lines[:cut] if line != QUOTE_MARK).strip()
        if new:
            quoted = "\n".join(line for line in lines[cut:] if line != QUOTE_MARK).strip("\n")
            return new, quoted
    return "\n".join(line for line in lines if line != QUOTE_MARK).strip(), ""
