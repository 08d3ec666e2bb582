"""The knowledge pages of the desktop (templates under ``templates/knowledge/``, scripts under ``static/knowledge/``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("knowledge_ui", __name__)
