"""How the lab's services report what happens, and how they run work in the background.

A service is handed one :class:`EventSink` and knows nothing of who listens: the web layer's live hub turns it into
Socket.IO emits, a script or a test can hand in a list that records. Two rates, two methods:

- :meth:`EventSink.emit` for low-rate events (state changes, lists, progress): every listener gets each one, now;
- :meth:`EventSink.stream` for high-rate ones (deliveries, taps, trace, RPC calls): the listener may batch them
  under load and drop some from the view of a slow reader (with exact counts), never buffering without bound.

Background work goes through a :data:`Spawn` function (the web layer hands in Socket.IO's
``start_background_task``; under gevent's patching a plain thread is a greenlet, so :func:`start_thread` also works).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class EventSink(Protocol):
    def emit(self, event: str, data: Any) -> None:
        """A low-rate event, for every listener at once."""

    def stream(self, event: str, data: Any) -> None:
        """A high-rate event: may be batched, and dropped (counted) for a listener that lags behind."""


Spawn = Callable[[Callable[[], None]], Any]


def start_thread(target: Callable[[], None]) -> threading.Thread:
    """The default :data:`Spawn`: a daemon thread (a greenlet under gevent's patching)."""
    thread = threading.Thread(target=target, name=f"rabbitlens-{getattr(target, '__name__', 'task')}", daemon=True)
    thread.start()
    return thread


class ObservedSink:
    """An :class:`EventSink` that hands every event to ``sink`` and then shows it to each of ``observers``
    (``observe(event, data)``): how the message service sees what every other service reports. Observers may be
    added after the services are built (they hold this sink, not the observers)."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.observers: list[Callable[[str, Any], None]] = []

    def emit(self, event: str, data: Any) -> None:
        self.sink.emit(event, data)
        self._show(event, data)

    def stream(self, event: str, data: Any) -> None:
        self.sink.stream(event, data)
        self._show(event, data)

    def _show(self, event: str, data: Any) -> None:
        for observe in list(self.observers):
            observe(event, data)


class RecordingSink:
    """An :class:`EventSink` that keeps every event, in order (for scripts and tests that build a service alone)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []  # (rate, event, data); rate is "emit" or "stream"
        self._lock = threading.Lock()

    def emit(self, event: str, data: Any) -> None:
        with self._lock:
            self.events.append(("emit", event, data))

    def stream(self, event: str, data: Any) -> None:
        with self._lock:
            self.events.append(("stream", event, data))

    def named(self, event: str) -> list[Any]:
        with self._lock:
            return [data for _rate, name, data in self.events if name == event]
