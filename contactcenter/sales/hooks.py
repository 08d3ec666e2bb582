"""In-transaction reactions of the sales package to a ticket's life (see ``contactcenter.hooks``).

None are registered: offers are computed when the agent's screen (or the API)
asks for them, so intake pays nothing for sales, and customer value is
recomputed by the ``sales.recompute_values`` job, not per contact.
"""

from __future__ import annotations
