"""The supervisor's wallboard, at-risk list, reports and staffing pages.

Templates under ``templates/supervisor/``, scripts under ``static/supervisor/``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("supervisor_ui", __name__)
