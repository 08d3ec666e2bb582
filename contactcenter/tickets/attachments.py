"""Store attachment bytes content-addressed under the data folder, with safe names."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
UNSAFE_RE = re.compile(r'[\\/:*?"<>|]')
MAX_NAME = 200
# Windows reserved device names: "CON", "nul.txt", "com1.tar.gz" open a device there.
RESERVED_RE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])"
                         r"\s*(\.|$)")
# Characters that change how a name displays without being visible: bidi overrides and
# isolates (U+202E makes "gpj.exe" read "exe.jpg"), zero-width ones, BOM, soft hyphen,
# line and paragraph separators, and unassigned or private code points.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cn", "Cs", "Zl", "Zp"})
_made_dirs: set[Path] = set()  # folders this process created or found: no mkdir per file


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """Return a display name with no path, control or invisible characters, or device name.

    Only the last path component is kept (``/`` and ``\\`` both separate); control,
    bidi and other invisible format characters are removed; ``\\ / : * ? " < > |``
    become ``_``; leading and trailing dots and spaces go; Windows device names (``CON``,
    ``NUL``, ``COM1``, ``LPT1``...) get a ``_`` prefix; the result is at most
    ``MAX_NAME`` characters, keeping a short extension. The name is for display and
    Content-Disposition only: the bytes are stored under their digest.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = CONTROL_RE.sub("", name)
    if not name.isascii():
        name = "".join(ch for ch in name
                       if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    name = UNSAFE_RE.sub("_", name).strip(" .")
    if not name:
        return fallback
    if RESERVED_RE.match(name):
        name = "_" + name
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = (stem[: MAX_NAME - len(ext) - 1].rstrip(" .") or fallback) + "." + ext
        else:
            name = name[:MAX_NAME]
    return name


def attachment_path(data_dir: Path, sha256: str) -> Path:
    """Return where the bytes with this digest live."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return data_dir / "attachments" / sha256[:2] / sha256[2:4] / sha256


def store_bytes(data_dir: Path, data: bytes, *, unsynced: list[Path] | None = None) -> str:
    """Write bytes once under their SHA-256 (atomic rename, fsynced); return the digest.

    ``unsynced`` given: the file is not fsynced here but its path is appended (also
    when it existed already: an earlier, rolled-back writer may not have synced it),
    and the caller must ``sync_files`` them before it commits a row that names them.
    A batch of messages then pays for its fsyncs concurrently, not one after another.
    """
    digest = hashlib.sha256(data).hexdigest()
    path = attachment_path(data_dir, digest)
    if path.exists():
        if unsynced is not None:
            unsynced.append(path)
        return digest
    if path.parent not in _made_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(_made_dirs) > 100_000:
            _made_dirs.clear()
        _made_dirs.add(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except FileNotFoundError:  # the folder went away since we made it
        _made_dirs.discard(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if unsynced is None:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if unsynced is not None:
        unsynced.append(path)
    return digest


SYNC_THREADS = 16


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_files(paths: list[Path]) -> None:
    """fsync files written with ``store_bytes(..., unsynced=...)`` and their folders.

    The fsyncs run on threads at once (they release the GIL), so the file system
    commits them together instead of one journal commit per file. Raises OSError if
    one fails: the caller must not commit then.
    """
    files = list(dict.fromkeys(paths))
    if not files:
        return
    targets = files + list(dict.fromkeys(p.parent for p in files))  # the renames too
    if len(targets) == 1:
        _fsync(targets[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(SYNC_THREADS, len(targets))) as pool:
        list(pool.map(_fsync, targets))
