"""Choose an attachment's content type from its declared type, file name and first bytes.

A declared ``application/octet-stream`` (or a missing, made-up or generic type) is
replaced by what the file name and magic bytes say; a declared image whose bytes are
another image, or no image at all (an HTML file labelled ``image/png``), gets the type of
its bytes. Serving stays the download layer's job (always as an attachment, nosniff):
this only makes the recorded type honest.
"""

from __future__ import annotations

import mimetypes

GENERIC_TYPES = frozenset({"", "application/octet-stream", "application/unknown",
                           "application/x-unknown", "application/others", "binary/octet-stream",
                           "application/download", "application/force-download",
                           "application/x-download", "application/binary",
                           "application/x-octet-stream", "unknown/unknown"})
NORMALISED = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
              "application/x-pdf": "application/pdf", "image/x-citrix-jpeg": "image/jpeg",
              "image/x-citrix-png": "image/png", "text/x-vcard": "text/vcard"}
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"{\\rtf", "application/rtf"),
)
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OFFICE_BY_EXTENSION = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".doc": "application/msword", ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint", ".msg": "application/vnd.ms-outlook",
}
ZIP_OFFICE = frozenset({".docx", ".xlsx", ".pptx", ".odt", ".ods"})
OLE_OFFICE = frozenset({".doc", ".xls", ".ppt", ".msg"})
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
              "application/pdf": ".pdf", "text/plain": ".txt", "text/html": ".html",
              "message/rfc822": ".eml", "text/calendar": ".ics", "application/zip": ".zip"}


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 and len(filename) - dot <= 8 else ""


def sniff_type(data: bytes, filename: str = "") -> str | None:
    """Return the type the first bytes show, or None for an unknown format."""
    head = data[:16]
    for magic, ctype in MAGIC:
        if head.startswith(magic):
            return ctype
    if head[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    ext = _extension(filename)
    if head.startswith(ZIP_MAGIC):
        return OFFICE_BY_EXTENSION[ext] if ext in ZIP_OFFICE else "application/zip"
    if head.startswith(OLE_MAGIC):
        return OFFICE_BY_EXTENSION[ext] if ext in OLE_OFFICE else "application/x-ole-storage"
    start = data[:512].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in start):
        return "image/svg+xml"
    return None


def detect_type(declared: str, filename: str, data: bytes) -> str:
    """Return the content type to record for an attachment (see the module docstring)."""
    ctype = declared.strip().lower()
    ctype = NORMALISED.get(ctype, ctype)
    if "/" not in ctype:
        ctype = ""
    if ctype in GENERIC_TYPES:
        sniffed = sniff_type(data, filename)
        if sniffed:
            return sniffed
        guessed = mimetypes.guess_type(filename, strict=False)[0] if filename else None
        return NORMALISED.get(guessed or "", guessed or "application/octet-stream")
    if ctype.startswith("image/"):
        sniffed = sniff_type(data, filename)
        if sniffed and sniffed != ctype:
            return sniffed
    return ctype[:127]


def generated_name(content_type: str, number: int) -> str:
    """Return a name for a part that has none (``image-1.png``, ``attachment-2.pdf``)."""
    base = "image" if content_type.startswith("image/") else "attachment"
    ext = EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    return f"{base}-{number}{ext}"
