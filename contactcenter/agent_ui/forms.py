"""Hosted web forms (public pages and the embeddable endpoint).

``GET /forms/<slug>`` renders the form with a fresh submission id (so a double
click or a resubmitted page is one ticket); ``POST /forms/<slug>`` takes an HTML
form post (the page again with field errors, status 400, or the thank-you page)
and ``POST /forms/<slug>.json`` the same as JSON or multipart from another site
(``{"ticket": n}``, or ``{"errors": {...}}`` with 422). Both are CSRF-exempt by
design (they are posted from other sites); the honeypot field, per-address rate
limits and the submission id stand in for a captcha.

``/admin/forms`` (admins: ``Permission.USER_ADMIN``) lists the forms and edits one
as its JSON definition, validated as ``contactcenter forms load`` validates a file.
``CONTACTCENTER_FORMS_FILE`` is loaded when the blueprint is registered (app start).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from contactcenter.accounts.policy import Permission
from contactcenter.agent_ui.auth import page_login_required
from contactcenter.app import csrf, db_session, services

bp = Blueprint("forms_ui", __name__)

MAX_FILE_FIELDS = 5


def _limited() -> Any | None:
    from contactcenter.channels.chat.ratelimit import rate_limiter
    from contactcenter.channels.chat.sockets import client_address

    settings = services().settings
    address = client_address(request.environ, settings)
    verdict = rate_limiter(settings.redis_url).hit(f"form-addr:{address}",
                                                   settings.forms_posts_per_hour, 3600)
    return None if verdict.allowed else verdict.retry_after


def _cors(response: Any) -> Any:
    from contactcenter.channels.chat.sockets import is_allowed_origin

    origin = request.headers.get("Origin")
    if origin and is_allowed_origin(services().settings, origin, request.environ):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _form_or_404(slug: str) -> Any:
    from contactcenter.channels.forms.service import find_form, spec_of

    form = find_form(db_session(), slug)
    if form is None:
        abort(404)
    return form, spec_of(form)


def _files(spec: Any) -> dict[str, tuple[str, bytes]]:
    settings = services().settings
    out: dict[str, tuple[str, bytes]] = {}
    for f in spec.fields:
        if f.type == "file" and f.name in request.files and len(out) < MAX_FILE_FIELDS:
            upload = request.files[f.name]
            data = upload.read(settings.forms_attachment_max_bytes + 1)
            if data:
                out[f.name] = (upload.filename or "upload", data)
    return out


def _submit(slug: str, values: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Run a submission; return (outcome or None, errors or None, spec)."""
    from contactcenter.channels.forms.schema import HONEYPOT
    from contactcenter.channels.forms.service import FormRefused, submit_form

    form, spec = _form_or_404(slug)
    if values.get(HONEYPOT):
        # A bot filled the hidden field: answer as if all went well, store nothing.
        from contactcenter.channels.forms.service import Outcome

        return Outcome(None, False), None, spec
    svc = services()
    try:
        outcome = submit_form(db_session(), svc.settings, svc.registry, form,
                              values.get("submission_id"), values, _files(spec),
                              page_url=request.headers.get("Referer", "")[:2000])
    except FormRefused as exc:
        return None, exc.errors, spec
    for message_id in outcome.deliver:
        try:
            svc.jobs.enqueue("outbox.deliver", message_id, key=f"deliver:{message_id}")
        except Exception:  # noqa: BLE001 - the outbox sweep delivers it
            pass
    return outcome, None, spec


def _too_many(retry_after: int, as_json: bool) -> Any:
    if as_json:
        response = _cors(jsonify(error="too many submissions; try again later",
                                 retry_after=retry_after))
    else:
        response = make_response(render_template("forms/limited.html"))
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


@bp.get("/forms/<slug>")
def show(slug: str) -> Any:
    _form, spec = _form_or_404(slug)
    return render_template("forms/form.html", spec=spec, values={}, errors={},
                           submission_id=secrets.token_urlsafe(16))


@bp.post("/forms/<slug>")
@csrf.exempt
def post(slug: str) -> Any:
    retry = _limited()
    if retry is not None:
        return _too_many(retry, False)
    values = {k: v for k, v in request.form.items()}
    outcome, errors, spec = _submit(slug, values)
    if errors:
        return render_template("forms/form.html", spec=spec, values=values, errors=errors,
                               submission_id=values.get("submission_id")
                               or secrets.token_urlsafe(16)), 400
    return render_template("forms/thanks.html", spec=spec, outcome=outcome)


@bp.get("/forms/<slug>.json")
def schema(slug: str) -> Any:
    from contactcenter.channels.forms.schema import form_to_json

    _form, spec = _form_or_404(slug)
    data = form_to_json(spec)
    data.pop("queue", None)
    data["submission_id"] = secrets.token_urlsafe(16)
    return _cors(jsonify(data))


@bp.post("/forms/<slug>.json")
@csrf.exempt
def post_json(slug: str) -> Any:
    retry = _limited()
    if retry is not None:
        return _too_many(retry, True)
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _cors(jsonify(error="the body must be a JSON object")), 400
        values = body
    else:
        values = {k: v for k, v in request.form.items()}
    outcome, errors, _spec = _submit(slug, values)
    if errors:
        return _cors(jsonify(errors=errors)), 422
    return _cors(jsonify(ticket=outcome.ticket_number, duplicate=outcome.duplicate))


# --- the forms admin page (admins only) ---------------------------------------------------

MAX_DEFINITION = 100_000
NEW_FORM = {"slug": "new-form", "title": "New form", "queue": None, "language": "en",
            "fields": [{"name": "email", "label": "E-mail", "type": "email", "required": True},
                       {"name": "message", "label": "Message", "type": "textarea",
                        "required": True}]}


def _admin_user() -> Any:
    from contactcenter.agent_ui.auth import session_user

    return session_user()


@bp.get("/admin/forms")
@page_login_required(Permission.USER_ADMIN)
def admin_list() -> Any:
    """List every form (enabled or not) with links to its page and its editor."""
    from contactcenter.channels.forms.service import form_definition, list_forms

    session = db_session()
    forms = [form_definition(session, f) for f in list_forms(session)]
    return render_template("forms/admin_list.html", forms=forms, user=_admin_user(),
                           saved=request.args.get("saved", "")[:64])


@bp.get("/admin/forms/new")
@page_login_required(Permission.USER_ADMIN)
def admin_new() -> Any:
    """Edit a new form, starting from a small definition."""
    return render_template("forms/admin_edit.html", slug=None, user=_admin_user(), error="",
                           definition=json.dumps(NEW_FORM, indent=2, ensure_ascii=False))


@bp.get("/admin/forms/<slug>/edit")
@page_login_required(Permission.USER_ADMIN)
def admin_edit(slug: str) -> Any:
    """Edit one form's definition as JSON."""
    from contactcenter.channels.forms.service import form_definition, get_form

    session = db_session()
    form = get_form(session, slug)
    if form is None:
        abort(404)
    definition = json.dumps(form_definition(session, form), indent=2, ensure_ascii=False)
    return render_template("forms/admin_edit.html", slug=slug, user=_admin_user(), error="",
                           definition=definition)


@bp.post("/admin/forms")
@page_login_required(Permission.USER_ADMIN)
def admin_save() -> Any:
    """Validate and store a definition; show it again with the error when it is not valid."""
    from contactcenter.channels.forms.schema import DefinitionError
    from contactcenter.channels.forms.service import save_form

    text = request.form.get("definition", "")
    slug = request.form.get("slug") or None
    error = ""
    if len(text) > MAX_DEFINITION:
        error = f"The definition is longer than {MAX_DEFINITION} characters."
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            error = f"Not valid JSON: {exc}"
        else:
            session = db_session()
            try:
                form = save_form(session, raw)
            except DefinitionError as exc:
                session.rollback()
                error = str(exc)
            else:
                session.commit()
                return redirect(url_for("forms_ui.admin_list", saved=form.slug))
    return render_template("forms/admin_edit.html", slug=slug, user=_admin_user(), error=error,
                           definition=text), 400


@bp.record_once
def _load_forms_file(state: Any) -> None:
    """Load ``CONTACTCENTER_FORMS_FILE`` when the app starts (idempotent, see the service)."""
    from contactcenter.channels.forms.service import load_configured_forms

    wired = services(state.app)
    if wired.settings.forms_file:
        load_configured_forms(wired.db, wired.settings.forms_file)
