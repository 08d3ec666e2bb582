"""SMS text rules: opt-out keywords, encodings, segment counts and splitting long replies.

Keywords follow Twilio's Advanced Opt-Out defaults: the whole message, trimmed
and case-insensitive, is the keyword. Segments follow 3GPP TS 23.038: a
message that fits the GSM 03.38 alphabet is 160 septets (153 per part when
concatenated, characters of the extension table count twice); anything else is
UCS-2, 70 code units (67 per part), where characters outside the Basic
Multilingual Plane (most emoji) take two. Twilio concatenates up to 1600
characters itself; longer replies are split here into several messages, at a
word boundary when there is one, never inside a surrogate pair or a
combining sequence.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    """What an inbound keyword message asks for."""

    STOP = "stop"
    START = "start"
    HELP = "help"


STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                        "REVOKE", "OPTOUT", "СТОП"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def keyword_of(body: str) -> Keyword | None:
    """Return the opt-out keyword a message consists of, or None."""
    word = body.strip().strip(".!").upper()
    if word in STOP_WORDS:
        return Keyword.STOP
    if word in START_WORDS:
        return Keyword.START
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


def is_gsm(text: str) -> bool:
    """Whether a text fits the GSM 03.38 alphabet (basic plus extension table)."""
    return all(c in GSM_BASIC or c in GSM_EXTENDED for c in text)


def _units(text: str, gsm: bool) -> int:
    if gsm:
        return sum(2 if c in GSM_EXTENDED else 1 for c in text)
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def segment_count(text: str) -> int:
    """Return how many SMS segments a text takes (what the carrier bills)."""
    gsm = is_gsm(text)
    units = _units(text, gsm)
    single, multi = (160, 153) if gsm else (70, 67)
    if units <= single:
        return 1 if text else 0
    return -(-units // multi)


def _joins_previous(char: str) -> bool:
    return bool(unicodedata.combining(char)) or char in "\u200d\ufe0f"


def _cut_point(text: str, limit: int) -> tuple[int, bool]:
    """Return where to cut ``text`` (head at most ``limit`` characters) and if at a space."""
    cut = limit
    # Never separate a base character from the combining marks (or ZWJ sequence) after it.
    while cut > 1 and (_joins_previous(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    for boundary in range(cut - 1, limit // 2 - 1, -1):
        if text[boundary] in " \n" and not _joins_previous(text[boundary + 1]):
            return boundary + 1, True
    return cut, False


def split_message(text: str, limit: int = 1600) -> list[str]:
    """Split a reply into message bodies of at most ``limit`` characters each.

    Python strings are code points, so a surrogate pair is never split; cuts
    prefer the last space or newline in the second half of a part.
    """
    if limit < 10:
        raise ValueError("limit must be at least 10 characters")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut, at_space = _cut_point(rest, limit)
        head = rest[:cut - 1] if at_space else rest[:cut]
        rest = rest[cut:]
        if head.strip():
            parts.append(head)
    if rest.strip():
        parts.append(rest)
    return parts
