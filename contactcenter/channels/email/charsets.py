"""Decode bytes of mail in any charset, trusting a declared charset only as far as it holds.

Real mail mislabels its charsets: ``us-ascii`` or ``utf-8`` over windows-1251 bytes,
``koi8-r`` over windows-1251, names Python does not know (``iso-gb2312``), raw 8-bit
headers with no charset at all, UTF-8 with a few Latin-1 bytes mixed in. ``decode_text``
never raises: it decodes strictly with the declared charset when that works and looks
right, and otherwise detects (a fast single-byte heuristic for the common Cyrillic and
Western cases, charset-normalizer for the rest). ``decode_words`` decodes RFC 2047
encoded words leniently (bad padding, split multi-byte characters, unknown charsets).
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

# Declared names that Python does not know or that a superset decodes better (the
# WHATWG encoding standard makes the same substitutions: latin-1 is read as
# windows-1252, gb2312 as gb18030, and so on).
ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252", "l1": "cp1252", "cp819": "cp1252", "ibm819": "cp1252",
    "us-ascii": "ascii", "ansi_x3.4-1968": "ascii", "iso646-us": "ascii", "ascii": "ascii",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "cp936": "gb18030", "iso-gb2312": "gb18030", "gb_2312-80": "gb18030", "csgb2312": "gb18030",
    "chinese": "gb18030", "x-euc-cn": "gb18030",
    "big5": "big5hkscs", "x-x-big5": "big5hkscs", "cn-big5": "big5hkscs",
    "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "windows-31j": "cp932", "shift-jis": "cp932",
    "iso-2022-jp": "iso2022_jp_2", "csiso2022jp": "iso2022_jp_2",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "korean": "cp949",
    "ksc5601": "cp949", "x-windows-949": "cp949",
    "windows-874": "cp874", "tis-620": "cp874", "iso-8859-11": "cp874",
    "iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "iso-8859-8-e": "iso8859-8",
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7", "x-unicode20utf8": "utf-8",
    "x-mac-cyrillic": "mac-cyrillic", "x-mac-roman": "mac-roman", "macintosh": "mac-roman",
    "koi8-ru": "koi8-u", "cp-1251": "cp1251", "win-1251": "cp1251", "cp-1252": "cp1252",
}
UNKNOWN = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "charset", "none",
                     "8bit", "7bit", "binary", "x-user-defined", "auto", "text"})
# Codecs that are not a text encoding of mail, or that do surprising things with bytes.
REFUSED_CODECS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape",
                            "undefined", "mbcs", "oem"})
STATEFUL_7BIT = frozenset({"utf-7", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
                           "iso2022_jp_3", "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_kr",
                           "hz"})
CYRILLIC_SINGLE_BYTE = frozenset({"cp1251", "koi8-r", "koi8-u", "iso8859-5", "cp866",
                                  "mac-cyrillic"})
WESTERN_SINGLE_BYTE = frozenset({"cp1252", "iso8859-1", "iso8859-15", "mac-roman"})
SNIFF_BYTES = 32 * 1024
SHORT_CJK_ORDER = (("gb2312", "gb18030"), ("big5", "big5hkscs"), ("shift_jis", "cp932"),
                   ("euc_jp", "euc_jp"), ("euc_kr", "cp949"))
HIGH_RUN_RE = re.compile(rb"[\x80-\xff]{2,}")
BELOW_80 = bytes(range(0x80))
BELOW_C0 = bytes(range(0xC0))
BELOW_E0 = bytes(range(0xE0))
NOT_ASCII_LETTERS = bytes(b for b in range(256) if not (65 <= b <= 90 or 97 <= b <= 122))
SUSPICIOUS_RE = re.compile(r"[а-яё][А-ЯЁ]|[\u2500-\u259f]")
CYRILLIC_RE = re.compile(r"[а-яёА-ЯЁ\u2500-\u259f]|[^а-яёА-ЯЁ\u2500-\u259f]{1,40}")
# Letter frequencies of Russian text, per mille, as weights (frequency / 40 - 0.5).
RUSSIAN_WEIGHTS = {letter: per_mille / 40 - 0.5 for letter, per_mille in zip(
    "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
    (110, 85, 80, 74, 67, 63, 55, 47, 45, 44, 35, 32, 30, 28, 26, 20, 19, 17, 17, 16, 16,
     14, 12, 10, 9, 7, 6, 5, 4, 3, 3, 0.4, 1), strict=True)}
RUSSIAN_LETTERS = frozenset(RUSSIAN_WEIGHTS) | frozenset("".join(RUSSIAN_WEIGHTS).upper())
ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*)\?=")
BASE64_JUNK_RE = re.compile(rb"[^A-Za-z0-9+/]")


def _utf8_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not UTF-8 as windows-1252 (mail mixing UTF-8 and Latin-1)."""
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start:exc.end].decode("cp1252", "replace"), exc.end


codecs.register_error("contactcenter-cp1252", _utf8_fallback)


@lru_cache(maxsize=256)
def codec_for(declared: str | None) -> str | None:
    """Return the Python codec for a declared charset name, or None when unknown or unusable."""
    if not declared:
        return None
    name = declared.strip().strip("\"'").lower().split("*", 1)[0]
    if name in UNKNOWN or len(name) > 40:
        return None
    name = ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in REFUSED_CODECS:
        return None
    return info.name


def decode_text(data: bytes, declared: str | None = None, hint: str | None = None) -> str:
    """Return text for bytes, never raising.

    :param declared: the charset the sender declared (may be missing, unknown or wrong).
    :param hint: another charset the same message declares elsewhere, tried first when the
        declared one fails (a raw 8-bit header is usually in the body's charset).
    """
    if not data:
        return ""
    codec = codec_for(declared)
    if data.isascii():
        if codec in STATEFUL_7BIT:
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                pass
        return data.decode("ascii")
    if codec is not None and codec != "ascii":
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            text = None
        if text is not None:
            if codec == "utf-8":
                return text
            if codec in CYRILLIC_SINGLE_BYTE or codec in WESTERN_SINGLE_BYTE:
                return _check_single_byte(data, codec, text)
            return text
    return detect_text(data, hint)


def _check_single_byte(data: bytes, codec: str, text: str) -> str:
    """Second-guess a declared single-byte charset that decoded without error (it always does)."""
    try:
        return data.decode("utf-8")  # valid multi-byte UTF-8 is never an accident
    except UnicodeDecodeError:
        pass
    if codec in CYRILLIC_SINGLE_BYTE and not SUSPICIOUS_RE.search(text, 0, SNIFF_BYTES):
        return text  # no case flipped inside a word, no box drawing: the label holds
    guess = _guess_single_byte(data[:SNIFF_BYTES])
    if guess is None or guess == codec:
        return text
    if codec in ("cp1251", "koi8-r") and guess in ("cp1251", "koi8-r"):
        # The two are often swapped; switch only on evidence (case flipping inside
        # words), never on case counts alone: a subject may well be all capitals.
        other = "koi8-r" if codec == "cp1251" else "cp1251"
        sample = data[:SNIFF_BYTES]
        if cyrillic_score(sample, other) > cyrillic_score(sample, codec) + 0.3:
            return data.decode(other, "replace")
        return text
    if codec in CYRILLIC_SINGLE_BYTE:
        return text  # iso-8859-5, cp866, mac-cyrillic: trust the label
    if codec in WESTERN_SINGLE_BYTE and guess in ("cp1251", "koi8-r") \
            and len(data[:SNIFF_BYTES].translate(None, BELOW_80)) >= 8:
        return data.decode(guess, "replace")  # Russian text sent as "iso-8859-1"
    return text


def detect_text(data: bytes, hint: str | None = None) -> str:
    """Decode bytes whose charset is unknown or wrong."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    hinted = codec_for(hint)
    if hinted and hinted not in ("utf-8", "ascii"):
        try:
            text = data.decode(hinted)
        except UnicodeDecodeError:
            pass
        else:
            if hinted in CYRILLIC_SINGLE_BYTE or hinted in WESTERN_SINGLE_BYTE:
                return _check_single_byte(data, hinted, text)
            return text
    sample = data[:SNIFF_BYTES]
    if _mostly_utf8(sample):
        return data.decode("utf-8", "contactcenter-cp1252")
    guess = _guess_single_byte(sample)
    if guess is not None:
        return data.decode(guess, "replace")
    if len(sample.translate(None, BELOW_80)) < 200:
        # Too little for a statistical guess: try the double-byte charsets strictly,
        # the most common in mail first (GB2312 then Big5, Shift_JIS, EUC-JP, EUC-KR).
        for narrow, wide in SHORT_CJK_ORDER:
            try:
                data.decode(narrow)
            except UnicodeDecodeError:
                continue
            return data.decode(wide, "replace")
    return _detect_with_charset_normalizer(data)


def _mostly_utf8(sample: bytes) -> bool:
    """Whether bytes are UTF-8 with a few stray single-byte characters mixed in."""
    text = sample.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    return good >= 2 and good >= bad


def _guess_single_byte(sample: bytes) -> str | None:
    """Tell Russian single-byte text (windows-1251 or KOI8-R) from Western (windows-1252).

    Russian words are runs of high bytes; a Western text has isolated accented letters
    among many ASCII ones. Among the Cyrillic letters (0xC0-0xFF in both charsets) lower
    case dominates running text: windows-1251 puts it at 0xE0-0xFF, KOI8-R at 0xC0-0xDF.
    Double-byte CJK encodings put many bytes in 0x80-0xBF (where Russian text has only
    a few punctuation marks) and write long runs without spaces: those are left to
    charset-normalizer (None).
    """
    high = len(sample.translate(None, BELOW_80))
    if high == 0:
        return None
    runs = HIGH_RUN_RE.findall(sample)
    in_runs = sum(map(len, runs))
    letters = len(sample.translate(None, NOT_ASCII_LETTERS))
    if in_runs * 2 < high or (high * 4 < letters and in_runs * 10 < high * 9):
        return "cp1252"
    upper_half = len(sample.translate(None, BELOW_C0))
    low_share = (high - upper_half) / high
    average_run = in_runs / len(runs)
    if low_share > 0.3 or (low_share > 0.1 and average_run >= 12):
        return None
    as_1251, as_koi8 = cyrillic_score(sample, "cp1251"), cyrillic_score(sample, "koi8-r")
    if abs(as_1251 - as_koi8) < 0.15:
        e0 = len(sample.translate(None, BELOW_E0))
        guess = "cp1251" if e0 * 2 >= upper_half else "koi8-r"
    else:
        guess = "cp1251" if as_1251 > as_koi8 else "koi8-r"
    # Latin-1 read as Cyrillic gives rare letters and case flips inside words
    # ("Größe" -> "GrцЯe"); no Russian text scores that low.
    return guess if max(as_1251, as_koi8) >= 0.35 else "cp1252"


def cyrillic_score(sample: bytes, codec: str) -> float:
    """Return how much decoded text looks like Russian: near 0.9 for real text, near 0.25
    for the wrong Cyrillic charset, below zero for Latin-1 read as Cyrillic.

    Each Cyrillic letter scores by its frequency in Russian (``RUSSIAN_WEIGHTS``); a
    capital right after a lower-case letter (case flipped inside a word, as in "GrцЯe")
    scores -2.
    """
    text = sample.decode(codec, "replace")
    score = 0.0
    letters = 0
    previous_lower = False
    for char in CYRILLIC_RE.findall(text):
        if "\u2500" <= char <= "\u259f":  # box drawing: KOI8-R's 0x80-0xBF, never text
            letters += 1
            score -= 2.0
            continue
        if len(char) > 1 or char not in RUSSIAN_LETTERS:  # between words
            previous_lower = False
            continue
        letters += 1
        lower = char.islower()
        score += -2.0 if previous_lower and not lower else RUSSIAN_WEIGHTS[char.lower()]
        previous_lower = lower
    return score / letters if letters else 0.0


def _detect_with_charset_normalizer(data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:SNIFF_BYTES * 2]).best()
    except (ValueError, LookupError, RuntimeError, TypeError, UnicodeError):
        best = None  # a detector failure must not lose the text: fall back below
    if best is not None and best.encoding:
        try:
            return data.decode(best.encoding, "replace")
        except LookupError:
            pass
    return data.decode("utf-8", "contactcenter-cp1252")


def decode_raw_header(value: str, hint: str | None = None) -> str:
    """Decode a header as the compat32 parser stores it (8-bit bytes as surrogate escapes)."""
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value  # already text (a caller passed a decoded string)
    return decode_text(data, None, hint)


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    raw = payload.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(raw, header=True)
    raw = BASE64_JUNK_RE.sub(b"", raw)
    raw = raw[: len(raw) - len(raw) % 4] if len(raw) % 4 == 1 else raw + b"=" * (-len(raw) % 4)
    try:
        return binascii.a2b_base64(raw)
    except binascii.Error:
        return None


def decode_words(value: str, hint: str | None = None) -> str:
    """Decode RFC 2047 encoded words in an (unfolded) header value, leniently.

    Whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2), and
    adjacent words in the same charset are joined as bytes before decoding, so a
    multi-byte character split across two words survives. A word that cannot be decoded
    is kept as it was.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    after_word = False
    pending: list[bytes] = []
    pending_charset = ""

    def flush() -> None:
        nonlocal pending
        if pending:
            out.append(decode_text(b"".join(pending), pending_charset, hint))
            pending = []

    for match in ENCODED_WORD_RE.finditer(value):
        gap = value[pos:match.start()]
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if gap and not (after_word and gap.isspace()):
            flush()
            out.append(gap)
        if data is None:
            flush()
            out.append(match.group(0))
            after_word = False
        else:
            if pending and charset != pending_charset:
                flush()
            pending.append(data)
            pending_charset = charset
            after_word = True
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)
