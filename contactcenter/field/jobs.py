"""Background jobs of the field package (see ``contactcenter.jobs``)."""

from __future__ import annotations
