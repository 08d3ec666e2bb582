"""The chat widget's hosted files and the agent's chat panel.

Templates under ``templates/chat/``, scripts under ``static/chat/``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("chat_ui", __name__)
