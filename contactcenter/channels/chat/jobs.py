"""Background jobs of the chat package (see ``contactcenter.jobs``).

``chat.timeouts`` (every 30 s) warns and then ends chats quiet for too long and
ends chats no agent took in time; its events reach the visitor and the agent
after each commit. Importing this module also registers the chat's assign hook,
so every process that routes work (web, worker) turns chats active on accept.
"""

from __future__ import annotations

from contactcenter.channels.chat.lifecycle import close_inactive_chats, register_hooks
from contactcenter.channels.chat.relay import hook_database
from contactcenter.db import utcnow
from contactcenter.jobs import JobContext, job

register_hooks()


@job("chat.timeouts", queue="default", every=30)
def chat_timeouts_job(ctx: JobContext) -> dict[str, int]:
    """Warn and close inactive chats, end unanswered ones."""
    from contactcenter.routing.engine import load_policy

    hook_database(ctx.db, ctx.settings)
    with ctx.db.session() as session:
        return close_inactive_chats(session, ctx.settings, utcnow(), load_policy(ctx.settings))
