"""The knowledge package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

Editors (``kb.edit``) write articles and move them through the workflow;
agents (``ticket.view``) and editors search live articles (internal and
public), get suggestions, give feedback, record an article's use in a ticket
and propose drafts from a ticket's answer. Ticket endpoints also check that the
caller may see that ticket. The public portal's endpoints live with the portal
(``contactcenter.agent_ui.knowledge``).

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.api.auth import current_user, error
from contactcenter.api.openapi import ERRORS, _json, _op, _path_int, _query, _ref
from contactcenter.app import db_session, services
from contactcenter.knowledge import service, usage
from contactcenter.knowledge.errors import (
    ArticleNotFoundError,
    ArticleValidationError,
    WorkflowError,
)
from contactcenter.knowledge.index import Filters
from contactcenter.knowledge.indexing import index_for
from contactcenter.knowledge.models import Article
from contactcenter.knowledge.serialize import article_json, version_json
from contactcenter.knowledge.suggestions import hit_json

bp = Blueprint("knowledge_api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])
ACTIONS = ("submit", "reject", "publish", "unpublish", "archive", "restore", "reviewed")
MAX_QUERY = 500


def _requires(*permissions: Permission) -> Callable[[F], F]:
    """Require a caller holding any of the permissions (401 without a caller, 403 without it)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return error(401, "authentication required")
            if not any(can(user, p) for p in permissions):
                return error(403, "permission denied")
            try:
                return view(*args, **kwargs)
            except ArticleNotFoundError:
                return error(404, "not found")
            except (ArticleValidationError, WorkflowError) as exc:
                db_session().rollback()
                return error(409 if isinstance(exc, WorkflowError) else 400, str(exc))

        return wrapper  # type: ignore[return-value]

    return decorate


editor_only = _requires(Permission.KB_EDIT)
reader = _requires(Permission.TICKET_VIEW, Permission.KB_EDIT)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ArticleValidationError("expected a JSON object")
    return data


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        raise ArticleValidationError(f"{name} must be an integer") from None
    return max(low, min(high, value))


def _ticket(number: int) -> Any:
    from contactcenter.tickets.models import Ticket

    ticket = db_session().scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or not can_view_ticket(db_session(), current_user(), ticket):
        raise ArticleNotFoundError("no such ticket")
    return ticket


@bp.get("/kb/search")
@reader
def search() -> Any:
    query = request.args.get("q", "")[:MAX_QUERY]
    filters = Filters(language=request.args.get("lang") or None,
                      category=(request.args.get("category") or "")[:100].lower() or None,
                      product=(request.args.get("product") or "")[:60] or None,
                      visibility=request.args.get("visibility") if request.args.get(
                          "visibility") in ("internal", "public") else None)
    hits = index_for(services().settings).search(query, filters,
                                                 limit=_int_arg("limit", 10, 1, 50))
    return jsonify(results=[{**hit_json(h), "snippet": h.snippet} for h in hits])


@bp.get("/kb/suggest")
@reader
def suggest() -> Any:
    hits = service.suggest_text(request.args.get("text", "")[:4000],
                                request.args.get("lang") or None, settings=services().settings,
                                limit=_int_arg("limit", 5, 1, 20))
    return jsonify(results=[hit_json(h) for h in hits])


@bp.get("/kb/articles")
@editor_only
def list_articles() -> Any:
    articles = service.list_articles(db_session(), status=request.args.get("status") or None,
                                     query=request.args.get("q", "")[:100],
                                     limit=_int_arg("limit", 100, 1, 500),
                                     offset=_int_arg("offset", 0, 0, 1_000_000))
    stale_days = services().settings.kb_stale_days
    return jsonify(items=[article_json(a, stale_days=stale_days) for a in articles])


@bp.post("/kb/articles")
@editor_only
def create_article() -> Any:
    data = _body()
    sess = db_session()
    user = current_user()
    assert user is not None
    translation_of = None
    if data.get("translation_of") is not None:
        translation_of = service.get_article(sess, int(data["translation_of"]))
    article = service.create_article(sess, service.clean_input(data), user.id,
                                     note=str(data.get("note", ""))[:300],
                                     translation_of=translation_of)
    sess.commit()
    return jsonify(article_json(article, body=True)), 201


@bp.get("/kb/articles/<int:article_id>")
@reader
def get_article(article_id: int) -> Any:
    sess = db_session()
    article = service.get_article(sess, article_id)
    if can(current_user(), Permission.KB_EDIT):
        return jsonify(article_json(article, body=True, session=sess))
    live = service.published_content(sess, article)
    if live is None:
        raise ArticleNotFoundError("not live")
    return jsonify(article_json(article, body=True, version=live))


@bp.put("/kb/articles/<int:article_id>")
@editor_only
def save_article(article_id: int) -> Any:
    data = _body()
    sess = db_session()
    article = service.get_article(sess, article_id)
    user = current_user()
    assert user is not None
    content = service.clean_input(data, service.input_of(article))
    version = service.save_article(sess, article, content, user.id,
                                   note=str(data.get("note", ""))[:300])
    sess.commit()
    return jsonify({**article_json(article, body=True), "saved": version is not None})


@bp.post("/kb/articles/<int:article_id>/<action>")
@editor_only
def workflow(article_id: int, action: str) -> Any:
    if action not in ACTIONS:
        return error(404, "not found")
    sess = db_session()
    article = service.get_article(sess, article_id)
    user = current_user()
    assert user is not None
    if action == "reviewed":
        service.mark_reviewed(sess, article, user.id)
    else:
        service.transition(sess, article, action, user.id,
                           review_required=services().settings.kb_review_required)
    sess.commit()
    return jsonify(article_json(article))


@bp.get("/kb/articles/<int:article_id>/versions")
@editor_only
def versions(article_id: int) -> Any:
    sess = db_session()
    article = service.get_article(sess, article_id)
    return jsonify(items=[version_json(v) for v in service.list_versions(sess, article)])


@bp.get("/kb/articles/<int:article_id>/diff")
@editor_only
def diff(article_id: int) -> Any:
    sess = db_session()
    article = service.get_article(sess, article_id)
    a = _int_arg("from", 1, 1, 1_000_000)
    b = _int_arg("to", article.current_version, 1, 1_000_000)
    return jsonify(**{"from": a, "to": b,
                      "changes": service.diff_versions(sess, article, a, b)})


@bp.post("/kb/articles/<int:article_id>/rollback")
@editor_only
def rollback(article_id: int) -> Any:
    data = _body()
    sess = db_session()
    article = service.get_article(sess, article_id)
    user = current_user()
    assert user is not None
    if not isinstance(data.get("version"), int):
        raise ArticleValidationError("version must be an integer")
    version = service.rollback(sess, article, data["version"], user.id)
    sess.commit()
    return jsonify({**article_json(article), "version": version_json(version)})


@bp.route("/kb/articles/<int:article_id>/feedback", methods=["GET", "POST"])
@reader
def feedback(article_id: int) -> Any:
    sess = db_session()
    article = service.get_article(sess, article_id)
    user = current_user()
    assert user is not None
    if request.method == "GET":
        if not can(user, Permission.KB_EDIT):
            return error(403, "permission denied")
        return jsonify(items=[{"helpful": f.helpful, "comment": f.comment, "source": f.source,
                               "at": f.created_at.isoformat()}
                              for f in usage.list_feedback(sess, article)])
    if not article.is_live:
        raise ArticleNotFoundError("not live")
    data = _body()
    usage.record_feedback(sess, article, bool(data.get("helpful")),
                          str(data.get("comment") or ""), source="agent", user_id=user.id)
    sess.commit()
    return jsonify(helpful_yes=article.helpful_yes, helpful_no=article.helpful_no), 201


@bp.get("/tickets/<int:number>/suggestions")
@_requires(Permission.TICKET_VIEW)
def ticket_suggestions(number: int) -> Any:
    ticket = _ticket(number)
    sess = db_session()
    results = service.suggestions_for_ticket(sess, ticket.id, services().settings)
    sess.commit()
    live = set(sess.scalars(select(Article.id).where(
        Article.id.in_([r["id"] for r in results]), Article.published_version.is_not(None),
        Article.status != "archived")))
    return jsonify(results=[r for r in results if r["id"] in live])


@bp.post("/tickets/<int:number>/kb-uses")
@_requires(Permission.TICKET_VIEW)
def record_use(number: int) -> Any:
    ticket = _ticket(number)
    data = _body()
    sess = db_session()
    user = current_user()
    assert user is not None
    if not isinstance(data.get("article_id"), int):
        raise ArticleValidationError("article_id must be an integer")
    article = service.get_article(sess, data["article_id"])
    live = service.published_content(sess, article)
    if live is None:
        raise ArticleNotFoundError("not live")
    kind = str(data.get("kind") or "answer")
    use = usage.record_use(sess, article, ticket, user.id, kind)
    sess.commit()
    from contactcenter.knowledge.text import plain_text

    link = f"{services().settings.public_url.rstrip('/')}/help/articles/{article.id}" \
        if live.visibility == "public" else None
    return jsonify(use_id=use.id, article_id=article.id, kind=kind, title=live.title,
                   text=plain_text(live.body) if kind == "answer" else None, link=link), 201


@bp.post("/tickets/<int:number>/kb-proposals")
@_requires(Permission.TICKET_VIEW)
def propose(number: int) -> Any:
    ticket = _ticket(number)
    data = _body()
    sess = db_session()
    user = current_user()
    assert user is not None
    body = str(data.get("body") or "")
    if not body.strip():
        raise ArticleValidationError("body is required")
    article = service.propose_from_ticket(sess, ticket, user.id, str(data.get("title") or ""),
                                          body)
    sess.commit()
    return jsonify(article_json(article)), 201


@bp.route("/kb/articles/<int:article_id>/attachments", methods=["GET", "POST"])
@reader
def attachments(article_id: int) -> Any:
    from contactcenter.knowledge import attachments as files

    sess = db_session()
    article = service.get_article(sess, article_id)
    editor = can(current_user(), Permission.KB_EDIT)
    if request.method == "GET":
        if not editor and not article.is_live:
            raise ArticleNotFoundError("not live")
        return jsonify(items=[_attachment_json(a) for a in files.list_attachments(sess, article)])
    if not editor:
        return error(403, "permission denied")
    upload = request.files.get("file")
    if upload is None:
        raise ArticleValidationError("send the file as multipart field 'file'")
    settings = services().settings
    row = files.add_attachment(sess, settings.data_dir, article, upload.filename or "",
                               upload.mimetype or "", upload.read(settings.attachment_max_bytes
                                                                  + 1),
                               settings.attachment_max_bytes)
    sess.commit()
    return jsonify(_attachment_json(row)), 201


def _attachment_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type,
            "size": row.size, "url": f"/api/v1/kb/attachments/{row.id}"}


@bp.get("/kb/attachments/<int:attachment_id>")
@reader
def download(attachment_id: int) -> Any:
    from contactcenter.knowledge.attachments import file_of
    from contactcenter.knowledge.models import ArticleAttachment

    sess = db_session()
    row = sess.get(ArticleAttachment, attachment_id)
    if row is None:
        raise ArticleNotFoundError("no attachment")
    article = service.get_article(sess, row.article_id)
    if not article.is_live and not can(current_user(), Permission.KB_EDIT):
        raise ArticleNotFoundError("not live")
    return send_download(file_of(services().settings.data_dir, row), row.filename)


def send_download(path: Any, name: str) -> Any:
    """Send a stored file as a download, never rendered from our origin."""
    from flask import send_file

    if not path.is_file():
        raise ArticleNotFoundError("file missing")
    response = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=name, max_age=0)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/kb/stale")
@editor_only
def stale() -> Any:
    days = services().settings.kb_stale_days
    return jsonify(items=[article_json(a, stale_days=days)
                          for a in service.list_stale(db_session(), days)])


@bp.get("/kb/gaps")
@editor_only
def gaps() -> Any:
    from contactcenter.accounts.policy import Permission, can
    from contactcenter.knowledge.gaps import gaps_report

    report = gaps_report(db_session(), services().settings, days=_int_arg("days", 30, 1, 365))
    if not can(current_user(), Permission.TICKET_VIEW_ALL):
        # Topics are stemmed words; example subjects are ticket content, which an editor
        # without access to tickets must not read here either.
        for topic in report["topics"]:
            topic["examples"] = []
    return jsonify(report)


_OBJ = {"type": "object"}
_RESULTS = {"type": "object", "properties": {"results": {"type": "array",
                                                        "items": _ref("KbHit")}}}
_ART = [_path_int("article_id")]
_TICKET = [_path_int("number")]

OPENAPI_SCHEMAS: dict[str, Any] = {
    "KbHit": {"type": "object", "required": ["id", "title", "score"], "properties": {
        "id": {"type": "integer"}, "external_id": {"type": ["string", "null"]},
        "title": {"type": "string"}, "score": {"type": "number"},
        "language": {"type": "string"}, "visibility": {"type": "string"},
        "category": {"type": "string"}, "snippet": {"type": "string"}}},
    "KbArticle": {"type": "object", "required": ["id", "title", "status"], "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"}, "status": {"type": "string"},
        "language": {"type": "string"}, "visibility": {"type": "string"},
        "body": {"type": "string"}, "html": {"type": "string"},
        "current_version": {"type": "integer"},
        "published_version": {"type": ["integer", "null"]}}},
    "KbArticleInput": {"type": "object", "required": ["title"], "properties": {
        "title": {"type": "string", "maxLength": 300}, "body": {"type": "string"},
        "category": {"type": "string", "maxLength": 100},
        "tags": {"type": "array", "items": {"type": "string"}},
        "products": {"type": "array", "items": {"type": "string"}},
        "language": {"type": "string", "enum": ["en", "ru"]},
        "visibility": {"type": "string", "enum": ["internal", "public"]},
        "note": {"type": "string"}, "translation_of": {"type": "integer"}}},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/kb/search": {"get": _op("Search live articles (internal and public), with snippets",
                              _json(_RESULTS), params=[
                                  _query("q", {"type": "string", "maxLength": MAX_QUERY}, True),
                                  _query("lang", {"type": "string"}),
                                  _query("category", {"type": "string"}),
                                  _query("product", {"type": "string"}),
                                  _query("visibility", {"type": "string"}),
                                  _query("limit", {"type": "integer", "minimum": 1,
                                                   "maximum": 50})])},
    "/kb/suggest": {"get": _op("Suggest articles for a text being typed", _json(_RESULTS),
                               params=[_query("text", {"type": "string"}, True),
                                       _query("lang", {"type": "string"}),
                                       _query("limit", {"type": "integer"})])},
    "/kb/articles": {
        "get": _op("Articles for editors (any state)", _json(_OBJ),
                   params=[_query("status", {"type": "string"}), _query("q", {"type": "string"}),
                           _query("limit", {"type": "integer"}),
                           _query("offset", {"type": "integer"})]),
        "post": _op("Create a draft article", _json(_ref("KbArticle"), "Created"),
                    status="201", body=_ref("KbArticleInput")),
    },
    "/kb/articles/{article_id}": {
        "get": _op("An article: the working copy for editors, the published version for "
                   "agents", _json(_ref("KbArticle")), params=_ART),
        "put": _op("Save new content as a new version", _json(_ref("KbArticle")), params=_ART,
                   body=_ref("KbArticleInput")),
    },
    "/kb/articles/{article_id}/{action}": {"post": _op(
        "A workflow step: submit, reject, publish, unpublish, archive, restore or reviewed",
        _json(_ref("KbArticle")), params=[*_ART, {"name": "action", "in": "path",
                                                  "required": True,
                                                  "schema": {"type": "string",
                                                             "enum": list(ACTIONS)}}])},
    "/kb/articles/{article_id}/versions": {"get": _op("An article's versions, newest first",
                                                      _json(_OBJ), params=_ART)},
    "/kb/articles/{article_id}/diff": {"get": _op(
        "What changed between two versions", _json(_OBJ),
        params=[*_ART, _query("from", {"type": "integer"}), _query("to", {"type": "integer"})])},
    "/kb/articles/{article_id}/rollback": {"post": _op(
        "Make an old version's content the working copy (as a new version)", _json(_OBJ),
        params=_ART, body={"type": "object", "required": ["version"],
                           "properties": {"version": {"type": "integer"}}})},
    "/kb/articles/{article_id}/feedback": {
        "get": _op("Feedback on an article, for editors", _json(_OBJ), params=_ART),
        "post": _op("An agent's \"was this helpful?\"", _json(_OBJ, "Created"), params=_ART,
                    status="201", body={"type": "object", "properties": {
                        "helpful": {"type": "boolean"},
                        "comment": {"type": "string", "maxLength": 2000}}}),
    },
    "/tickets/{number}/suggestions": {"get": _op(
        "A ticket's suggested articles (cached, computed when a message arrives)",
        _json(_RESULTS), params=_TICKET)},
    "/tickets/{number}/kb-uses": {"post": _op(
        "Record that an article's answer or link went into a reply; returns what to insert",
        _json(_OBJ, "Created"), params=_TICKET, status="201",
        body={"type": "object", "required": ["article_id"], "properties": {
            "article_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["answer", "link"]}}})},
    "/tickets/{number}/kb-proposals": {"post": _op(
        "Propose a draft article from a ticket's answer", _json(_ref("KbArticle"), "Created"),
        params=_TICKET, status="201", body={"type": "object", "required": ["body"],
                                            "properties": {"title": {"type": "string"},
                                                           "body": {"type": "string"}}})},
    "/kb/articles/{article_id}/attachments": {
        "get": _op("An article's attachments", _json(_OBJ), params=_ART),
        "post": {"summary": "Attach a file (multipart field 'file'; editors)",
                 "parameters": _ART,
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"type": "object", "required": ["file"], "properties": {
                         "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {"201": _json(_OBJ, "Created"), **ERRORS}},
    },
    "/kb/attachments/{attachment_id}": {"get": {
        "summary": "Download an article's attachment (always as a file)",
        "parameters": [_path_int("attachment_id")],
        "responses": {"200": {"description": "The file",
                              "content": {"application/octet-stream": {}}}, **ERRORS}}},
    "/kb/stale": {"get": _op("Live articles due for review", _json(_OBJ))},
    "/kb/gaps": {"get": _op("Frequent ticket topics no article helped with", _json(_OBJ),
                            params=[_query("days", {"type": "integer"})])},
}
