"""Normalise addresses so that one person's address always looks the same."""

from __future__ import annotations

import re

import phonenumbers

from contactcenter.customers.errors import InvalidIdentityError

# A local part is a dot-atom, or (RFC 5321 section 4.1.2) a quoted string without '@',
# brackets or backslashes (so that "a@evil.example"@ours.example stays refused).
EMAIL_RE = re.compile(r'^(?:[^@\s<>()\[\],;:"]{1,64}|"[^"@\\<>\r\n]{1,62}")'
                      r"@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")


def normalise_email(raw: str) -> str:
    """Return an email address lowercased and stripped, or raise for a malformed one."""
    value = raw.strip().strip("<>").strip().lower()
    if not EMAIL_RE.match(value):
        raise InvalidIdentityError(f"not an email address: {raw[:100]!r}")
    return value


def phone_region(raw: object, name: str = "region") -> str:
    """Return a country code phone numbers can be read in (``ru`` is ``RU``), or raise."""
    region = raw.strip().upper() if isinstance(raw, str) else ""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidIdentityError(
            f"{name} must be a two-letter country code like US or RU, got {raw!r}")
    return region


def normalise_phone(raw: str, default_region: str = "US") -> str:
    """Return a phone number in E.164 (``+79161234567``), or raise for one that is not valid."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentityError(f"not a phone number: {raw[:100]!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentityError(f"not a possible phone number: {raw[:100]!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(kind: str, raw: str, default_region: str = "US") -> str:
    """Normalise an address of any kind."""
    if kind == "email":
        return normalise_email(raw)
    if kind == "phone":
        return normalise_phone(raw, default_region)
    if kind in {"chat", "external"}:
        value = raw.strip()
        if not value or len(value) > 320:
            raise InvalidIdentityError(f"{kind} id must be 1 to 320 characters")
        return value
    raise InvalidIdentityError(f"unknown identity kind {kind!r}")
