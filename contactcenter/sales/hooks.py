"""In-transaction reactions of the sales package to a ticket's life (see ``contactcenter.hooks``)."""

from __future__ import annotations
