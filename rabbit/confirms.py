"""Publisher confirms with many messages in flight: which message each ack, nack or return is about (pure, no I/O).

On a channel in confirm mode the broker numbers the messages 1, 2, 3... (delivery tags) and answers each with
``basic.ack`` or ``basic.nack``, possibly for many at once (``multiple``: every tag up to this one). A mandatory
message it could not route comes back first as ``basic.return`` and is acked after that, so a return always
arrives before the confirm of the same message. :class:`ConfirmLedger` keeps the messages waiting for their
confirm, in order, and turns each confirm into the finished :class:`Confirmed` records, oldest first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


def window_for(body_size: int, window: int, max_bytes_in_flight: int) -> int:
    """How many messages of ``body_size`` bytes may wait for their confirms at once: at most ``window``, and no
    more than ``max_bytes_in_flight`` of bodies (a burst of 1 MiB bodies must not buffer a gigabyte), but one at
    the least."""
    if window < 1 or max_bytes_in_flight < 1:
        raise ValueError("window and max_bytes_in_flight must be at least 1")
    return max(1, min(window, max_bytes_in_flight // max(1, body_size)))


@dataclass(frozen=True)
class Confirmed:
    """One message the broker answered: ``acked`` (else nacked) and, if it came back, its ``returned`` details."""

    message_id: str
    tag: int
    acked: bool
    returned: dict[str, Any] | None
    published_at: float

    @property
    def routed(self) -> bool:
        """Acked and not returned: the broker put it in at least one queue."""
        return self.acked and self.returned is None


class ConfirmLedger:
    """Delivery tags of one confirm-mode channel, from the first publish on it."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._tag_of: dict[str, int] = {}
        self._returned: dict[int, dict[str, Any]] = {}
        self._next_tag = 1

    @property
    def unconfirmed(self) -> int:
        """Messages sent and not yet acked or nacked."""
        return len(self._waiting)

    @property
    def sent(self) -> int:
        return self._next_tag - 1

    def send(self, message_id: str, published_at: float) -> int:
        """Record the next publish; returns the delivery tag the broker gives it."""
        if message_id in self._tag_of:
            raise ValueError(f"message id {message_id!r} is already waiting for its confirm")
        tag = self._next_tag
        self._next_tag += 1
        self._waiting[tag] = (message_id, published_at)
        self._tag_of[message_id] = tag
        return tag

    def returned(self, message_id: str | None, details: dict[str, Any]) -> bool:
        """A ``basic.return`` for ``message_id``; False if no such message waits (then it is ignored)."""
        tag = self._tag_of.get(message_id) if message_id is not None else None
        if tag is None:
            return False
        self._returned[tag] = details
        return True

    def acked(self, tag: int, multiple: bool = False) -> list[Confirmed]:
        return self._confirm(tag, multiple, acked=True)

    def nacked(self, tag: int, multiple: bool = False) -> list[Confirmed]:
        return self._confirm(tag, multiple, acked=False)

    def abandon(self) -> list[tuple[str, float]]:
        """Forget every waiting message (the channel closed before their confirms): ``(message_id, published_at)``."""
        left = list(self._waiting.values())
        self._waiting.clear()
        self._tag_of.clear()
        self._returned.clear()
        return left

    def _confirm(self, tag: int, multiple: bool, *, acked: bool) -> list[Confirmed]:
        if multiple:
            tags = []
            for waiting in self._waiting:
                if waiting > tag:
                    break
                tags.append(waiting)
        else:
            tags = [tag] if tag in self._waiting else []
        done = []
        for each in tags:
            message_id, published_at = self._waiting.pop(each)
            del self._tag_of[message_id]
            done.append(Confirmed(message_id, each, acked, self._returned.pop(each, None), published_at))
        return done
