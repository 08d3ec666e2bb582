"""In-transaction reactions of the knowledge package to a ticket's life (``contactcenter.hooks``).

Both hooks are one indexed query when the ticket has no article uses (intake's:
one per transaction, see ``_may_have_open_uses``), so they cost nothing on tickets
where no article was used.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter import hooks
from contactcenter.knowledge.models import ArticleUse, UseOutcome
from contactcenter.tickets.models import TicketStatus


@hooks.on_status
def count_first_contact_resolution(ctx: hooks.StatusContext) -> None:
    """A ticket solved with no customer message after an article's use: that use solved it."""
    if ctx.new != TicketStatus.SOLVED:
        return
    from contactcenter.knowledge.usage import resolve_uses

    resolve_uses(ctx.session, ctx.ticket.id, ctx.now)


MAX_CACHED_TICKETS = 20_000
hooks.drop_cache_on_change(ArticleUse)  # a use recorded in the transaction is seen at once


def _may_have_open_uses(session: Session, ticket_id: int) -> bool:
    """Whether a ticket may have open article uses (False: certainly none, no query).

    The tickets with open uses are read once per transaction (``ingest email`` takes
    up to 100 messages in one, and few tickets ever had an article used); past
    ``MAX_CACHED_TICKETS`` they are not cached and every ticket is asked about.
    """
    cache = hooks.transaction_cache(session, "knowledge_open_uses")
    if "tickets" not in cache:
        ids = set(session.scalars(select(ArticleUse.ticket_id).where(
            ArticleUse.outcome.in_((UseOutcome.PENDING, UseOutcome.RESOLVED))).distinct()
            .limit(MAX_CACHED_TICKETS + 1)))
        cache["tickets"] = None if len(ids) > MAX_CACHED_TICKETS else frozenset(ids)
    tickets = cache["tickets"]
    return tickets is None or ticket_id in tickets


@hooks.on_intake
def customer_wrote_again(ctx: hooks.IntakeContext) -> None:
    """A customer message after an article's use means the article did not settle it."""
    if ctx.created:
        return
    from contactcenter.knowledge.usage import fail_uses, has_open_uses

    if (_may_have_open_uses(ctx.session, ctx.ticket.id)
            and has_open_uses(ctx.session, ctx.ticket.id)):
        fail_uses(ctx.session, ctx.ticket.id, ctx.now)
