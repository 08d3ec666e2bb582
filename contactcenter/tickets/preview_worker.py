"""Make one thumbnail in a throw-away process: ``python -m contactcenter.tickets.preview_worker``.

Run by ``tickets.previews`` with the image's path as the only argument; writes a
PNG thumbnail to stdout, or exits non-zero with the reason on stderr. Decoding
customer images is where decompression bombs and decoder bugs bite (RELIABILITY
ATT-2, Pillow ``MAX_IMAGE_PIXELS``), so this process limits itself before Pillow
is even imported: address space, CPU seconds, and no files it could write. Should
it still blow up, only it dies; the worker that started it records a failed
preview and carries on. Only the formats in ``FORMATS`` are opened (never EPS,
which would start Ghostscript, nor anything Pillow merely recognises), and the
size in the header is checked against the pixel cap before any pixel is decoded.
Its stdout and stderr must be pipes: the file-size limit of 0 refuses writes to files.
"""

from __future__ import annotations

import resource
import signal
import sys

MEMORY_BYTES = 768 * 1024 * 1024
CPU_SECONDS = 10
MAX_PIXELS = 40_000_000  # 40 MP: a 7,000 x 5,700 photo; a 10,000 x 10,000 bomb is refused
THUMBNAIL = (256, 256)
FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP"]


def _limit_self() -> None:
    """Cap this process's memory and CPU time, and forbid creating files."""
    sys.dont_write_bytecode = True  # a .pyc write would hit the file-size limit
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def thumbnail_png(path: str) -> bytes:
    """Return a PNG thumbnail of the image at ``path``; raise for anything doubtful."""
    import io
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    # Between 1x and 2x the cap Pillow only warns: treat that as the error it is here.
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    with Image.open(path, formats=FORMATS) as image:
        width, height = image.size
        if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
            raise ValueError(f"{width} x {height} pixels is over the {MAX_PIXELS} pixel cap")
        image.draft("RGB", THUMBNAIL)  # JPEG: decode at a reduced scale
        image.seek(0)
        image.thumbnail(THUMBNAIL)
        small: Image.Image = image
        if small.mode not in ("RGB", "RGBA", "L", "LA"):
            small = small.convert("RGBA")
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=False)
    return out.getvalue()


def main(argv: list[str]) -> int:
    """Write the thumbnail of ``argv[1]`` to stdout; 2 on a refused or broken image."""
    _limit_self()
    if len(argv) != 2:
        print("usage: preview_worker PATH", file=sys.stderr)
        return 2
    try:
        data = thumbnail_png(argv[1])
    except MemoryError:
        print("MemoryError: over the memory limit", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - every decoder failure is a refused preview
        print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return 2
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
