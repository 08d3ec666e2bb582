"""Download MMS and WhatsApp media into attachments, from Twilio's media hosts only.

The URL in a webhook is attacker-influenced data once stored, so the job
fetches only from ``CONTACTCENTER_TWILIO_MEDIA_HOSTS`` (every redirect hop is
checked, Twilio's media URLs redirect to its CDN), over HTTPS (plain HTTP only
for a loopback stand-in), sends the account's credentials only to the first
hop, and stops at ``CONTACTCENTER_TWILIO_MEDIA_MAX_BYTES``. The URL stays on the
message whatever happens; a refused or oversized file is recorded with why.
"""

from __future__ import annotations

import logging
import mimetypes
from urllib.parse import urljoin, urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.phone.models import SmsMedia
from contactcenter.config import Settings
from contactcenter.events import record_event
from contactcenter.tickets.attachments import store_bytes
from contactcenter.tickets.intake import ticket_rooms
from contactcenter.tickets.models import Attachment, Message

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
MAX_ATTEMPTS = 5
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class MediaRefused(Exception):
    """A media URL or response we will not take (host, scheme, size)."""


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Return the configured media hosts (``host`` or ``host:port``), lower-cased."""
    return frozenset(h.strip().lower() for h in settings.twilio_media_hosts.split(",") if h.strip())


def check_url(url: str, hosts: frozenset[str]) -> None:
    """Refuse a URL whose host is not a media host, or that is not HTTPS (loopback aside)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    if parts.username or parts.password:
        raise MediaRefused("credentials in the URL")
    if host not in hosts and netloc not in hosts:
        raise MediaRefused(f"host {netloc or '(none)'} is not a Twilio media host")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK):
        raise MediaRefused(f"scheme {parts.scheme or '(none)'} refused")


def download(url: str, settings: Settings) -> tuple[bytes, str]:
    """Fetch a media URL within the limits; return its bytes and content type."""
    hosts = allowed_hosts(settings)
    limit = settings.twilio_media_max_bytes
    auth = ((settings.twilio_account_sid, settings.twilio_auth_token)
            if settings.twilio_account_sid else None)
    timeout = max(1, settings.twilio_api_timeout_seconds)
    for _hop in range(MAX_REDIRECTS + 1):
        check_url(url, hosts)
        with requests.get(url, auth=auth, timeout=timeout, stream=True,
                          allow_redirects=False) as response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                auth = None  # the CDN gets a signed URL, never our credentials
                continue
            if response.status_code != 200:
                raise requests.HTTPError(f"media host answered {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise MediaRefused(f"{declared} bytes is over the {limit}-byte limit")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise MediaRefused(f"more than {limit} bytes")
                chunks.append(chunk)
            kind = response.headers.get("Content-Type", "").split(";")[0].strip()
            return b"".join(chunks), kind
    raise MediaRefused("too many redirects")


def fetch_media(session: Session, media_id: int, settings: Settings) -> str:
    """Download one pending media file into an attachment of its message; return its state."""
    media = session.get(SmsMedia, media_id)
    if media is None:
        return "missing"
    if media.state != "pending":
        return media.state
    media.attempts += 1
    session.commit()
    try:
        data, kind = download(media.url, settings)
    except MediaRefused as exc:
        media.state, media.error = "refused", str(exc)[:2000]
        session.commit()
        return media.state
    except (requests.RequestException, OSError) as exc:
        media.error = f"{type(exc).__name__}: {exc}"[:2000]
        if media.attempts >= MAX_ATTEMPTS:
            media.state = "failed"
        session.commit()
        return media.state
    message = session.get(Message, media.message_id)
    if message is None:
        media.state = "failed"
        session.commit()
        return media.state
    content_type = (media.content_type or kind or "application/octet-stream")[:127]
    extension = mimetypes.guess_extension(content_type) or ".bin"
    digest = store_bytes(settings.data_dir, data)
    attachment = Attachment(message_id=message.id, filename=f"media-{media.id}{extension}",
                            content_type=content_type, size=len(data), sha256=digest)
    session.add(attachment)
    session.flush()
    media.attachment_id = attachment.id
    media.state, media.error = "fetched", ""
    record_event(session, "media.fetched",
                 {"message_id": message.id, "ticket_id": message.ticket_id,
                  "attachment_id": attachment.id, "content_type": content_type,
                  "size": len(data)}, ticket_rooms(message.ticket))
    session.commit()
    return media.state


def pending_media(session: Session, limit: int = 100) -> list[int]:
    """Return ids of media still to download (for the sweep)."""
    return list(session.scalars(select(SmsMedia.id).where(SmsMedia.state == "pending")
                                .order_by(SmsMedia.id).limit(limit)))
