"""The chat widget's hosted files, visitor uploads, and a test page.

``/chat/widget.js`` is the one script a site embeds::

    <script src="https://support.example.com/chat/widget.js" defer
            data-user-id="42" data-user-hash="HMAC-SHA256 hex" data-user-name="Anna"></script>

It loads the Socket.IO client from ``/vendor/socket.io.min.js`` and draws the
widget in a shadow root. Uploads go to ``/chat/upload`` (multipart, the
visitor's token in the form), answered with CORS headers for allowed origins.
``/chat/test-page`` exists only when testing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from contactcenter.app import csrf, db_session, services

log = logging.getLogger(__name__)

bp = Blueprint("chat_ui", __name__)


def _cors(response: Any) -> Any:
    from contactcenter.channels.chat.sockets import is_allowed_origin

    origin = request.headers.get("Origin")
    if origin and is_allowed_origin(services().settings, origin, request.environ):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


@bp.get("/chat/widget.js")
def widget() -> Any:
    response = current_app.send_static_file("chat/widget.js")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public script, no credentials
    return response


@bp.post("/chat/upload")
@csrf.exempt
def upload() -> Any:
    """Take one file into the visitor's live chat, checked by magic bytes."""
    from contactcenter.channels.chat import service
    from contactcenter.channels.chat.errors import ChatError
    from contactcenter.channels.chat.identity import visitor_from_token
    from contactcenter.channels.chat.ratelimit import rate_limiter
    from contactcenter.channels.chat.sockets import client_address, is_allowed_origin
    from contactcenter.channels.chat.uploads import UploadError, check_upload

    svc = services()
    settings = svc.settings
    origin = request.headers.get("Origin")
    if origin and not is_allowed_origin(settings, origin, request.environ):
        abort(403)
    visitor_id = visitor_from_token(settings.secret_key, request.form.get("token"))
    if visitor_id is None:
        return _cors(jsonify(error="unknown visitor")), 403
    limiter = rate_limiter(settings.redis_url)
    for key, limit in ((f"chat-upload:{visitor_id}", settings.chat_uploads_per_hour),
                       (f"chat-upload-addr:{client_address(request.environ, settings)}",
                        settings.chat_uploads_per_hour * 5)):
        verdict = limiter.hit(key, limit, 3600)
        if not verdict.allowed:
            response = _cors(jsonify(error="rate_limited", retry_after=verdict.retry_after))
            response.headers["Retry-After"] = str(verdict.retry_after)
            return response, 429
    file = request.files.get("file")
    client_id = request.form.get("client_id", "")
    if file is None or not (0 < len(client_id) <= 64):
        return _cors(jsonify(error="file and client_id are required")), 400
    data = file.read(settings.chat_upload_max_bytes + 1)
    allowed = [t.strip() for t in settings.chat_upload_types.split(",") if t.strip()]
    try:
        name, content_type = check_upload(file.filename or "upload", data, allowed,
                                          settings.chat_upload_max_bytes)
    except UploadError as exc:
        status = 413 if "larger" in str(exc) else 415
        return _cors(jsonify(error=str(exc))), status
    sess = db_session()
    try:
        chat = service.get_visitor_chat(sess, visitor_id, request.form.get("chat_id"))
        result = service.post_visitor_message(
            sess, settings, svc.registry, chat, client_id, request.form.get("text", "")[:5000],
            [service.Upload(name, content_type, data)])
    except ChatError as exc:
        sess.rollback()
        return _cors(jsonify(error=str(exc))), 400
    if result is None:
        return _cors(jsonify(error="the file could not be stored")), 500
    return _cors(jsonify(message_id=result.message_id, duplicate=result.status == "duplicate"))


@bp.get("/chat/test-page")
def test_page() -> Any:
    """A page of a customer's site with the widget on it (tests only)."""
    if not current_app.config.get("TESTING"):
        abort(404)
    from contactcenter.channels.chat.identity import identity_hash

    user_id = request.args.get("user", "")
    secret = services().settings.chat_identity_secret
    user_hash = identity_hash(secret, user_id) if user_id and secret else ""
    return render_template("chat/test_page.html", user_id=user_id, user_hash=user_hash)


@bp.get("/chat/panel-test/<chat_id>")
def panel_test(chat_id: str) -> Any:
    """A page that mounts the agent chat panel alone (tests only; the desk mounts it too)."""
    if not current_app.config.get("TESTING"):
        abort(404)
    from contactcenter.agent_ui.auth import session_user

    if session_user() is None:
        abort(403)
    return render_template("chat/panel_test.html", chat_id=chat_id)
