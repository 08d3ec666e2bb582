"""The field package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

bp = Blueprint("field_api", __name__, url_prefix="/api/v1")

OPENAPI_PATHS: dict[str, Any] = {}
OPENAPI_SCHEMAS: dict[str, Any] = {}
