"""The sales pages of the desktop (templates under ``templates/sales/``, scripts under ``static/sales/``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sales_ui", __name__)
