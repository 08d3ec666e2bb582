"""Background jobs of the knowledge package (see ``contactcenter.jobs``)."""

from __future__ import annotations
