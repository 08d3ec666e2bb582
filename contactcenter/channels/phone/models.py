"""Models of the phone package (see ``contactcenter.db.import_models``)."""

from __future__ import annotations
