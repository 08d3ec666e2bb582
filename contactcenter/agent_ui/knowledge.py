"""The knowledge pages: the editors' workspace under ``/kb`` and the public portal under ``/help``.

Editor pages need ``kb.edit`` and are plain server-rendered forms (CSRF
protected). The portal needs no sign-in and only ever reads live, public
articles: search goes through the index with the ``public`` filter (drafts and
internal articles are not there to be found, not even in snippets), and
article pages check the database's state again. Its JSON endpoints (live
suggestions while a customer types in the web form or chat, and the
"left after reading" beacon) cap every input.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import distinct, func, select

from contactcenter.accounts.policy import Permission
from contactcenter.agent_ui.auth import page_login_required, session_user
from contactcenter.app import csrf, db_session, services
from contactcenter.knowledge import service, usage
from contactcenter.knowledge.errors import (
    ArticleNotFoundError,
    ArticleValidationError,
    WorkflowError,
)
from contactcenter.knowledge.index import Filters
from contactcenter.knowledge.indexing import index_for
from contactcenter.knowledge.models import Article, ArticleStatus
from contactcenter.knowledge.text import render_markdown

bp = Blueprint("knowledge_ui", __name__)

MAX_QUERY = 200
PORTAL_LIMIT = 20
ACTIONS = ("submit", "reject", "publish", "unpublish", "archive", "restore", "reviewed")


def _user_id() -> int:
    user = session_user()
    assert user is not None
    return user.id


def _article_or_404(article_id: int) -> Article:
    try:
        return service.get_article(db_session(), article_id)
    except ArticleNotFoundError:
        abort(404)


# --- editors -------------------------------------------------------------------------

@bp.get("/kb")
@page_login_required(Permission.KB_EDIT)
def editor_list() -> Any:
    sess = db_session()
    status = request.args.get("status", "")
    settings = services().settings
    if status == "stale":
        articles = service.list_stale(sess, settings.kb_stale_days)
    else:
        articles = service.list_articles(
            sess, status=status if status in {s.value for s in ArticleStatus} else None,
            query=request.args.get("q", "")[:100])
    return render_template("knowledge/editor_list.html", articles=articles, status=status,
                           q=request.args.get("q", "")[:100], stale_days=settings.kb_stale_days,
                           is_stale=service.is_stale)


@bp.route("/kb/new", methods=["GET", "POST"])
@page_login_required(Permission.KB_EDIT)
def editor_new() -> Any:
    if request.method == "POST":
        sess = db_session()
        try:
            content = service.clean_input(_form_fields())
        except ArticleValidationError as exc:
            flash(str(exc), "error")
            return render_template("knowledge/editor_edit.html", article=None,
                                   form=request.form, versions=[], feedback=[]), 400
        article = service.create_article(sess, content, _user_id(),
                                         note=request.form.get("note", "")[:300])
        sess.commit()
        return redirect(url_for("knowledge_ui.editor_edit", article_id=article.id))
    return render_template("knowledge/editor_edit.html", article=None, form={}, versions=[],
                           feedback=[])


def _form_fields() -> dict[str, Any]:
    return {name: request.form.get(name, "") for name in
            ("title", "body", "category", "tags", "products", "language", "visibility")}


@bp.route("/kb/articles/<int:article_id>", methods=["GET", "POST"])
@page_login_required(Permission.KB_EDIT)
def editor_edit(article_id: int) -> Any:
    from contactcenter.knowledge.attachments import list_attachments

    sess = db_session()
    article = _article_or_404(article_id)
    if request.method == "POST":
        try:
            content = service.clean_input(_form_fields(), service.input_of(article))
            version = service.save_article(sess, article, content, _user_id(),
                                           note=request.form.get("note", "")[:300])
            sess.commit()
            flash(f"Saved as version {version.number}." if version else "Nothing changed.",
                  "info")
        except (ArticleValidationError, WorkflowError) as exc:
            sess.rollback()
            flash(str(exc), "error")
        return redirect(url_for("knowledge_ui.editor_edit", article_id=article_id))
    form = {"title": article.title, "body": article.body, "category": article.category,
            "tags": ", ".join(article.tag_list), "products": ", ".join(article.product_list),
            "language": article.language, "visibility": article.visibility}
    return render_template(
        "knowledge/editor_edit.html", article=article, form=form,
        versions=service.list_versions(sess, article),
        feedback=usage.list_feedback(sess, article, limit=50),
        translations=service.translations_of(sess, article),
        attachments=list_attachments(sess, article),
        preview=render_markdown(article.body),
        stale=service.is_stale(article, services().settings.kb_stale_days),
        review_required=services().settings.kb_review_required)


@bp.post("/kb/articles/<int:article_id>/attachments")
@page_login_required(Permission.KB_EDIT)
def editor_attach(article_id: int) -> Any:
    from contactcenter.knowledge.attachments import add_attachment

    sess = db_session()
    article = _article_or_404(article_id)
    upload = request.files.get("file")
    settings = services().settings
    try:
        if upload is None or not upload.filename:
            raise ArticleValidationError("choose a file")
        add_attachment(sess, settings.data_dir, article, upload.filename, upload.mimetype or "",
                       upload.read(settings.attachment_max_bytes + 1),
                       settings.attachment_max_bytes)
        sess.commit()
        flash("File attached.", "info")
    except ArticleValidationError as exc:
        sess.rollback()
        flash(str(exc), "error")
    return redirect(url_for("knowledge_ui.editor_edit", article_id=article_id))


@bp.post("/kb/articles/<int:article_id>/<action>")
@page_login_required(Permission.KB_EDIT)
def editor_action(article_id: int, action: str) -> Any:
    sess = db_session()
    article = _article_or_404(article_id)
    try:
        if action == "rollback":
            version = service.rollback(sess, article, int(request.form.get("version", "0")),
                                       _user_id())
            flash(f"Rolled back: version {version.number} has that content.", "info")
        elif action == "reviewed":
            service.mark_reviewed(sess, article, _user_id())
            flash("Marked as reviewed.", "info")
        elif action in ACTIONS:
            service.transition(sess, article, action, _user_id(),
                               review_required=services().settings.kb_review_required)
            flash(f"Article is now {article.status.replace('_', ' ')}.", "info")
        else:
            abort(404)
        sess.commit()
    except (ArticleValidationError, WorkflowError, ArticleNotFoundError, ValueError) as exc:
        sess.rollback()
        flash(str(exc), "error")
    return redirect(url_for("knowledge_ui.editor_edit", article_id=article_id))


@bp.get("/kb/articles/<int:article_id>/diff")
@page_login_required(Permission.KB_EDIT)
def editor_diff(article_id: int) -> Any:
    sess = db_session()
    article = _article_or_404(article_id)
    try:
        a = int(request.args.get("from", "1"))
        b = int(request.args.get("to", str(article.current_version)))
        changes = service.diff_versions(sess, article, a, b)
    except (ValueError, ArticleNotFoundError):
        abort(404)
    return render_template("knowledge/editor_diff.html", article=article, a=a, b=b,
                           changes=changes)


# --- public portal -------------------------------------------------------------------

def _public_article(article_id: int) -> tuple[Article, Any]:
    sess = db_session()
    article = sess.get(Article, article_id)
    live = service.published_content(sess, article) if article is not None else None
    if article is None or live is None or live.visibility != "public":
        abort(404)
    return article, live


def _categories() -> list[tuple[str, int]]:
    rows = db_session().execute(
        select(Article.category, func.count(distinct(Article.id)))
        .where(Article.published_version.is_not(None), Article.status != ArticleStatus.ARCHIVED,
               Article.visibility == "public", Article.category != "")
        .group_by(Article.category).order_by(Article.category))
    return [(str(c), int(n)) for c, n in rows]


@bp.get("/help")
def portal_home() -> Any:
    return render_template("knowledge/portal_home.html", categories=_categories(), q="")


@bp.get("/help/search")
def portal_search() -> Any:
    q = request.args.get("q", "")[:MAX_QUERY]
    lang = request.args.get("lang") if request.args.get("lang") in ("en", "ru") else None
    hits = index_for(services().settings).search(
        q, Filters(visibility="public", language=lang), limit=PORTAL_LIMIT) if q.strip() else []
    return render_template("knowledge/portal_search.html", q=q, hits=hits)


@bp.get("/help/categories/<name>")
def portal_category(name: str) -> Any:
    articles = db_session().scalars(
        select(Article).where(Article.category == name[:100],
                              Article.published_version.is_not(None),
                              Article.status != ArticleStatus.ARCHIVED,
                              Article.visibility == "public").order_by(Article.title).limit(200)
    ).all()
    # The list shows the live title: an edited draft's title stays with the editors.
    items = [(a, service.published_content(db_session(), a)) for a in articles]
    items = [(a, v) for a, v in items if v is not None and v.visibility == "public"]
    if not items:
        abort(404)
    return render_template("knowledge/portal_category.html", name=name, items=items, q="")


@bp.get("/help/articles/<int:article_id>")
def portal_article(article_id: int) -> Any:
    article, live = _public_article(article_id)
    usage.record_view(db_session(), article)
    db_session().commit()
    from contactcenter.knowledge.attachments import list_attachments

    return render_template("knowledge/portal_article.html", article=article, live=live,
                           html=render_markdown(live.body), q="",
                           attachments=list_attachments(db_session(), article),
                           thanks=request.args.get("thanks"))


@bp.post("/help/articles/<int:article_id>/feedback")
def portal_feedback(article_id: int) -> Any:
    article, _live = _public_article(article_id)
    helpful = request.form.get("helpful") == "yes"
    usage.record_feedback(db_session(), article, helpful,
                          request.form.get("comment", "")[:usage.MAX_COMMENT], source="customer")
    db_session().commit()
    return redirect(url_for("knowledge_ui.portal_article", article_id=article_id,
                            thanks="1") + "#feedback")


@bp.get("/help/attachments/<int:attachment_id>")
def portal_attachment(attachment_id: int) -> Any:
    """Download a file of a live public article."""
    from contactcenter.knowledge.api import send_download
    from contactcenter.knowledge.attachments import file_of
    from contactcenter.knowledge.models import ArticleAttachment

    row = db_session().get(ArticleAttachment, attachment_id)
    if row is None:
        abort(404)
    _public_article(row.article_id)
    try:
        return send_download(file_of(services().settings.data_dir, row), row.filename)
    except ArticleNotFoundError:
        abort(404)


@bp.get("/help/api/suggest")
def portal_suggest() -> Any:
    """Public live suggestions for the web form and chat (deflection): public articles only."""
    text = request.args.get("text", "")[:1000]
    lang = request.args.get("lang") if request.args.get("lang") in ("en", "ru") else None
    try:
        limit = max(1, min(int(request.args.get("limit", "5")), 10))
    except ValueError:
        limit = 5
    hits = service.suggest_text(text, lang, settings=services().settings, public=True,
                                limit=limit) if text.strip() else []
    return jsonify(results=[{"id": h.id, "title": h.title, "language": h.language,
                             "url": url_for("knowledge_ui.portal_article", article_id=h.id)}
                            for h in hits])


@bp.post("/help/api/articles/<int:article_id>/deflected")
def portal_deflected(article_id: int) -> Any:
    """Count a reader who left an article page without going on to contact us."""
    source = request.args.get("source", "portal")
    if source not in usage.DEFLECTION_SOURCES:
        source = "portal"
    article, _live = _public_article(article_id)
    usage.record_deflection(db_session(), article, source)
    db_session().commit()
    return "", 204


# A beacon carries no CSRF token; it only increments a counter of a public article.
csrf.exempt(portal_deflected)
