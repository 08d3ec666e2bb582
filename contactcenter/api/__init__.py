"""The JSON REST API under ``/api/v1``, token-authenticated, described by OpenAPI."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException


def package_apis() -> tuple[Any, ...]:
    """The capability packages' API modules: each has ``bp``, ``OPENAPI_PATHS``, ``OPENAPI_SCHEMAS``."""
    from contactcenter.channels.chat import api as chat_api
    from contactcenter.channels.phone import api as phone_api
    from contactcenter.field import api as field_api
    from contactcenter.knowledge import api as knowledge_api
    from contactcenter.reports import api as reports_api
    from contactcenter.sales import api as sales_api
    from contactcenter.sla import api as sla_api

    return (sla_api, knowledge_api, sales_api, phone_api, chat_api, reports_api, field_api)


def init_app(app: Flask) -> None:
    """Register the API blueprint (exempt from the form CSRF check: it uses tokens)."""
    from contactcenter.api.auth import error
    from contactcenter.api.views import bp
    from contactcenter.app import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
    for module in package_apis():
        csrf.exempt(module.bp)
        app.register_blueprint(module.bp)

    # A blueprint's 404/405 handlers never see routing errors (no endpoint matched, so
    # Flask cannot tell which blueprint the URL belongs to): answer them here, in the
    # API's JSON shape, for every URL under the API's prefix.
    def routing_error(exc: HTTPException) -> Any:
        prefix = bp.url_prefix or "/api/v1"
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return error(exc.code or 500,
                         "not found" if exc.code == 404 else "method not allowed")
        return exc

    app.register_error_handler(404, routing_error)
    app.register_error_handler(405, routing_error)
