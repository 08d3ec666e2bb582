"""The agent desktop, supervisor views and knowledge editor (blueprints, sockets, static)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the sign-in pages, the desktop, vendor files and the socket namespace."""
    from contactcenter.agent_ui import (
        chat,
        field,
        forms,
        knowledge,
        phone,
        sales,
        sla,
        sockets,
        supervisor,
    )
    from contactcenter.agent_ui.desk_api import bp as desk_api
    from contactcenter.agent_ui.views import bp

    from contactcenter.agent_ui import i18n
    from contactcenter.app import csrf, services

    i18n.init_app(app, services(app).settings.data_dir)
    app.register_blueprint(bp)
    # The desk API checks the CSRF header itself (api.auth.current_user) and answers in JSON.
    csrf.exempt(desk_api)
    app.register_blueprint(desk_api)
    for module in (sla, knowledge, sales, phone, chat, forms, supervisor, field):
        app.register_blueprint(module.bp)
    sockets.init_app(app)
