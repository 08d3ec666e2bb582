"""Background jobs of the phone package (see ``contactcenter.jobs``)."""

from __future__ import annotations
