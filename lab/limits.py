"""Check-and-reserve for the lab's limits (taps, consumers, bursts...), under one lock (pure: no I/O).

A limit checked with ``len(things) >= limit`` and enforced by adding the thing after it has started (a tap's
connection, a consumer's ``basic.consume``) is raced: every request that checks while the others are still
starting sees room, so 500 concurrent ``POST /api/taps`` made 500 taps under a limit of 20. :class:`Slots`
counts the things still starting next to the ones that run, and checks and reserves in one step under its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rabbit.errors import LabError


class LimitReached(LabError):
    """A limit is reached; ``code`` is the one the route always answered with (its HTTP status follows)."""


class Slots:
    """At most ``limit`` of something, counting those being set up.

    ``with slots.reserve(in_use):`` checks ``in_use() + starting < limit`` and counts one more starting, both under
    the lock; the caller registers the new thing (so that ``in_use()`` counts it) before the block ends, or lets
    an exception out (the reservation is then simply given back). ``in_use`` is called under the lock: it must be
    quick and must not take that lock itself.
    """

    def __init__(self, limit: int, message: str, *, code: str = "RESOURCE_LOCKED", lock: object | None = None):
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.message = message
        self.code = code
        self._lock = lock if lock is not None else threading.Lock()
        self.starting = 0
        self.held = 0

    @contextmanager
    def reserve(self, in_use: Callable[[], int]) -> Iterator[None]:
        with self._lock:  # type: ignore[attr-defined]
            if in_use() + self.starting >= self.limit:
                raise LimitReached(self.message.format(limit=self.limit), code=self.code, details={"limit": self.limit})
            self.starting += 1
        try:
            yield
        finally:
            self._count(starting=-1)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """One slot for as long as the block runs (for things that live inside one request, like a burst)."""
        with self.reserve(lambda: self.held):
            self._count(held=1)
        try:
            yield
        finally:
            self._count(held=-1)

    def _count(self, *, starting: int = 0, held: int = 0) -> None:
        with self._lock:  # type: ignore[attr-defined]
            self.starting += starting
            self.held += held
