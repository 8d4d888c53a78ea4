"""A Fibonacci RPC server, wire-compatible with the RabbitMQ tutorial's clients in any language.

    python -m rabbit.fib_server [--amqp-url URL] [--queue rpc_queue] [--prefetch 1] [--work-ms 0] [--max-n 100000]
                                [--server-id ID] [--status-file PATH] [--ack-delay-ms 0]
                                [--queue-type auto|quorum|classic] [--queue-durable | --no-queue-durable]

The broker URL comes from ``--amqp-url``, else ``RABBITLENS_AMQP_URL`` or ``AMQP_URL`` in the environment (the
lab passes it that way: a command line is world-readable in ``ps``, the environment is not).

The request queue: an existing one is used as it is (a passive declare first: the first declaration of a queue
wins, and a second one with other flags is refused with 406 PRECONDITION_FAILED). A missing one is declared
durable, as today's tutorials do: a quorum queue where the broker has them (3.8 and later), else classic.
``--no-queue-durable`` (a transient classic queue) matches the older tutorials, which declare it transient.

Request: body ``n`` as decimal text, ``reply_to`` and ``correlation_id`` set. Reply: body ``fib(n)`` as decimal
text, the same ``correlation_id``, published to ``reply_to`` through the default exchange, then the request is
acked. Bad input gets an error reply (``headers: {"error": reason}`` and a short text body) and is acked: input
never kills the server. A request without ``reply_to`` is acked and logged. Every reply carries the header
``x-rpc-server`` (this server's id) so a client can show who answered.

``--work-ms`` makes each request take that long, one at a time (a timer, not a sleep: the connection stays
responsive), to show load balancing between servers. ``--ack-delay-ms`` holds acks back after replying, which
widens the window in which a killed server has replied but not acked: its requests are redelivered and answered
twice, and the client sees a duplicate reply.

Stats: a JSON line on stdout once a second when they change (``{"event": "stats", ...}``), and the same object in
``--status-file`` (replaced atomically, a few times a second) for the lab to read.

It uses pika's asynchronous ``SelectConnection`` and acks in batches (``multiple=True``): per-message acks and a
blocking connection cap the call rate well below what the broker can do.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pika
import pika.exceptions as pex

from rabbit.async_connection import AsyncConnection, ConnectionHooks
from rabbit.fib import DEFAULT_MAX_N, FibRequestError, answer
from rabbit.fib_server_args import QUEUE_TYPES, parse_args
from rabbit.rpc_calls import SERVER_HEADER
from rabbit.urls import DEFAULT_AMQP_URL, redact_url

log = logging.getLogger("rabbit.fib_server")

STATUS_INTERVAL_S = 0.25
STDOUT_INTERVAL_S = 1.0
SETUP_TIMEOUT_S = 5.0  # queue declare + qos must be answered by then, or the server gives up (state "error")
BACKOFF_MAX_S = 5.0


class FibServer(ConnectionHooks):
    """One connection, one channel, one consumer on ``queue``; everything runs in the ioloop's thread."""

    def __init__(
        self,
        amqp_url: str = DEFAULT_AMQP_URL,
        *,
        queue: str = "rpc_queue",
        prefetch: int = 1,
        work_ms: float = 0.0,
        max_n: int = DEFAULT_MAX_N,
        server_id: str | None = None,
        status_file: str | os.PathLike[str] | None = None,
        ack_delay_ms: float = 0.0,
        print_stats: bool = True,
        parent_pid: int | None = None,
        queue_durable: bool = True,
        queue_type: str = "auto",
    ) -> None:
        if queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue_type must be one of {', '.join(QUEUE_TYPES)}")
        if queue_type == "quorum" and not queue_durable:
            raise ValueError("a quorum queue is always durable: use a classic queue to have it transient")
        self.amqp_url = amqp_url
        self.queue_durable = queue_durable
        self.queue_type = queue_type
        # check: a passive declare; declare: our own declaration; adopt: a passive declare after a 406.
        self._declare_step = "check"
        self.queue = queue
        self.prefetch = prefetch
        self.work_s = max(0.0, work_ms) / 1000.0
        self.ack_delay_s = max(0.0, ack_delay_ms) / 1000.0
        self.max_n = max_n
        self.server_id = server_id or f"fib-{os.getpid()}"
        self.status_file = Path(status_file) if status_file else None
        self.print_stats = print_stats
        self.parent_pid = parent_pid
        self.stats: dict[str, Any] = {
            "event": "stats",
            "id": self.server_id,
            "pid": os.getpid(),
            "queue": queue,
            "prefetch": prefetch,
            "work_ms": work_ms,
            "max_n": max_n,
            "state": "starting",
            "queue_wanted": {"durable": queue_durable, "type": queue_type},
            "queue_declaration": None,
            "handled": 0,
            "errors": 0,
            "no_reply_to": 0,
            "redelivered": 0,
            "in_flight": 0,
            "reconnects": 0,
            "error": None,
            "started": time.time(),
        }
        self._runner = AsyncConnection(
            amqp_url,
            self,
            name=f"fib-server {self.server_id}",
            label=self.server_id,
            heartbeat=20,
            backoff_max=BACKOFF_MAX_S,
        )
        self._channel: Any = None
        self._consumer_tag: str | None = None
        self._unacked: list[int] = []
        self._ack_scheduled = False
        self._busy_until = 0.0
        self._setup_timer: Any = None
        self._last_printed: dict[str, Any] | None = None
        self._last_written: dict[str, Any] | None = None
        self._last_print_at = 0.0

    # ------------------------------------------------------------------ running
    @property
    def _connection(self) -> pika.SelectConnection | None:
        return self._runner.connection

    @property
    def _stopping(self) -> bool:
        return self._runner.should_stop

    def run(self) -> int:
        """Serve until stopped (SIGTERM/SIGINT or :meth:`request_stop`); reconnect with backoff if the broker goes."""
        self._runner.run()
        failed = self.stats["state"] == "error"
        if not failed:
            self._set_state("stopped")
        self._write_status(force=True)
        self._print_stats(force=True)
        return 1 if failed else 0

    def request_stop(self) -> None:
        """Stop gracefully: stop consuming, finish and ack what is in hand, close. Safe from a signal handler."""
        conn = self._connection
        if conn is None:
            self._runner.should_stop = True
            return
        conn.ioloop.add_callback_threadsafe(self._begin_stop)

    # ------------------------------------------------------------------ connection and channel
    def on_connection_open(self, connection: pika.SelectConnection) -> None:
        log.info("%s: connected to %s", self.server_id, redact_url(self.amqp_url))
        connection.channel(on_open_callback=self.on_channel_open)
        self._tick()

    def on_connection_open_error(self, reason: str, error: BaseException) -> None:
        self.stats["error"] = reason

    def on_connection_closed(self, reason: str, error: BaseException) -> None:
        self._channel = None
        self._unacked.clear()  # the broker requeues them: they will be redelivered
        self.stats["in_flight"] = 0
        if not self._stopping:
            self.stats["error"] = reason
        self._setup_timer = None  # timers die with their ioloop

    def on_reconnecting(self, delay: float) -> None:
        self.stats["reconnects"] += 1
        self._set_state("reconnecting")
        log.debug("%s: reconnecting in %.1fs", self.server_id, delay)

    def on_retry_wait(self) -> None:
        if self._parent_gone() and not self._stopping:
            log.warning("%s: the process that started me is gone: stopping", self.server_id)
            self._runner.should_stop = True

    def on_channel_open(self, channel: Any, step: str = "check") -> None:
        self._channel = channel
        self._declare_step = step
        channel.add_on_close_callback(self.on_channel_closed)
        if step == "declare":
            durable, arguments = self._queue_flags()
            channel.queue_declare(
                self.queue, durable=durable, arguments=arguments or None, callback=self.on_queue_declared
            )
        else:
            channel.queue_declare(self.queue, passive=True, callback=self.on_queue_declared)

        if self._connection is not None and self._setup_timer is None:
            self._setup_timer = self._connection.ioloop.call_later(SETUP_TIMEOUT_S, self._on_setup_stuck)

    def _on_setup_stuck(self) -> None:
        """No answer to the queue declare in time (the broker answered for another name, say): never sit in
        "starting" for ever; report the error and end."""
        self._setup_timer = None
        if self.stats["state"] not in ("starting", "reconnecting"):
            return
        self.stats["error"] = (
            f"the broker did not answer the declare of queue {self.queue!r} within {SETUP_TIMEOUT_S:g} s: giving up"
        )
        log.error("%s: %s", self.server_id, self.stats["error"])
        self._runner.should_stop = True
        self._set_state("error")
        # Not conn.close(): pika would first close the channel, and that Close waits behind the unanswered declare.
        if not self._runner.abort() and self._connection is not None:
            self._connection.ioloop.stop()

    def _queue_flags(self) -> tuple[bool, dict[str, Any]]:
        """(durable, arguments) of the queue this server declares when none exists."""
        kind = self.queue_type
        if kind == "auto":
            kind = "quorum" if self.queue_durable and broker_has_quorum_queues(self._connection) else "classic"
        if kind == "quorum":
            return True, {"x-queue-type": "quorum"}
        return self.queue_durable, {}

    def on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._channel or self._stopping:
            return
        self._channel = None
        code = getattr(reason, "reply_code", None)
        text = getattr(reason, "reply_text", "") or str(reason)
        assert self._connection is not None
        if code == 404 and self._declare_step == "check":  # no such queue yet: declare it
            self._connection.channel(on_open_callback=lambda ch: self.on_channel_open(ch, "declare"))
            return
        if code == 406 and self._declare_step == "declare":
            # Another program declared the queue, with other flags, between our check and our declaration: the
            # first declaration wins (the broker keeps a queue's flags for its whole life), so use it as it is.
            durable, arguments = self._queue_flags()
            self.stats["queue_declaration"] = {
                "adopted": True,
                "note": (
                    f"{self.queue!r} was declared by another program just before this server's declaration "
                    f"({describe_queue(durable, arguments)}), with other flags: the first declaration wins, so "
                    f"this server uses it as it is (the broker said: {text})"
                ),
            }
            log.info("%s: %s", self.server_id, self.stats["queue_declaration"]["note"])
            self._connection.channel(on_open_callback=lambda ch: self.on_channel_open(ch, "adopt"))
            return
        log.error("%s: channel closed: %s", self.server_id, reason)
        self.stats["error"] = str(reason)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def on_queue_declared(self, frame: Any) -> None:
        assert self._channel is not None
        if self._declare_step == "check":
            self.stats["queue_declaration"] = {
                "adopted": True,
                "note": (
                    f"{self.queue!r} already existed: this server uses it as it is (its flags are whatever its "
                    "first declaration made them; a later declaration with other flags is refused with 406)"
                ),
            }
        elif self._declare_step == "declare":
            durable, arguments = self._queue_flags()
            self.stats["queue_declaration"] = {
                "adopted": False,
                "durable": durable,
                "type": arguments.get("x-queue-type", "classic"),
                "note": f"declared {self.queue!r} {describe_queue(durable, arguments)}",
            }
        self._channel.basic_qos(prefetch_count=self.prefetch, callback=self.on_qos_set)

    def on_qos_set(self, _frame: Any) -> None:
        assert self._channel is not None
        if self._setup_timer is not None and self._connection is not None:
            self._connection.ioloop.remove_timeout(self._setup_timer)
        self._setup_timer = None
        self._consumer_tag = self._channel.basic_consume(
            self.queue, self.on_request, auto_ack=False, consumer_tag=f"{self.server_id}-{time.monotonic_ns()}"
        )
        self.stats["error"] = None
        self._runner.mark_ready()  # connected and consuming: a later drop starts the backoff over
        self._set_state("serving")
        log.info("%s: awaiting RPC requests on %s (prefetch %d)", self.server_id, self.queue, self.prefetch)

    # ------------------------------------------------------------------ requests
    def on_request(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.stats["in_flight"] += 1
        if method.redelivered:
            self.stats["redelivered"] += 1
        if self.work_s <= 0:
            self._answer_safely(channel, method, props, body)
            return
        # Simulated work, one request at a time: each starts when the previous one ends.
        now = time.monotonic()
        self._busy_until = max(now, self._busy_until) + self.work_s
        assert self._connection is not None
        self._connection.ioloop.call_later(
            self._busy_until - now, lambda: self._answer_safely(channel, method, props, body)
        )

    def _answer_safely(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        """:meth:`_answer`, but a request that cannot be answered is counted and logged, never the end of the
        server (an exception let out of a pika callback stops the ioloop)."""
        try:
            self._answer(channel, method, props, body)
        except Exception as exc:
            self.stats["errors"] += 1
            self.stats["error"] = f"could not answer a request: {type(exc).__name__}: {exc}"[:500]
            log.warning("%s: %s", self.server_id, self.stats["error"])
            log.debug("%s: answering failed", self.server_id, exc_info=exc)

    def _answer(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        if channel is not self._channel or not channel.is_open:
            return  # the channel died meanwhile: the broker redelivers this request elsewhere
        if not props.reply_to:
            self.stats["no_reply_to"] += 1
            log.warning(
                "%s: request without reply_to acked and dropped (correlation_id=%r, %d bytes)",
                self.server_id,
                props.correlation_id,
                len(body),
            )
        else:
            headers: dict[str, Any] = {SERVER_HEADER: self.server_id}
            try:
                _, text = answer(body, self.max_n)
                self.stats["handled"] += 1
            except FibRequestError as error:
                headers["error"] = str(error)
                text = f"error: {error}"
                self.stats["errors"] += 1
            except Exception as error:  # never die on one request
                log.exception("%s: failed on a request", self.server_id)
                headers["error"] = f"internal error: {type(error).__name__}"
                text = "error: internal error"
                self.stats["errors"] += 1
            reply = pika.BasicProperties(
                correlation_id=props.correlation_id, content_type="text/plain", headers=headers
            )
            channel.basic_publish("", props.reply_to, text.encode("ascii"), reply)
        self._unacked.append(method.delivery_tag)
        if not self._ack_scheduled:
            self._ack_scheduled = True
            assert self._connection is not None
            # After the frames already read are handled: one ack (multiple=True) covers the whole batch.
            self._connection.ioloop.call_later(self.ack_delay_s, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_scheduled = False
        if not self._unacked or self._channel is None or not self._channel.is_open:
            self._unacked.clear()
            return
        # Requests are answered in delivery order, so every tag up to the last one is done.
        self._channel.basic_ack(delivery_tag=self._unacked[-1], multiple=True)
        self.stats["in_flight"] = max(0, self.stats["in_flight"] - len(self._unacked))
        self._unacked.clear()
        if self._stopping and self.stats["in_flight"] == 0:
            self._close()

    # ------------------------------------------------------------------ stopping
    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._runner.should_stop = True
        self._set_state("stopping")
        log.info("%s: stopping (finishing %d in hand)", self.server_id, self.stats["in_flight"])
        if self._channel is not None and self._channel.is_open and self._consumer_tag:
            self._channel.basic_cancel(self._consumer_tag)
        if self.stats["in_flight"] == 0:
            self._close()
        else:
            assert self._connection is not None
            self._connection.ioloop.call_later(10.0, self._close)  # do not hang on a stuck request

    def _close(self) -> None:
        self._runner.close()

    # ------------------------------------------------------------------ stats
    def _set_state(self, state: str) -> None:
        self.stats["state"] = state
        self._write_status(force=True)

    def _tick(self) -> None:
        conn = self._connection
        if conn is None or conn.is_closed:
            return
        self._write_status()
        if self._parent_gone() and not self._stopping:
            log.warning("%s: the process that started me (pid %d) is gone: stopping", self.server_id, self.parent_pid)
            self._begin_stop()
        if time.monotonic() - self._last_print_at >= STDOUT_INTERVAL_S:
            self._print_stats()
        conn.ioloop.call_later(STATUS_INTERVAL_S, self._tick)

    def _parent_gone(self) -> bool:
        return bool(self.parent_pid) and os.getppid() != self.parent_pid

    def _snapshot(self) -> dict[str, Any]:
        return {**self.stats, "time": time.time()}

    def _write_status(self, force: bool = False) -> None:
        if self.status_file is None:
            return
        counters = {k: v for k, v in self.stats.items()}
        if not force and counters == self._last_written:
            return
        self._last_written = counters
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self._snapshot()))
            os.replace(tmp, self.status_file)
        except OSError:
            log.exception("%s: cannot write %s", self.server_id, self.status_file)

    def _print_stats(self, force: bool = False) -> None:
        if not self.print_stats:
            return
        self._last_print_at = time.monotonic()
        counters = {k: v for k, v in self.stats.items()}
        if not force and counters == self._last_printed:
            return
        self._last_printed = counters
        print(json.dumps(self._snapshot()), flush=True)


def broker_has_quorum_queues(connection: Any) -> bool:
    """Whether the broker this connection is open to has quorum queues (RabbitMQ 3.8 and later)."""
    props = getattr(connection, "server_properties", None) or {}
    version = props.get("version", b"")
    version = version.decode("utf-8", "replace") if isinstance(version, bytes) else str(version)
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 8)


def describe_queue(durable: bool, arguments: dict[str, Any]) -> str:
    kind = arguments.get("x-queue-type", "classic")
    return f"{'durable' if durable else 'transient'} {kind}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, description=__doc__.split("\n\n")[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    server = FibServer(
        args.amqp_url,
        queue=args.queue,
        prefetch=args.prefetch,
        work_ms=args.work_ms,
        max_n=args.max_n,
        server_id=args.server_id,
        status_file=args.status_file,
        ack_delay_ms=args.ack_delay_ms,
        parent_pid=args.parent_pid,
        queue_durable=args.queue_durable,
        queue_type=args.queue_type,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.request_stop())
    try:
        return server.run()
    except pex.AMQPError as error:
        log.error("%s: %s", server.server_id, error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
