"""The pending-call book of an RPC client: correlation ids, deadlines, replies, orphans (pure, no I/O).

An RPC client sends each request with a unique ``correlation_id`` and waits for a reply carrying the same id.
The book remembers what is in flight and sorts every incoming reply into one of four outcomes:

- ``answered``: the first reply to a call that is still waiting;
- ``duplicate``: a second reply to an answered call (a server died after replying and before acking, so the
  request was redelivered and answered again);
- ``late``: a reply to a call that already timed out;
- ``unknown``: an id this client never sent (or forgot long ago).

The last three are *orphans*: the tutorial drops them rather than failing, and so do we (the caller shows them).
Time is passed in by the caller (``now``), so every rule is testable without clocks or sockets.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ANSWERED = "answered"
DUPLICATE = "duplicate"
LATE = "late"
UNKNOWN = "unknown"
ORPHAN_REASONS = (DUPLICATE, LATE, UNKNOWN)

# How a finished call ended, remembered to classify stragglers.
_DONE_ANSWERED = "answered"
_DONE_TIMED_OUT = "timed_out"
_DONE_FAILED = "failed"


@dataclass
class PendingCall:
    """One call in flight. ``context`` belongs to the caller (a waiter, a burst, the request's n...)."""

    correlation_id: str
    sent_at: float
    deadline: float
    context: Any = None
    replies: int = 0

    def elapsed_ms(self, now: float) -> float:
        return (now - self.sent_at) * 1000.0


@dataclass
class Outcome:
    """What a reply means: ``kind`` is one of ANSWERED, DUPLICATE, LATE, UNKNOWN."""

    kind: str
    correlation_id: str
    call: PendingCall | None = None  # set for ANSWERED
    latency_ms: float | None = None  # set for ANSWERED, and for orphans of a call we remember

    @property
    def is_orphan(self) -> bool:
        return self.kind != ANSWERED


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@dataclass
class PendingCalls:
    """The book. Not thread-safe: one owner (the connection's thread) uses it.

    ``remember`` bounds how many finished ids are kept to tell duplicates and late replies from unknown ones.
    """

    remember: int = 10_000
    make_id: Callable[[], str] = new_correlation_id
    _pending: dict[str, PendingCall] = field(default_factory=dict)
    _deadlines: list[tuple[float, int, str]] = field(default_factory=list)
    _finished: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, correlation_id: object) -> bool:
        return correlation_id in self._pending

    def get(self, correlation_id: str) -> PendingCall | None:
        return self._pending.get(correlation_id)

    def add(self, now: float, timeout_s: float, context: Any = None, correlation_id: str | None = None) -> PendingCall:
        """Register a call sent at ``now`` that gives up after ``timeout_s``; returns it (with its new id)."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        cid = correlation_id if correlation_id is not None else self.make_id()
        if cid in self._pending or cid in self._finished:
            raise ValueError(f"correlation id {cid!r} is already in use")
        call = PendingCall(cid, now, now + timeout_s, context)
        self._pending[cid] = call
        heapq.heappush(self._deadlines, (call.deadline, next(self._seq), cid))
        return call

    def on_reply(self, correlation_id: str | None, now: float) -> Outcome:
        """Classify a reply that arrived at ``now``; an answered call leaves the book."""
        cid = correlation_id or ""
        call = self._pending.pop(cid, None)
        if call is not None:
            call.replies += 1
            self._finish(cid, _DONE_ANSWERED, call.sent_at)
            return Outcome(ANSWERED, cid, call, call.elapsed_ms(now))
        done = self._finished.get(cid)
        if done is None:
            return Outcome(UNKNOWN, cid)
        how, sent_at = done
        kind = LATE if how == _DONE_TIMED_OUT else DUPLICATE
        if how == _DONE_TIMED_OUT:  # only the first straggler is late; later ones are duplicates of it
            self._finished[cid] = (_DONE_ANSWERED, sent_at)
        return Outcome(kind, cid, None, (now - sent_at) * 1000.0)

    def cancel(self, correlation_id: str) -> PendingCall | None:
        """Forget a call without an answer (its send failed, say); a later reply to it counts as late."""
        call = self._pending.pop(correlation_id, None)
        if call is not None:
            self._finish(correlation_id, _DONE_TIMED_OUT, call.sent_at)
        return call

    def expire(self, now: float) -> list[PendingCall]:
        """Remove and return every call whose deadline is at or before ``now``, earliest first."""
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, cid = heapq.heappop(self._deadlines)
            call = self._pending.pop(cid, None)
            if call is not None:  # else: answered or cancelled already (lazy deletion)
                self._finish(cid, _DONE_TIMED_OUT, call.sent_at)
                expired.append(call)
        return expired

    def next_deadline(self) -> float | None:
        """The earliest deadline of a call still pending, or None when nothing waits."""
        while self._deadlines and self._deadlines[0][2] not in self._pending:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def fail_all(self) -> list[PendingCall]:
        """Remove and return every pending call (the connection is gone); their replies, if any, count as late."""
        calls = list(self._pending.values())
        for call in calls:
            self._finish(call.correlation_id, _DONE_FAILED, call.sent_at)
        self._pending.clear()
        self._deadlines.clear()
        return calls

    def _finish(self, cid: str, how: str, sent_at: float) -> None:
        if how == _DONE_FAILED:
            how = _DONE_TIMED_OUT
        self._finished[cid] = (how, sent_at)
        self._finished.move_to_end(cid)
        while len(self._finished) > self.remember:
            self._finished.popitem(last=False)
