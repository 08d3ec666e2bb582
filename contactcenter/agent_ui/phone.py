"""The softphone and call controls of the desktop, and phone settings pages.

Templates under ``templates/phone/``, scripts under ``static/phone/``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("phone_ui", __name__)
