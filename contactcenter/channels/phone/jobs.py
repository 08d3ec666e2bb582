"""Background jobs of the phone package (see ``contactcenter.jobs``).

``phone.bridge`` runs after every commit that assigned a routing item (it
ignores items that are not calls); ``phone.fetch_media`` downloads one MMS
file; ``phone.sweep`` repairs what a lost job left: bridges still due and
media still pending.
"""

from __future__ import annotations

from typing import Any

from contactcenter.db import utcnow
from contactcenter.jobs import JobContext, job, on_event


@job("phone.bridge", queue="inbound")
def bridge_job(ctx: JobContext, payload: dict[str, Any]) -> str:
    """Connect an assigned call to its agent."""
    from contactcenter.channels.phone.bridge import bridge_item

    if payload.get("kind") != "call" or not isinstance(payload.get("item_id"), int):
        return "not a call"
    with ctx.db.session() as session:
        return bridge_item(session, payload["item_id"], ctx.settings)


@job("phone.fetch_media", queue="inbound")
def fetch_media_job(ctx: JobContext, media_id: int) -> str:
    """Download one inbound media file into an attachment."""
    from contactcenter.channels.phone.media import fetch_media

    with ctx.db.session() as session:
        return fetch_media(session, media_id, ctx.settings)


@job("phone.sweep", queue="inbound", every=5)
def sweep_job(ctx: JobContext) -> dict[str, int]:
    """Retry due bridges and pending media downloads."""
    from contactcenter.channels.phone.bridge import bridge_item, due_bridges
    from contactcenter.channels.phone.media import fetch_media, pending_media

    counts = {"bridges": 0, "media": 0}
    with ctx.db.session() as session:
        for item_id in due_bridges(session, utcnow()):
            if item_id is not None and bridge_item(session, item_id, ctx.settings) == "bridged":
                counts["bridges"] += 1
        for media_id in pending_media(session):
            if fetch_media(session, media_id, ctx.settings) == "fetched":
                counts["media"] += 1
    return counts


on_event("item.assigned", "phone.bridge")
