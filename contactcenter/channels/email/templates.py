"""Texts of automatic e-mail in the customers' languages, and a guess at that language.

Templates are plain text (the sender derives the HTML alternative by escaping
it) and take ``{number}``, ``{subject}`` and ``{company}``. The values are put
in by ``str.format`` on the template only, so braces in a customer's subject
are inert. The subject keeps RFC 3834's advised ``Auto:`` prefix in every
language: it marks the message as automatic for people and filters alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_LANGUAGE = "en"
MAX_SUBJECT_ECHO = 120
CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
LATIN_RE = re.compile(r"[A-Za-z]")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class MessageTemplate:
    """A subject and a plain-text body with ``{number}``, ``{subject}``, ``{company}``."""

    subject: str
    text: str


ACKNOWLEDGEMENTS: dict[str, MessageTemplate] = {
    "en": MessageTemplate(
        subject="Auto: Request received: {subject} [#{number}]",
        text=(
            "Hello,\n\n"
            "Thank you for writing to us. We have received your message and opened "
            "request #{number}. A member of our team will answer you as soon as possible.\n\n"
            "To add anything, simply reply to this message and keep [#{number}] in the "
            "subject.\n\n"
            "This is an automatic message.\n\n"
            "{company}\n"
        ),
    ),
    "ru": MessageTemplate(
        subject="Auto: Обращение получено: {subject} [#{number}]",
        text=(
            "Здравствуйте!\n\n"
            "Спасибо за обращение. Мы получили ваше письмо и зарегистрировали его под "
            "номером #{number}. Наш специалист ответит вам в ближайшее время.\n\n"
            "Если хотите что-то добавить, просто ответьте на это письмо, сохранив "
            "[#{number}] в теме.\n\n"
            "Это автоматическое сообщение.\n\n"
            "{company}\n"
        ),
    ),
}


def detect_language(text: str) -> str | None:
    """Guess ``ru`` when Cyrillic letters make up at least a third of the letters.

    A crude heuristic, on purpose: it only has to pick between the templates we
    have, and a Russian message quoting English (or the reverse) still leans the
    right way. Returns None when there are too few letters to tell.
    """
    sample = text[:5000]
    cyrillic = len(CYRILLIC_RE.findall(sample))
    latin = len(LATIN_RE.findall(sample))
    if cyrillic + latin < 3:
        return None
    return "ru" if cyrillic * 3 >= cyrillic + latin else "en"


def choose_language(customer_language: str | None, text: str) -> str:
    """Return the template language: the customer's if we have it, else a guess, else English."""
    primary = re.split(r"[-_]", (customer_language or "").strip().lower(), maxsplit=1)[0]
    if primary in ACKNOWLEDGEMENTS:
        return primary
    guessed = detect_language(text)
    return guessed if guessed in ACKNOWLEDGEMENTS else DEFAULT_LANGUAGE


# The postmaster notice for mail over the size limit (RELIABILITY 2.3, ATT-2): the
# sender learns it never reached anyone, instead of waiting for an answer.
TOO_LARGE: dict[str, MessageTemplate] = {
    "en": MessageTemplate(
        subject="Auto: Message too large: {subject} [#{number}]",
        text=(
            "Hello,\n\n"
            "Your message \"{subject}\" is {size}, larger than the {limit} we can "
            "accept, so it has not reached our team. Please send it again with smaller "
            "attachments, or share large files as a link. We keep the reference #{number}.\n\n"
            "This is an automatic message.\n\n"
            "{company}\n"
        ),
    ),
    "ru": MessageTemplate(
        subject="Auto: Письмо слишком большое: {subject} [#{number}]",
        text=(
            "Здравствуйте!\n\n"
            "Ваше письмо «{subject}» занимает {size}, больше допустимых {limit}, "
            "поэтому оно не дошло до наших специалистов. Пожалуйста, отправьте его снова "
            "с вложениями поменьше или пришлите большие файлы ссылкой. Номер обращения: "
            "#{number}.\n\n"
            "Это автоматическое сообщение.\n\n"
            "{company}\n"
        ),
    ),
}


def render_too_large(language: str, number: int, subject: str, company: str, size: int,
                     limit: int) -> tuple[str, str]:
    """Return the "message too large" notice's (subject, text); sizes are in bytes."""
    template = TOO_LARGE.get(language) or TOO_LARGE[DEFAULT_LANGUAGE]
    return _render(template, number, subject, company, size=human_size(size, language),
                   limit=human_size(limit, language))


def human_size(size: int, language: str = DEFAULT_LANGUAGE) -> str:
    """Return a byte count as people read it: ``28.6 MB``, ``6.1 KB`` (``МБ`` in Russian)."""
    units = ("КБ", "МБ") if language == "ru" else ("KB", "MB")
    if size >= 1_048_576:
        return f"{size / 1_048_576:.1f} {units[1]}"
    return f"{max(size, 0) / 1024:.1f} {units[0]}"


def _render(template: MessageTemplate, number: int, subject: str, company: str,
            **extra: str) -> tuple[str, str]:
    echo = CONTROL_RE.sub(" ", subject or "").strip()
    if len(echo) > MAX_SUBJECT_ECHO:
        echo = echo[: MAX_SUBJECT_ECHO - 1].rstrip() + "…"
    values = {"number": number, "subject": echo, "company": CONTROL_RE.sub(" ", company).strip(),
              **extra}
    return template.subject.format(**values), template.text.format(**values)


def render_acknowledgement(language: str, number: int, subject: str, company: str
                           ) -> tuple[str, str]:
    """Return the acknowledgement's (subject, text) for a new ticket in a language."""
    template = ACKNOWLEDGEMENTS.get(language) or ACKNOWLEDGEMENTS[DEFAULT_LANGUAGE]
    echo = CONTROL_RE.sub(" ", subject or "").strip()
    if len(echo) > MAX_SUBJECT_ECHO:
        echo = echo[: MAX_SUBJECT_ECHO - 1].rstrip() + "…"
    values = {"number": number, "subject": echo, "company": CONTROL_RE.sub(" ", company).strip()}
    return template.subject.format(**values), template.text.format(**values)
