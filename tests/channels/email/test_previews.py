"""Attachment thumbnails: made by a job in a limited child process, served like downloads.

RELIABILITY ATT-2: a decompression-bomb PNG (10,000 x 10,000 pixels in a few KB,
generated here), one just over the pixel cap, a corrupt image, an archive (never
opened) and a normal photo. ATT-3: the thumbnail answers 404 to an agent of
another queue, 401 to an anonymous caller, and 404 when there is no thumbnail;
the file itself stays downloadable whatever the preview did.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from contactcenter.channels.base import AttachmentRef
from contactcenter.jobs import EVENT_JOBS, JOBS, load_jobs
from contactcenter.tickets.attachments import attachment_path
from contactcenter.tickets.models import Attachment, Message
from contactcenter.tickets.preview_worker import MAX_PIXELS
from contactcenter.tickets.previews import (
    FAILED,
    NONE,
    READY,
    is_previewable,
    make_previews,
    render_thumbnail,
)
from contactcenter.tickets.serialize import serialize_message
from tests.api.conftest import World, ingest, world  # noqa: F401 (the world fixture)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "white" if mode != "1" else 1).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """10,000 x 10,000 one-bit pixels: a few KB on disk, 100 megapixels decoded."""
    data = png(10_000, 10_000, "1")
    assert len(data) < 100_000
    return data


def zipped() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.png", png(10, 10))
        archive.writestr("zeros.bin", b"\0" * 5_000_000)
    return out.getvalue()


@pytest.fixture
def files(session: Any, settings: Any, world: World,  # noqa: F811
          bomb: bytes) -> dict[str, Attachment]:
    ingest(session, settings, inbox_id=world.inbox_a.id, sender="olga@example.com",
           subject="Photos", text="See the files.",
           attachments=(AttachmentRef("photo.png", "image/png", png(800, 600)),
                        AttachmentRef("bomb.png", "image/png", bomb),
                        AttachmentRef("broken.jpg", "image/jpeg", b"\xff\xd8\xff\xe0garbage" * 50),
                        AttachmentRef("archive.zip", "application/zip", zipped()),
                        AttachmentRef("fake.png", "image/png", b"<html>not an image</html>")))
    session.commit()
    rows = session.scalars(select(Attachment).order_by(Attachment.id)).all()
    return {row.filename: row for row in rows}


def preview_url(row: Attachment) -> str:
    return f"/api/v1/attachments/{row.id}/preview"


def test_previews_are_made_by_a_job_subscribed_to_new_messages() -> None:
    load_jobs()
    assert "attachments.previews" in EVENT_JOBS["message.created"]
    assert "attachments.previews_sweep" in JOBS


def test_thumbnails_bombs_broken_images_and_archives(session: Any, settings: Any,
                                                     files: dict[str, Attachment]) -> None:
    started = time.monotonic()
    counts = make_previews(session, settings)
    assert time.monotonic() - started < 30
    assert counts == {READY: 1, FAILED: 2, NONE: 2}
    states = {name: (row.preview_state, row.preview_sha256) for name, row in files.items()}
    assert states["bomb.png"] == (FAILED, None)
    assert states["broken.jpg"] == (FAILED, None)
    assert states["archive.zip"] == (NONE, None)  # never opened, never unpacked
    assert states["fake.png"] == (NONE, None)  # the label says PNG, the bytes do not
    state, digest = states["photo.png"]
    assert state == READY and digest is not None
    with Image.open(attachment_path(settings.data_dir, digest)) as thumb:
        assert thumb.format == "PNG" and max(thumb.size) == 256 and thumb.size == (256, 192)
    # The sweep finds nothing left: every state is final, nothing is tried forever.
    assert make_previews(session, settings) == {}
    message = session.scalar(select(Message).where(Message.id == files["photo.png"].message_id))
    shown = {a["filename"]: a["preview"] for a in serialize_message(message)["attachments"]}
    assert shown == {"photo.png": True, "bomb.png": False, "broken.jpg": False,
                     "archive.zip": False, "fake.png": False}


def test_the_bomb_is_refused_before_decoding_in_the_child(tmp_path: Any, bomb: bytes) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    started = time.monotonic()
    with pytest.raises(ValueError, match="pixel|DecompressionBomb"):
        render_thumbnail(path)
    assert time.monotonic() - started < 10


def small(fmt: str, mode: str = "L", **options: Any) -> bytearray:
    out = io.BytesIO()
    Image.new(mode, (8, 8), 0).save(out, format=fmt, **options)
    return bytearray(out.getvalue())


def png_bomb() -> bytes:
    data = small("PNG")  # IHDR: width and height at 16, its CRC at 29
    data[16:24] = struct.pack(">II", 50_000, 50_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def gif_bomb() -> bytes:
    data = small("GIF", "P")
    data[6:10] = struct.pack("<HH", 65_535, 65_535)  # logical screen
    at = data.index(b"\x2c")  # image descriptor
    data[at + 5:at + 9] = struct.pack("<HH", 65_535, 65_535)
    return bytes(data)


def bmp_bomb() -> bytes:
    data = small("BMP")
    data[18:26] = struct.pack("<ii", 60_000, 60_000)
    return bytes(data)


def jpeg_bomb() -> bytes:
    data = small("JPEG")
    at = data.index(b"\xff\xc0")  # SOF0: height, width
    data[at + 5:at + 9] = struct.pack(">HH", 60_000, 60_000)
    return bytes(data)


def webp_bomb() -> bytes:
    data = small("WEBP", "RGB", lossless=True)
    at = data.index(b"VP8L") + 8  # 14-bit width-1 and height-1 after the 0x2f signature
    bits = struct.unpack("<I", data[at + 1:at + 5])[0]
    data[at + 1:at + 5] = struct.pack("<I", (bits & ~((1 << 28) - 1)) | 16_383 | 16_383 << 14)
    return bytes(data)


@pytest.mark.parametrize("make", [png_bomb, gif_bomb, bmp_bomb, jpeg_bomb, webp_bomb],
                         ids=["png", "gif", "bmp", "jpeg", "webp"])
def test_a_bomb_header_in_every_format_we_open_is_refused(tmp_path: Any, make: Any) -> None:
    # A few bytes whose header claims 268 million to 4 billion pixels.
    path = tmp_path / "bomb"
    path.write_bytes(make())
    assert is_previewable(path.read_bytes()[:16])
    started = time.monotonic()
    with pytest.raises(ValueError, match="DecompressionBomb|pixel"):
        render_thumbnail(path)
    assert time.monotonic() - started < 10


def test_just_over_the_pixel_cap_is_refused_too(tmp_path: Any) -> None:
    # Between 1x and 2x the cap Pillow only warns; the child treats that as an error.
    side = int(MAX_PIXELS ** 0.5) + 50
    path = tmp_path / "big.png"
    path.write_bytes(png(side, side, "1"))
    with pytest.raises(ValueError):
        render_thumbnail(path)


def test_a_hung_decoder_is_stopped_by_the_time_limit(tmp_path: Any) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(png(64, 64))
    with pytest.raises(ValueError, match="no preview within"):
        render_thumbnail(path, timeout=0.001)


@pytest.mark.parametrize(("head", "expected"), [
    (b"\x89PNG\r\n\x1a\n....", True), (b"\xff\xd8\xff\xe0", True), (b"GIF89a", True),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", True), (b"BM\x00\x00", True),
    (b"PK\x03\x04", False), (b"%PDF-1.7", False), (b"<svg", False), (b"%!PS-Adobe", False),
])
def test_only_image_signatures_are_previewed(head: bytes, expected: bool) -> None:
    assert is_previewable(head) is expected


# --- ATT-3: the preview is authorised as the download ----------------------------------------

def test_preview_is_served_only_to_who_may_download(client: Any, session: Any, settings: Any,
                                                    world: World,  # noqa: F811
                                                    files: dict[str, Attachment]) -> None:
    make_previews(session, settings)
    photo = files["photo.png"]
    ok = client.get(preview_url(photo), headers=world.headers("agent"))
    assert ok.status_code == 200 and ok.data.startswith(b"\x89PNG")
    assert ok.headers["Content-Type"] == "image/png"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert ok.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert "no-store" in ok.headers["Cache-Control"]
    other = client.get(preview_url(photo), headers=world.headers("other"))
    assert other.status_code == 404 and not other.data.startswith(b"\x89PNG")
    anonymous = client.get(preview_url(photo))
    assert anonymous.status_code == 401 and not anonymous.data.startswith(b"\x89PNG")
    missing = client.get(f"/api/v1/attachments/{max(r.id for r in files.values()) + 1}/preview",
                         headers=world.headers("agent"))
    assert missing.status_code == 404
    # No thumbnail (refused bomb, archive): 404, while the file itself still downloads.
    for name in ("bomb.png", "archive.zip"):
        assert client.get(preview_url(files[name]), headers=world.headers("agent")
                          ).status_code == 404
        download = client.get(f"/api/v1/attachments/{files[name].id}",
                              headers=world.headers("agent"))
        assert download.status_code == 200 and len(download.data) == files[name].size
