"""Form definitions and the server-side validation of a submission (pure).

A definition is a small declarative schema::

    {"slug": "support", "title": "Contact support", "queue": "support", "language": "en",
     "fields": [{"name": "email", "label": "E-mail", "type": "email", "required": true},
                {"name": "topic", "type": "select", "options": ["Billing", "Other"]},
                {"name": "message", "type": "textarea", "required": true},
                {"name": "file", "type": "file"}]}

Only the declared fields are read from a post (extra ones, such as
``priority`` or ``assignee``, are ignored); every value is kept raw and bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_email, normalise_phone

FIELD_TYPES = ("text", "textarea", "email", "phone", "number", "select", "checkbox", "file")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
HONEYPOT = "website"
RESERVED = {HONEYPOT, "submission_id"}
MAX_FIELDS = 30
LIMITS = {"text": 500, "textarea": 10_000, "email": 320, "phone": 40, "number": 40,
          "select": 200, "checkbox": 10, "file": 0}


class DefinitionError(ValueError):
    """A form definition that cannot be used."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form."""

    name: str
    label: str
    type: str = "text"
    required: bool = False
    options: tuple[str, ...] = ()
    max_length: int = 0

    @property
    def limit(self) -> int:
        """The most characters the field keeps."""
        return min(self.max_length or LIMITS[self.type], LIMITS[self.type] or 1)


@dataclass(frozen=True)
class FormSpec:
    """A form: its slug, title, queue slug, language and fields."""

    slug: str
    title: str
    fields: tuple[FieldSpec, ...]
    description: str = ""
    queue: str | None = None
    language: str | None = None
    acknowledge: bool = True
    success_message: str = ""

    def field(self, name: str) -> FieldSpec | None:
        """Return a field by name."""
        return next((f for f in self.fields if f.name == name), None)


@dataclass
class Submission:
    """A validated post: the values kept, the files, and the errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (field, name, bytes)
    errors: dict[str, str] = field(default_factory=dict)


def parse_field(raw: Any) -> FieldSpec:
    """Read one field definition."""
    if not isinstance(raw, dict):
        raise DefinitionError("a field must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED:
        raise DefinitionError(f"bad field name {name!r}")
    kind = raw.get("type", "text")
    if kind not in FIELD_TYPES:
        raise DefinitionError(f"field {name}: type must be one of {', '.join(FIELD_TYPES)}")
    options = raw.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options) \
            or len(options) > 100:
        raise DefinitionError(f"field {name}: options must be a list of texts")
    if kind == "select" and not options:
        raise DefinitionError(f"field {name}: a select needs options")
    max_length = raw.get("max_length", 0)
    if not isinstance(max_length, int) or max_length < 0:
        raise DefinitionError(f"field {name}: max_length must be a positive integer")
    label = raw.get("label") or name.replace("_", " ").capitalize()
    return FieldSpec(name=name, label=str(label)[:200], type=kind,
                     required=bool(raw.get("required", False)),
                     options=tuple(o[:200] for o in options), max_length=max_length)


def parse_form(raw: Any) -> FormSpec:
    """Read a form definition, or raise ``DefinitionError``."""
    if not isinstance(raw, dict):
        raise DefinitionError("a form must be an object")
    slug = raw.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise DefinitionError(f"bad form slug {slug!r}")
    fields_raw = raw.get("fields")
    if not isinstance(fields_raw, list) or not 0 < len(fields_raw) <= MAX_FIELDS:
        raise DefinitionError(f"form {slug}: 1 to {MAX_FIELDS} fields are needed")
    fields = tuple(parse_field(f) for f in fields_raw)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise DefinitionError(f"form {slug}: field names must be unique")
    if not any(f.type == "email" for f in fields):
        raise DefinitionError(f"form {slug}: an email field is needed (for the answer)")
    language = raw.get("language")
    queue = raw.get("queue")
    return FormSpec(slug=slug, title=str(raw.get("title") or slug)[:200], fields=fields,
                    description=str(raw.get("description") or "")[:2000],
                    queue=queue if isinstance(queue, str) and queue else None,
                    language=language if isinstance(language, str) and language else None,
                    acknowledge=bool(raw.get("acknowledge", True)),
                    success_message=str(raw.get("success_message") or "")[:2000])


def form_to_json(spec: FormSpec) -> dict[str, Any]:
    """Return a definition as JSON (what the embeddable endpoint and the admin page show)."""
    return {"slug": spec.slug, "title": spec.title, "description": spec.description,
            "queue": spec.queue, "language": spec.language, "acknowledge": spec.acknowledge,
            "success_message": spec.success_message,
            "fields": [{"name": f.name, "label": f.label, "type": f.type,
                        "required": f.required, "options": list(f.options),
                        "max_length": f.max_length} for f in spec.fields]}


def validate_submission(spec: FormSpec, values: dict[str, Any],
                        files: dict[str, tuple[str, bytes]], *, region: str = "US"
                        ) -> Submission:
    """Check a post against its form: required, types, options, lengths (files unchecked here).

    A phone number without its country code is read as one of ``region``.
    """
    out = Submission()
    for f in spec.fields:
        if f.type == "file":
            upload = files.get(f.name)
            if upload is not None and upload[1]:
                out.files.append((f.name, upload[0], upload[1]))
            elif f.required:
                out.errors[f.name] = "Attach a file."
            continue
        raw = values.get(f.name)
        if isinstance(raw, bool):
            raw = "yes" if raw else ""
        value = raw.strip() if isinstance(raw, str) else ("" if raw is None else str(raw))
        if f.type == "checkbox":
            value = "yes" if value.lower() in ("1", "on", "yes", "true") else ""
        if not value:
            if f.required:
                out.errors[f.name] = "This field is required."
            continue
        if len(value) > f.limit:
            out.errors[f.name] = f"At most {f.limit} characters."
            continue
        try:
            if f.type == "email":
                value = normalise_email(value)
            elif f.type == "phone":
                value = normalise_phone(value, region)
        except InvalidIdentityError:
            out.errors[f.name] = ("Enter a valid e-mail address." if f.type == "email"
                                  else "Enter a valid phone number.")
            continue
        if f.type == "number":
            try:
                float(value)
            except ValueError:
                out.errors[f.name] = "Enter a number."
                continue
        if f.type == "select" and value not in f.options:
            out.errors[f.name] = "Choose one of the options."
            continue
        out.values[f.name] = value
    return out


def submission_text(spec: FormSpec, values: dict[str, str]) -> tuple[str, str]:
    """Return the ticket's subject and text from a valid submission (labels and raw values)."""
    subject = values.get("subject") or values.get("topic") or spec.title
    lines = []
    long_fields = []
    for f in spec.fields:
        if f.name in values:
            if f.type == "textarea":
                long_fields.append(values[f.name])
            else:
                lines.append(f"{f.label}: {values[f.name]}")
    text = "\n\n".join(long_fields + (["\n".join(lines)] if lines else []))
    return subject[:300], text
