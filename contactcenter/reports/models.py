"""Models of the reports package (see ``contactcenter.db.import_models``)."""

from __future__ import annotations
