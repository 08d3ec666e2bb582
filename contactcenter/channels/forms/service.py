"""Web form use cases: definitions (from a file or the admin page) and submissions.

``submit_form`` validates a post against its form (only declared fields are
read), checks files by magic bytes, stores the raw payload and ingests it in
one transaction with the acknowledgement e-mail (``automail``); the submission
id makes a double submit a duplicate that answers with the same ticket number.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry
from contactcenter.channels.chat.uploads import UploadError, check_upload
from contactcenter.channels.forms.adapter import CHANNEL, external_id, payload_to_contact
from contactcenter.channels.forms.models import WebForm
from contactcenter.channels.forms.schema import (
    FieldSpec,
    FormSpec,
    Submission,
    form_to_json,
    parse_form,
    submission_text,
    validate_submission,
)
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.tickets.intake import IntakeResult, ingest_payload
from contactcenter.tickets.models import Inbox, Queue, Ticket

log = logging.getLogger(__name__)

OFFLINE_FORM = FormSpec(
    slug="chat-offline", title="Message from the chat widget", fields=(
        FieldSpec("name", "Name", "text", False),
        FieldSpec("email", "E-mail", "email", True),
        FieldSpec("text", "Message", "textarea", True, max_length=5000)))
MAX_SUBMISSION_ID = 64


class FormRefused(ValueError):
    """A submission with field errors (``errors``: field name -> message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Outcome:
    """What a submission became: the ticket number, a duplicate, mail to deliver."""

    ticket_number: int | None
    duplicate: bool
    deliver: list[int] = field(default_factory=list)


def spec_of(form: WebForm) -> FormSpec:
    """Return a stored form's definition."""
    data = {"slug": form.slug, "title": form.title, "description": form.description,
            "language": form.language, "fields": form.fields, "acknowledge": form.acknowledge,
            "success_message": form.success_message}
    return parse_form(data)


def find_form(session: Session, slug: str) -> WebForm | None:
    """Return an enabled form by slug."""
    if not isinstance(slug, str) or len(slug) > 64:
        return None
    return session.scalar(select(WebForm).where(WebForm.slug == slug, WebForm.enabled.is_(True)))


def save_form(session: Session, raw: Any) -> WebForm:
    """Create or update a form from its definition (no commit); raises ``DefinitionError``."""
    spec = parse_form(raw)
    queue_id = None
    if spec.queue:
        queue = session.scalar(select(Queue).where(Queue.slug == spec.queue))
        if queue is None:
            from contactcenter.channels.forms.schema import DefinitionError

            raise DefinitionError(f"form {spec.slug}: no queue {spec.queue!r}")
        queue_id = queue.id
    form = session.scalar(select(WebForm).where(WebForm.slug == spec.slug))
    if form is None:
        form = WebForm(slug=spec.slug)
        session.add(form)
    data = form_to_json(spec)
    form.title, form.description, form.language = spec.title, spec.description, spec.language
    form.fields, form.acknowledge = data["fields"], spec.acknowledge
    enabled = raw.get("enabled", True) if isinstance(raw, dict) else True
    form.success_message, form.queue_id = spec.success_message, queue_id
    form.enabled = enabled if isinstance(enabled, bool) else True
    session.flush()
    return form


def read_forms_file(path: str | Path) -> list[Any]:
    """Return the definitions of a JSON forms file (a list, or ``{"forms": [...]}``)."""
    from contactcenter.channels.forms.schema import DefinitionError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefinitionError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DefinitionError(f"{path} is not valid JSON: {exc}") from exc
    items = data.get("forms") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise DefinitionError("the forms file must hold a list of forms")
    return items


def load_forms_file(session: Session, path: str | Path) -> list[WebForm]:
    """Create or update every form of a JSON file, all or none; commits.

    Idempotent: loading the same file again changes nothing, so every web
    process may load it at start. Forms missing from the file are left as
    they are (the admin page may have made them).
    """
    items = read_forms_file(path)
    try:
        forms = [save_form(session, item) for item in items]
    except Exception:
        session.rollback()
        raise
    session.commit()
    return forms


def load_configured_forms(db: Any, path: str) -> int | None:
    """Load ``CONTACTCENTER_FORMS_FILE`` at app start; return how many forms, None on error.

    A bad file is logged and leaves the stored forms as they were: the site's
    forms keep working while the file is fixed. Two processes starting at once
    may race on a new slug; the loser logs it and the winner's row stands.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from contactcenter.channels.forms.schema import DefinitionError

    try:
        with db.session() as session:
            return len(load_forms_file(session, path))
    except (DefinitionError, SQLAlchemyError) as exc:
        log.error("forms file %s not loaded: %s", path, exc)
        return None


def list_forms(session: Session) -> list[WebForm]:
    """Return every form, enabled or not, by slug."""
    return list(session.scalars(select(WebForm).order_by(WebForm.slug)))


def get_form(session: Session, slug: str) -> WebForm | None:
    """Return a form by slug, enabled or not."""
    if not isinstance(slug, str) or len(slug) > 64:
        return None
    return session.scalar(select(WebForm).where(WebForm.slug == slug))


def form_definition(session: Session, form: WebForm) -> dict[str, Any]:
    """Return a stored form as the JSON definition it was made from (queue by slug)."""
    data = form_to_json(spec_of(form))
    queue = session.get(Queue, form.queue_id) if form.queue_id is not None else None
    data["queue"] = queue.slug if queue is not None else None
    data["enabled"] = form.enabled
    return data


def form_inbox(session: Session, slug: str, queue_id: int | None) -> Inbox:
    """Return the inbox of a form (made on first use), routed to the form's queue."""
    inbox = session.scalar(select(Inbox).where(Inbox.channel == CHANNEL, Inbox.address == slug))
    if inbox is None:
        inbox = Inbox(name=f"Form {slug}", channel=CHANNEL, address=slug, queue_id=queue_id)
        session.add(inbox)
        session.commit()
    elif inbox.queue_id != queue_id:
        inbox.queue_id = queue_id
        session.commit()
    return inbox


def check_files(settings: Settings, submission: Submission) -> list[dict[str, str]]:
    """Check each file by magic bytes and size; record errors on the submission."""
    allowed = [t.strip() for t in settings.forms_attachment_types.split(",") if t.strip()]
    out = []
    for field_name, filename, data in submission.files:
        try:
            name, content_type = check_upload(filename, data, allowed,
                                              settings.forms_attachment_max_bytes)
        except UploadError as exc:
            submission.errors[field_name] = str(exc).capitalize() + "."
            continue
        out.append({"filename": name, "content_type": content_type,
                    "data": base64.b64encode(data).decode()})
    return out


def _valid_submission_id(value: object) -> str | None:
    if isinstance(value, str) and 8 <= len(value) <= MAX_SUBMISSION_ID and \
            all(c.isalnum() or c in "-_" for c in value):
        return value
    return None


def submit(session: Session, settings: Settings, registry: ChannelRegistry, spec: FormSpec,
           queue_id: int | None, submission_id: object, values: dict[str, Any],
           files: dict[str, tuple[str, bytes]], *, page_url: str = "",
           now: dt.datetime | None = None) -> Outcome:
    """Validate and ingest one submission; raises ``FormRefused`` with field errors."""
    from contactcenter.channels.email.templates import choose_language, render_acknowledgement
    from contactcenter.channels.forms.automail import store_automatic_email

    now = now or utcnow()
    sid = _valid_submission_id(submission_id)
    submission = validate_submission(spec, values, files, region=settings.phone_region)
    attachments = check_files(settings, submission)
    if sid is None:
        submission.errors["submission_id"] = "The form expired; reload the page and try again."
    if submission.errors:
        raise FormRefused(submission.errors)
    assert sid is not None
    email_field = next(f.name for f in spec.fields if f.type == "email")
    subject, text = submission_text(spec, submission.values)
    payload = {"form": spec.slug, "submission_id": sid,
               "email": submission.values[email_field],
               "name": submission.values.get("name", ""), "subject": subject, "text": text,
               "language": spec.language, "attachments": attachments, "page_url": page_url}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    inbox = form_inbox(session, spec.slug, queue_id)
    contact = payload_to_contact(payload, inbox_id=inbox.id)
    acks: list[int] = []

    def after_apply(sess: Session, result: IntakeResult, _c: Any, _p: bytes) -> None:
        if result.status != "created" or result.written is None or not spec.acknowledge:
            return
        ticket = result.written[0]
        language = choose_language(spec.language, text)
        ack_subject, ack_text = render_acknowledgement(language, ticket.number, subject,
                                                       settings.smtp_from_name)
        message, _reason = store_automatic_email(sess, ticket, payload["email"], ack_subject,
                                                 ack_text, "form_ack", settings, now)
        if message is not None:
            acks.append(message.id)

    result, _raw_id = ingest_payload(session, CHANNEL, external_id(spec.slug, sid), raw,
                                     registry, settings, inbox_id=inbox.id,
                                     content_type="application/json", contact=contact,
                                     after_apply=after_apply)
    if result is None:
        return Outcome(None, False)
    number = result.ticket_number
    if number is None and result.ticket_id is not None:
        ticket = session.get(Ticket, result.ticket_id)
        number = ticket.number if ticket is not None else None
    return Outcome(number, result.status == "duplicate", acks)


def submit_form(session: Session, settings: Settings, registry: ChannelRegistry, form: WebForm,
                submission_id: object, values: dict[str, Any],
                files: dict[str, tuple[str, bytes]], *, page_url: str = "") -> Outcome:
    """Submit to a stored form."""
    return submit(session, settings, registry, spec_of(form), form.queue_id, submission_id,
                  values, files, page_url=page_url)


def submit_offline_message(session: Session, settings: Settings, registry: ChannelRegistry,
                           client_id: str, values: dict[str, Any], *, page_url: str = ""
                           ) -> Outcome:
    """Turn the widget's message form (chat closed or unstaffed) into a ticket in the chat queue."""
    queue = session.scalar(select(Queue).where(Queue.slug == settings.chat_queue))
    return submit(session, settings, registry, OFFLINE_FORM, queue.id if queue else None,
                  client_id.replace(".", "-"), values, {}, page_url=page_url)
