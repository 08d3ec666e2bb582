"""Thumbnails of image attachments, made by a job in a limited child process (RELIABILITY ATT-2).

``make_previews`` runs after a message is stored (the ``message.created`` event
enqueues ``attachments.previews``) and a sweep repairs lost jobs. For each new
attachment it reads the first bytes: only PNG, JPEG, GIF, WebP and BMP
signatures are images to us (the sender's content type is not trusted), anything
else, archives included, gets state ``none`` and is never opened, let alone
unpacked. An image is decoded by ``preview_worker`` in a child process with
memory, CPU and wall-clock limits and Pillow's pixel cap; its PNG thumbnail is
stored content-addressed like any attachment. A refused or broken image gets
state ``failed``: the attachment itself stays downloadable, and the worker that
ran the job is untouched whatever the decoder did.

The thumbnail is served by ``/api/v1/attachments/<id>/preview`` with the same
authorisation as the download (ATT-3).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.jobs import JobContext, job, on_event
from contactcenter.tickets.attachments import attachment_path, store_bytes
from contactcenter.tickets.models import Attachment

log = logging.getLogger(__name__)

READY, FAILED, NONE = "ready", "failed", "none"
MAX_SOURCE_BYTES = 25 * 1024 * 1024  # above the attachment cap: a larger file is no image of ours
MAX_THUMBNAIL_BYTES = 2 * 1024 * 1024
TIMEOUT_SECONDS = 15
SWEEP_BATCH = 50
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def is_previewable(head: bytes) -> bool:
    """Whether the first bytes of a file are the signature of an image we preview."""
    if head.startswith(SIGNATURES):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def render_thumbnail(path: Path, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Return a PNG thumbnail of an image file, decoded in a limited child process.

    :raises ValueError: the child refused the image, died, or ran out of time.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-B", "-m", "contactcenter.tickets.preview_worker", str(path)],
            capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ValueError(f"no preview within {timeout:g} s") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ValueError((reason[-1] if reason else f"exit status {done.returncode}")[:300])
    data = done.stdout
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) > MAX_THUMBNAIL_BYTES:
        raise ValueError("the preview process returned no PNG")
    return data


def make_preview(attachment: Attachment, data_dir: Path) -> str:
    """Make one attachment's thumbnail (or decide it has none); set and return its state."""
    path = attachment_path(data_dir, attachment.sha256)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError as exc:
        log.warning("attachment %s: no file for a preview: %s", attachment.id, exc)
        attachment.preview_state = FAILED
        return FAILED
    if not is_previewable(head) or size > MAX_SOURCE_BYTES:
        attachment.preview_state = NONE
        return NONE
    try:
        thumbnail = render_thumbnail(path)
    except ValueError as exc:
        log.info("attachment %s (%s): no preview: %s", attachment.id, attachment.filename, exc)
        attachment.preview_state = FAILED
        return FAILED
    attachment.preview_sha256 = store_bytes(data_dir, thumbnail)
    attachment.preview_state = READY
    return READY


def make_previews(session: Session, settings: Settings, message_id: int | None = None,
                  limit: int = SWEEP_BATCH) -> dict[str, int]:
    """Make the thumbnails still missing (of one message, or the oldest ``limit``); commit each."""
    query = select(Attachment).where(Attachment.preview_state.is_(None))
    if message_id is not None:
        query = query.where(Attachment.message_id == message_id)
    counts: dict[str, int] = {}
    for attachment in session.scalars(query.order_by(Attachment.id).limit(limit)).all():
        state = make_preview(attachment, settings.data_dir)
        session.commit()
        counts[state] = counts.get(state, 0) + 1
    return counts


@job("attachments.previews", queue="default")
def previews_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
    """Make the thumbnails of a message just stored."""
    message_id = payload.get("message_id") if isinstance(payload, dict) else None
    if not isinstance(message_id, int):
        return {}
    with ctx.db.session() as session:
        return make_previews(session, ctx.settings, message_id)


@job("attachments.previews_sweep", queue="default", every=300)
def previews_sweep_job(ctx: JobContext) -> dict[str, int]:
    """Make the thumbnails a lost job left undone."""
    with ctx.db.session() as session:
        return make_previews(session, ctx.settings)


on_event("message.created", "attachments.previews")
