"""Background jobs of the chat package (see ``contactcenter.jobs``)."""

from __future__ import annotations
