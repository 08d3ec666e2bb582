"""The sla pages of the desktop (templates under ``templates/sla/``, scripts under ``static/sla/``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sla_ui", __name__)
