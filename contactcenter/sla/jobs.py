"""Background jobs of the sla package (see ``contactcenter.jobs``)."""

from __future__ import annotations
