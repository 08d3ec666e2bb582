"""The voice menu, opening hours and what the line says, in the caller's language.

All pure: the menu and hours are parsed from settings strings, the choice from
the caller's digits or speech, the prompts from a small phrase table (English
and Russian; other languages fall back to English).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
VOICES = {"en": "en-US", "ru": "ru-RU"}
PHRASES = {
    "en": {
        "hello_name": "Hello {name}, thank you for calling.",
        "hello": "Thank you for calling.",
        "fast_track": "As a valued customer, you are being fast-tracked to an agent.",
        "option": "For {label}, press {digit}.",
        "menu_end": "Or just tell us what you are calling about.",
        "queued": "Please hold, we are connecting you to the next available agent.",
        "position": "You are number {position} in line.",
        "wait": "Your estimated wait is about {minutes} minutes.",
        "wait_short": "An agent will be with you in about a minute.",
        "leave": "To leave a voicemail instead, press star.",
        "closed": "We are closed right now.",
        "nobody": "All our agents are busy.",
        "voicemail": "Please leave a message after the tone, and press any key when done.",
        "goodbye": "Thank you, goodbye.",
        "error": "Sorry, something went wrong. Please call again later.",
        "not_understood": "Sorry, I did not get that.",
    },
    "ru": {
        "hello_name": "Здравствуйте, {name}! Спасибо за звонок.",
        "hello": "Здравствуйте! Спасибо за звонок.",
        "fast_track": "Как ценного клиента, мы соединим вас с оператором вне очереди.",
        "option": "По вопросу «{label}» нажмите {digit}.",
        "menu_end": "Или просто скажите, по какому вы вопросу.",
        "queued": "Пожалуйста, оставайтесь на линии, мы соединяем вас с оператором.",
        "position": "Ваш номер в очереди: {position}.",
        "wait": "Примерное время ожидания: {minutes} мин.",
        "wait_short": "Оператор ответит примерно через минуту.",
        "leave": "Чтобы оставить голосовое сообщение, нажмите звёздочку.",
        "closed": "Сейчас мы не работаем.",
        "nobody": "Все операторы заняты.",
        "voicemail": "Оставьте сообщение после сигнала и нажмите любую клавишу.",
        "goodbye": "Спасибо, до свидания.",
        "error": "Извините, произошла ошибка. Пожалуйста, перезвоните позже.",
        "not_understood": "Извините, я не понял.",
    },
}


class MenuError(ValueError):
    """A menu or opening-hours setting that cannot be parsed."""


@dataclass(frozen=True)
class MenuOption:
    """One menu entry: the key, the queue it leads to, what is said and the words heard."""

    digit: str
    queue_slug: str
    label: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hours:
    """Opening hours: per weekday (0 = Monday) a list of (start, end) times, and a timezone."""

    spans: dict[int, tuple[tuple[dt.time, dt.time], ...]]
    tz: ZoneInfo


def language_of(language: str | None) -> str:
    """Return the phrase-table language for a customer's language (default English)."""
    code = (language or "en").split("-")[0].lower()
    return code if code in PHRASES else "en"


def say(language: str | None, key: str, **values: object) -> str:
    """Return a phrase in the caller's language."""
    return PHRASES[language_of(language)][key].format(**values)


def voice_language(language: str | None) -> str:
    """Return the ``<Say language>`` code for a caller's language."""
    return VOICES[language_of(language)]


@lru_cache(maxsize=32)
def parse_menu(raw: str) -> tuple[MenuOption, ...]:
    """Parse ``digit:queue:label[:word|word]`` entries separated by commas.

    Cached by the setting's text: every call's greeting and choice read the menu.
    """
    options: list[MenuOption] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) < 3 or not re.fullmatch(r"[0-9]", parts[0]) or not parts[1]:
            raise MenuError(f"menu entry {entry!r} must be digit:queue-slug:label[:words]")
        words = tuple(w.strip().lower() for w in parts[3].split("|") if w.strip()) \
            if len(parts) > 3 else ()
        if any(o.digit == parts[0] for o in options):
            raise MenuError(f"menu digit {parts[0]} is used twice")
        options.append(MenuOption(parts[0], parts[1], parts[2], words))
    return tuple(options)


def choose_option(menu: tuple[MenuOption, ...], digits: str, speech: str) -> MenuOption | None:
    """Return the option a caller picked by key or by saying one of its words (or its label)."""
    key = digits.strip()[:1]
    for option in menu:
        if key and option.digit == key:
            return option
    heard = set(re.findall(r"\w+", speech.lower()))
    if not heard:
        return None
    for option in menu:
        if heard & set(option.words) or heard & set(re.findall(r"\w+", option.label.lower())):
            return option
    return None


@lru_cache(maxsize=32)
def parse_hours(raw: str, timezone: str) -> Hours | None:
    """Parse ``mon-fri 09:00-18:00,sat 10:00-14:00``; empty means always open (None).

    Cached by the settings' text (every ringing call asks whether the line is open).
    """
    if not raw.strip():
        return None
    try:
        tz = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MenuError(f"unknown timezone {timezone!r}") from exc
    spans: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for entry in (e.strip().lower() for e in raw.split(",")):
        if not entry:
            continue
        match = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\d\d):(\d\d)-(\d\d):(\d\d)", entry)
        if not match or match.group(1) not in DAYS or (match.group(2) or "mon") not in DAYS:
            raise MenuError(f"opening hours entry {entry!r} must look like 'mon-fri 09:00-18:00'")
        first = DAYS.index(match.group(1))
        last = DAYS.index(match.group(2)) if match.group(2) else first
        h1, m1, h2, m2 = (int(match.group(i)) for i in range(3, 7))
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise MenuError(f"opening hours entry {entry!r} has an impossible time")
        start = dt.time(h1, m1)
        end = dt.time.max if (h2, m2) == (24, 0) else dt.time(h2, m2)
        day = first
        while True:
            spans.setdefault(day, []).append((start, end))
            if day == last:
                break
            day = (day + 1) % 7
    return Hours({d: tuple(s) for d, s in spans.items()}, tz)


def is_open(hours: Hours | None, now: dt.datetime) -> bool:
    """Whether the line is open at an aware instant."""
    if hours is None:
        return True
    local = now.astimezone(hours.tz)
    moment = local.time()
    return any(start <= moment < end for start, end in hours.spans.get(local.weekday(), ()))


def wait_phrase(language: str | None, position: int | None, wait_seconds: int | None) -> str:
    """Return the periodic announcement: place in line and estimated wait."""
    parts = []
    if position is not None:
        parts.append(say(language, "position", position=position))
    if wait_seconds is not None:
        minutes = max(1, round(wait_seconds / 60))
        parts.append(say(language, "wait_short") if wait_seconds <= 90
                     else say(language, "wait", minutes=minutes))
    return " ".join(parts)
