"""Hosted web forms (public) and the forms admin page.

Templates under ``templates/forms/``, scripts under ``static/forms/``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("forms_ui", __name__)
