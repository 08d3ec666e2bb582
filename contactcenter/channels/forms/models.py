"""Models of the forms channel (see ``contactcenter.db.import_models``)."""

from __future__ import annotations
