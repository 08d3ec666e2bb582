"""Background jobs of the sales package (see ``contactcenter.jobs``)."""

from __future__ import annotations
