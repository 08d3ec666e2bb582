"""The interface's languages (English and Russian) with Flask-Babel, chosen per user.

Catalogues are ``contactcenter/translations/<locale>/LC_MESSAGES/messages.po``;
they are compiled to ``.mo`` files in the data folder when the app starts (and
again when a ``.po`` file is newer), so a fresh checkout needs no build step.
The desk's scripts get their strings from ``js_strings`` as a JSON block.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, gettext

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
LOCALES = ("en", "ru")

# Strings the desk's ES modules show; translated on the server, read by util.js's t().
JS_STRINGS = (
    "live", "reconnecting…", "offline", "Nothing open.", "Saved views…", "Name of this view:",
    "Wrap-up {time}", "Unknown caller", "Incoming call", "tier", "{n} s to answer", "New contact",
    "overdue {time}", "editing…", "draft saved", "draft not saved: offline", "draft restored",
    "Merge this ticket into ticket number:", "Link to ticket number:",
    "{name} replied while you were typing:", "someone", "Send anyway", "{name} is typing a reply",
    "{name} is viewing", "merged into", "related", "customer", "agent", "internal note",
    "message", "(no name)", "Organisation: {name}", "Tier: {tier}", "Lifetime value: {value}",
    "Contracts", "Purchases", "Canned response…", "unavailable", "met", "paused",
    "No suggestions yet.", "Insert answer", "Insert link", "Nothing to offer.",
    "Recorded: {outcome}", "accepted", "declined", "not_relevant",
    "{name} mentioned you on #{number}", "Merge which customer (id) into {name}?",
    "Merge a duplicate…",
    # the customer panel's identities (static/desk/identity.js)
    "Email", "Phone", "Chat id", "External id", "Remove", "Remove {address}",
    "Remove {address} from this customer?", "address or +7 916 123-45-67", "Add an address",
    "Type", "Address", "Add", "Merge that customer into this one", "Name", "Language", "Save",
    "Cancel", "Edit name and language",
    "This address already belongs to another customer: merge the two customers.",
    "This address already belongs to another customer: ask a supervisor to merge the two "
    "customers.",
    "A customer keeps at least one address: add the new one first.", "Not accepted: {reason}",
    # the workspace header's warning for mail that named a ticket without proof (ID-1)
    "Unverified sender", "Unverified sender: claims to reply to #{number}",
)


def js_strings() -> dict[str, str]:
    """The desk scripts' strings in the current locale."""
    return {key: gettext(key) for key in JS_STRINGS}


def compile_catalogs(target: Path) -> Path:
    """Compile every ``.po`` catalogue into ``target`` (only those that changed)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        locale = po.parents[1].name
        mo = target / locale / "LC_MESSAGES" / "messages.mo"
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        tmp = mo.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo)
    return target


def select_locale() -> str:
    """The signed-in user's language, else the browser's best match, else English."""
    from contactcenter.agent_ui.auth import session_user

    try:
        user = session_user()
    except Exception:  # noqa: BLE001 - outside a request or before the database is ready
        user = None
    if user is not None and user.locale in LOCALES:
        return user.locale
    return request.accept_languages.best_match(LOCALES) or "en"


def init_app(app: Flask, data_dir: Path) -> None:
    """Compile the catalogues and install Flask-Babel with the per-user locale."""
    target = compile_catalogs(data_dir / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    Babel(app, locale_selector=select_locale)
