"""The JSON REST API under ``/api/v1``, token-authenticated, described by OpenAPI."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API blueprint (exempt from the form CSRF check: it uses tokens)."""
    from contactcenter.api.views import bp
    from contactcenter.app import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
