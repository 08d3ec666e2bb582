"""Read header fields leniently: address lists, MIME parameters, message-id lists, dates.

The standard library's address and parameter parsers split display names with
unquoted commas, mangle ``Name | [example.com] <a@b>``, and were quadratic on hostile
input (CPython gh-136063, gh-134873) in the versions we run on. These readers are
linear (a regex tokenizer with no nested quantifiers over the same characters) and
never raise; the caller applies the caps (address count, parameter count).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from contactcenter.channels.email.charsets import decode_raw_header, decode_text, decode_words

ADDRESS_TOKEN_RE = re.compile(
    r'"(?:[^"\\]|\\.)*(?:"|$)'      # quoted string (an unterminated one runs to the end)
    r"|\((?:[^()\\]|\\.)*(?:\)|$)"  # comment (not nested)
    r"|<[^<>]*(?:>|$)"              # angle address
    r"|[,;]"                        # separators
    r'|[^",;<(]+'                   # anything else
    r"|[<(]",                       # a stray bracket
    re.DOTALL,
)
MSGID_RE = re.compile(r"<([^<>\s]{1,450})>")
BARE_MSGID_RE = re.compile(r"[^<>\s,]{1,450}@[^<>\s,]{1,450}")
PARAM_SPLIT_RE = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)+')
CONTINUATION_RE = re.compile(r"^([^*]+)\*(\d{1,4})(\*?)$")
MAX_PARAMS = 64
MAX_CONTINUATIONS = 100


@dataclass(frozen=True)
class Mailbox:
    """One address from an address header; ``name`` is the decoded display name."""

    name: str
    address: str


def unfold(value: str) -> str:
    """Remove the line breaks of a folded header (RFC 5322 section 2.2.3)."""
    if "\n" not in value and "\r" not in value:
        return value
    return value.replace("\r", "").replace("\n", "")


def header_text(raw: str, hint: str | None = None) -> str:
    """Return a header's text: unfolded, raw 8-bit bytes decoded, encoded words decoded."""
    return decode_words(decode_raw_header(unfold(raw), hint), hint).strip()


def count_addresses(raw: str) -> int:
    """Return an upper bound on the addresses in a header, cheaply (one per '@')."""
    return raw.count("@")


def _unquote(token: str) -> str:
    inner = token[1:-1] if len(token) >= 2 and token.endswith('"') else token[1:]
    return re.sub(r"\\(.)", r"\1", inner) if "\\" in inner else inner


def _finish(phrase: list[str], angle: str | None, comment: str, hint: str | None
            ) -> Mailbox | None:
    if angle is not None:
        address = angle.strip("<> \t")
        name = " ".join(p.strip() for p in phrase if p.strip())
    else:
        joined = "".join(phrase).strip().strip("<>").strip()
        if "@" not in joined:
            return None
        if joined.startswith('"') and joined.endswith('"') and " " not in joined:
            joined = joined[1:-1]  # "user@example.com" written as a quoted string
        address, name = joined, ""
    name = name or comment
    if name.startswith('"'):
        name = _unquote(name)
    name = " ".join(decode_words(name, hint).split())
    if "@" in name and address.lower() not in name.lower():
        # A display name that looks like another address ("a@ours.example <b@evil>")
        # would mislead the agent; the address is what the mail system used.
        name = ""
    return Mailbox(name[:200], address.strip()[:320])


def parse_addresses(raw: str, hint: str | None = None) -> list[Mailbox]:
    """Parse an address list header leniently, in order.

    Display names with unquoted commas (``Ivanov, Ivan <ivan@x>``) are joined back to
    the address that follows them; groups (``undisclosed-recipients:;``) contribute
    their members; a quoted string holding an address is read as that address.
    """
    value = decode_raw_header(unfold(raw), hint)
    out: list[Mailbox] = []
    phrase: list[str] = []
    carry: list[str] = []
    angle: str | None = None
    comment = ""

    def end() -> None:
        nonlocal phrase, angle, comment, carry
        box = _finish(carry + phrase if angle is not None else phrase, angle, comment, hint)
        if box is not None:
            out.append(box)
            carry = []
        elif phrase and angle is None:
            fragment = " ".join(p.strip() for p in phrase if p.strip())
            carry = carry + [fragment + ","] if fragment and len(carry) < 4 else []
        phrase, angle, comment = [], None, ""

    for token in ADDRESS_TOKEN_RE.findall(value):
        first = token[0]
        if first in ",;":
            end()
        elif first == "<" and len(token) > 1:
            if angle is None:
                angle = token
            else:
                phrase.append(token)
        elif first == "(" and len(token) > 1:
            comment = comment or token.strip("()").strip()
        elif first == '"':
            phrase.append(token)
        else:
            if ":" in token and angle is None and "@" not in token.split(":", 1)[0]:
                token = token.split(":", 1)[1]  # a group's name
                phrase, carry = [], []
            phrase.append(token)
    end()
    return out


def parse_message_ids(raw: str, limit: int = 50) -> list[str]:
    """Return the message ids of In-Reply-To or References, ``<>`` stripped, in order."""
    value = unfold(raw)
    ids = MSGID_RE.findall(value)
    if not ids:
        ids = BARE_MSGID_RE.findall(value)
    seen: dict[str, None] = {}
    for item in ids:
        seen.setdefault(item, None)
    result = list(seen)
    if len(result) > limit:
        # Keep the thread's root and the most recent ids: those are what threads.
        result = result[:1] + result[len(result) - limit + 1:]
    return result


def parse_date(raw: str) -> dt.datetime | None:
    """Return the Date header as an aware datetime, or None when missing or unreadable."""
    value = unfold(raw).strip()
    if not value or len(value) > 200:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _param_value(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        return _unquote(raw)
    return raw


def parse_params(raw: str, hint: str | None = None) -> tuple[str, dict[str, str]]:
    """Split ``value; a=1; b*0*=utf-8''%D1%8F; b*1=x`` into the value and decoded parameters.

    RFC 2231 continuations and charsets are joined and decoded; RFC 2047 words inside
    a quoted parameter (sent by many clients against the rules) are decoded too.
    """
    value = decode_raw_header(unfold(raw), hint)
    pieces = PARAM_SPLIT_RE.findall(value)
    if not pieces:
        return "", {}
    main = pieces[0].strip().strip('"').lower()
    simple: dict[str, str] = {}
    parts: dict[str, dict[int, tuple[str, bool]]] = {}
    for piece in pieces[1:MAX_PARAMS + 1]:
        key, eq, val = piece.partition("=")
        if not eq:
            continue
        key = key.strip().lower()
        if not key:
            continue
        match = CONTINUATION_RE.match(key)
        if match:
            chunks = parts.setdefault(match.group(1), {})
            if len(chunks) < MAX_CONTINUATIONS:
                chunks[int(match.group(2))] = (_param_value(val), bool(match.group(3)))
        elif key.endswith("*"):
            parts.setdefault(key[:-1], {})[0] = (_param_value(val), True)
        else:
            simple.setdefault(key, _param_value(val))
    for name, chunks in parts.items():
        simple[name] = _join_rfc2231(chunks, hint)
    for name, val in simple.items():
        if "=?" in val:
            simple[name] = decode_words(val, hint)
    return main, simple


def _join_rfc2231(chunks: dict[int, tuple[str, bool]], hint: str | None) -> str:
    charset = None
    data = bytearray()
    order = sorted(chunks)
    for index in order:
        text, encoded = chunks[index]
        if encoded:
            if index == order[0] and text.count("'") >= 2:
                charset, _lang, text = text.split("'", 2)
            data += unquote_to_bytes(text)
        else:
            data += text.encode("utf-8", "surrogateescape")
    return decode_text(bytes(data), charset or None, hint)
