"""Background jobs of the phone package (see ``contactcenter.jobs``).

``phone.bridge`` runs after every commit that assigned a routing item (it
ignores items that are not calls); ``phone.ingest_message`` runs intake on one
stored inbound SMS/WhatsApp webhook; ``phone.fetch_media`` downloads one MMS
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


@job("phone.ingest_message", queue="inbound")
def ingest_message_job(ctx: JobContext, raw_id: int) -> dict[str, Any] | None:
    """Ingest one stored inbound SMS/WhatsApp webhook, then start its media downloads."""
    from sqlalchemy import select

    from contactcenter.channels.phone.models import SmsMedia
    from contactcenter.tickets.intake import process_raw

    with ctx.db.session() as session:
        result = process_raw(session, raw_id, ctx.registry, ctx.settings)
        if result is None or result.status not in ("created", "appended"):
            return result.to_json() if result else None
        media = list(session.scalars(select(SmsMedia.id).where(
            SmsMedia.message_id == result.message_id, SmsMedia.state == "pending")))
    if ctx.jobs is not None:  # else the phone sweep fetches them within seconds
        for media_id in media:
            ctx.jobs.enqueue("phone.fetch_media", media_id, key=f"phone.fetch_media:{media_id}")
    return result.to_json()


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
