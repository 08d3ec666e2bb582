"""Take turns writing to SQLite inside the SMTP server: stores first, processing after.

SQLite has one writer at a time and makes the others wait by sleeping and polling
(its busy handler backs off up to 100 ms a round), so several threads writing at
once spend their time asleep: measured on 400 corpus messages, stores and processing
contending that way reached 20 messages/s where either alone does 56-200/s. Taking
turns on an in-process condition hands the database over at once, and it lets a
store (a client waiting for its 250, RFC 5321 §4.5.3.2.6 asks us to be quick) go
before the next message's processing. Processing still gets a turn after
``MAX_STORES_AHEAD`` stores in a row, so a steady stream cannot starve it, and it
gives its turn up while the adapter parses (``ParseOutsideTurn``): parsing touches no
database, and a message that is slow to parse must not hold every 250 back.

With PostgreSQL (row locks, real concurrency) no turns are taken.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from contactcenter.channels.base import ChannelAdapter, ChannelRegistry, InboundContact

MAX_STORES_AHEAD = 20


class WriterTurns:
    """A write lock for one process where stores go before processing."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cond = threading.Condition()
        self._busy = False
        self._stores_waiting = 0
        self._processing_waiting = 0
        self._stores_in_a_row = 0

    def _store_may_go(self) -> bool:
        if self._busy:
            return False
        return not (self._processing_waiting and self._stores_in_a_row >= MAX_STORES_AHEAD)

    def _processing_may_go(self) -> bool:
        if self._busy:
            return False
        return not self._stores_waiting or self._stores_in_a_row >= MAX_STORES_AHEAD

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    @contextmanager
    def store(self) -> Iterator[None]:
        """Hold the write turn for storing one message."""
        if not self.enabled:
            yield
            return
        with self._cond:
            self._stores_waiting += 1
            self._cond.wait_for(self._store_may_go)
            self._stores_waiting -= 1
            self._busy = True
            self._stores_in_a_row += 1
        try:
            yield
        finally:
            self._release()

    def _take_processing_turn(self) -> None:
        with self._cond:
            self._processing_waiting += 1
            self._cond.wait_for(self._processing_may_go)
            self._processing_waiting -= 1
            self._busy = True
            self._stores_in_a_row = 0

    @contextmanager
    def process(self) -> Iterator[None]:
        """Hold the write turn for processing one stored message."""
        if not self.enabled:
            yield
            return
        self._take_processing_turn()
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Give a processing turn up for a while (the caller holds one), then take it back."""
        if not self.enabled:
            yield
            return
        self._release()
        try:
            yield
        finally:
            self._take_processing_turn()


class ParseOutsideTurn:
    """An adapter whose ``to_inbound`` (pure parsing) runs with the write turn given up."""

    def __init__(self, inner: ChannelAdapter, turns: WriterTurns) -> None:
        self.inner = inner
        self.turns = turns
        self.kind = inner.kind

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        """Parse with the inner adapter while stores may write."""
        with self.turns.paused():
            return self.inner.to_inbound(payload, inbox_id=inbox_id, raw_id=raw_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TurnAwareRegistry(ChannelRegistry):
    """A registry view whose adapters parse outside the write turn (for processing only)."""

    def __init__(self, inner: ChannelRegistry, turns: WriterTurns) -> None:
        super().__init__()
        self.inner = inner
        self.turns = turns

    def get(self, kind: str) -> ChannelAdapter:
        """Return the inner registry's adapter, wrapped."""
        return ParseOutsideTurn(self.inner.get(kind), self.turns)

    def find(self, kind: str) -> ChannelAdapter | None:
        """Return the inner registry's adapter, wrapped, or None."""
        found = self.inner.find(kind)
        return None if found is None else self.get(kind)

    def kinds(self) -> list[str]:
        """Return the inner registry's kinds."""
        return self.inner.kinds()
