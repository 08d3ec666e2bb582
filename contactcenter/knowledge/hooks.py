"""In-transaction reactions of the knowledge package to a ticket's life (``contactcenter.hooks``).

Both hooks are one indexed query when the ticket has no article uses, so they
cost nothing on tickets where no article was used.
"""

from __future__ import annotations

from contactcenter import hooks
from contactcenter.tickets.models import TicketStatus


@hooks.on_status
def count_first_contact_resolution(ctx: hooks.StatusContext) -> None:
    """A ticket solved with no customer message after an article's use: that use solved it."""
    if ctx.new != TicketStatus.SOLVED:
        return
    from contactcenter.knowledge.usage import resolve_uses

    resolve_uses(ctx.session, ctx.ticket.id, ctx.now)


@hooks.on_intake
def customer_wrote_again(ctx: hooks.IntakeContext) -> None:
    """A customer message after an article's use means the article did not settle it."""
    if ctx.created:
        return
    from contactcenter.knowledge.usage import fail_uses, has_open_uses

    if has_open_uses(ctx.session, ctx.ticket.id):
        fail_uses(ctx.session, ctx.ticket.id, ctx.now)
