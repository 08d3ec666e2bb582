"""In-transaction reactions of the knowledge package to a ticket's life (see ``contactcenter.hooks``)."""

from __future__ import annotations
