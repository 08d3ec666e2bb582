"""The explicit bounds of email parsing (RELIABILITY.md 5.2, PARSE-2) and its time budget.

Beyond a cap the message is quarantined (``QuarantineError`` with the reason), kept raw
and replayable, and the worker moves on; where cutting is harmless (a 1 MB subject, a
single oversized header field) the value is truncated instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from contactcenter.channels.base import QuarantineError


@dataclass(frozen=True)
class EmailLimits:
    """Caps on what one message may contain before it is quarantined.

    :param max_header_bytes: the top-level header block, after oversized fields are cut.
    :param max_field_bytes: one header field; a longer one is truncated, not refused.
    :param max_addresses: addresses in one address header.
    :param max_depth: nesting of multiparts and attached messages.
    :param max_parts: MIME parts in the whole message.
    :param max_subject_chars: the subject is truncated to this.
    :param time_budget_s: wall-clock time for one parse.
    :param max_links: an HTML body with this many links is replaced by a notice.
    :param max_thread_ids: message ids kept from In-Reply-To and References.
    :param max_text_chars: the text body is truncated to this (the raw mail is kept).
    """

    max_header_bytes: int = 256 * 1024
    max_field_bytes: int = 64 * 1024
    max_addresses: int = 1000
    max_depth: int = 20
    max_parts: int = 500
    max_subject_chars: int = 500
    time_budget_s: float = 5.0
    max_links: int = 5000
    max_thread_ids: int = 50
    max_text_chars: int = 1_000_000


DEFAULT_LIMITS = EmailLimits()


class Budget:
    """A per-message deadline checked while walking (monotonic clock)."""

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        """Raise ``QuarantineError`` once the budget is spent."""
        if time.monotonic() > self.deadline:
            raise QuarantineError(f"parse time budget of {self.seconds:g} s exceeded")
