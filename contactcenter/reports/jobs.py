"""Background jobs of the reports package (see ``contactcenter.jobs``)."""

from __future__ import annotations
