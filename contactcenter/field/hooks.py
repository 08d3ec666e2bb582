"""In-transaction reactions of the field package (see ``contactcenter.hooks``)."""

from __future__ import annotations
