"""Check visitors' files by what they are (magic bytes), never by their names (pure).

Chat uploads and form attachments both pass here. The declared type and the
file name are ignored for the decision: the bytes' signature decides, and the
stored content type is the sniffed one. Agents only ever download these files
(``Content-Disposition: attachment``, ``nosniff``), so nothing a visitor sends
renders from our origin.
"""

from __future__ import annotations

from contactcenter.tickets.attachments import safe_filename

# (signature, offset, content type), checked in order.
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-executable"),
)


class UploadError(ValueError):
    """A file refused: too large, empty, or of a type not allowed."""


def sniff_type(data: bytes) -> str:
    """Return the content type the bytes really are (``application/octet-stream`` if unknown)."""
    for signature, offset, content_type in SIGNATURES:
        if data[offset:offset + len(signature)] == signature:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:4096]
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the 4 KiB boundary is still text.
            if exc.start < len(head) - 4:
                return "application/octet-stream"
            text = head[:exc.start].decode("utf-8")
        lowered = text.lstrip().lower()
        if lowered.startswith(("<!doctype html", "<html", "<script", "<svg", "<?xml")):
            return "text/html"
        return "text/plain"
    return "application/octet-stream"


def check_upload(filename: str, data: bytes, allowed: list[str] | tuple[str, ...],
                 max_bytes: int) -> tuple[str, str]:
    """Return (safe file name, sniffed content type) or raise ``UploadError``."""
    if not data:
        raise UploadError("the file is empty")
    if len(data) > max_bytes:
        raise UploadError(f"the file is larger than {max_bytes // 1024} KiB")
    content_type = sniff_type(data)
    if content_type not in allowed:
        raise UploadError(f"files of this type ({content_type}) are not accepted")
    return safe_filename(filename, "upload"), content_type
