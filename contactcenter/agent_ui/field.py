"""The dispatch board (supervisors) and the technician's mobile page.

Templates under ``templates/field/``, scripts under ``static/field/``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("field_ui", __name__)
