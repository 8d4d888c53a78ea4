"""The command line of the fib server (``python -m rabbit.fib_server --help``): its options and their checks."""

from __future__ import annotations

import argparse
import os

from rabbit.errors import InvalidInput
from rabbit.fib import DEFAULT_MAX_N
from rabbit.urls import DEFAULT_AMQP_URL
from rabbit.validation import check_name

QUEUE_TYPES = ("auto", "quorum", "classic")
URL_ENV_VARS = ("RABBITLENS_AMQP_URL", "AMQP_URL")


def amqp_url_from_env(environ: dict[str, str] | None = None) -> str:
    """The broker URL the environment gives (``RABBITLENS_AMQP_URL``, then ``AMQP_URL``), else the default."""
    environ = os.environ if environ is None else environ
    for name in URL_ENV_VARS:
        if environ.get(name):
            return environ[name]
    return DEFAULT_AMQP_URL


def parse_args(argv: list[str] | None, description: str = "") -> argparse.Namespace:
    """The command line of ``python -m rabbit.fib_server``, checked (``parser.error`` exits 2 with the reason)."""
    parser = argparse.ArgumentParser(prog="python -m rabbit.fib_server", description=description)
    parser.add_argument(
        "--amqp-url",
        default=None,
        help="broker URL (default: RABBITLENS_AMQP_URL or AMQP_URL from the environment, which keeps the password "
        "out of ps; else the local default)",
    )
    parser.add_argument(
        "--queue-type",
        choices=QUEUE_TYPES,
        default="auto",
        help="the type of the request queue if this server declares it (default auto: quorum where the broker has "
        "them, else classic); an existing queue is used as it is",
    )
    parser.add_argument(
        "--queue-durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="declare the request queue durable (default; today's tutorials) or transient (--no-queue-durable: "
        "the older tutorials, classic only)",
    )
    parser.add_argument("--queue", default="rpc_queue", help="the request queue (default rpc_queue)")
    parser.add_argument("--prefetch", type=int, default=1, help="unacked requests in hand at once (default 1)")
    parser.add_argument("--work-ms", type=float, default=0.0, help="simulated work per request, ms (default 0)")
    parser.add_argument("--max-n", type=int, default=DEFAULT_MAX_N, help=f"largest n served (default {DEFAULT_MAX_N})")
    parser.add_argument("--server-id", help="the id put in replies' x-rpc-server header (default fib-<pid>)")
    parser.add_argument("--status-file", help="write the stats JSON here a few times a second")
    parser.add_argument("--ack-delay-ms", type=float, default=0.0, help="hold acks back after replying (demo)")
    parser.add_argument("--parent-pid", type=int, help="stop when this process (the lab that started us) is gone")
    args = parser.parse_args(argv)
    if args.prefetch < 1:
        parser.error("--prefetch must be >= 1")
    if args.max_n < 0:
        parser.error("--max-n must be >= 0")
    if args.queue_type == "quorum" and not args.queue_durable:
        parser.error("a quorum queue is always durable: --no-queue-durable needs --queue-type classic (or auto)")
    if args.amqp_url is None:
        args.amqp_url = amqp_url_from_env()
    try:
        check_name(args.queue, "--queue")
    except InvalidInput as exc:
        parser.error(exc.message)
    return args
