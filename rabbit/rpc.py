"""The lab's RPC client and what goes with it, under one name: ``from rabbit.rpc import RpcClient``.

The parts live in their own modules:

- :mod:`rabbit.rpc_client`: :class:`RpcClient`, one asynchronous connection with many calls in flight;
- :mod:`rabbit.rpc_burst`: bursts of calls with up to ``concurrency`` in flight, run inside the client's owner;
- :mod:`rabbit.rpc_probes`: the queue checks (does the queue exist, how many consume from it);
- :mod:`rabbit.rpc_calls`: the wire's names, one call's request and result shapes, the reply checks (pure);
- :mod:`rabbit.rpc_stats`: the latency percentiles of a burst (pure).
"""

from __future__ import annotations

from rabbit.rpc_burst import (
    BURST_PROGRESS_INTERVAL_S,
    BURST_REPORT_INTERVAL_S,
    DEFAULT_BURST_MAX_S,
)
from rabbit.rpc_calls import (
    CALLBACK_QUEUE,
    DIRECT_REPLY_QUEUE,
    DIRECT_REPLY_TO,
    FIRST_ROUNDED_FIB_N,
    LARGEST_DOUBLE_FIB_N,
    NOT_AN_INTEGER,
    REPLY_MODES,
    SERVER_HEADER,
    EventSink,
    RpcServerError,
    RpcTimeout,
    decode_header,
    expiration_for,
    reply_problem,
    shorten,
)
from rabbit.rpc_client import RpcClient
from rabbit.rpc_probes import PROBE_TIMEOUT_S
from rabbit.rpc_stats import latency_summary, percentile

__all__ = [
    "BURST_PROGRESS_INTERVAL_S",
    "BURST_REPORT_INTERVAL_S",
    "CALLBACK_QUEUE",
    "DEFAULT_BURST_MAX_S",
    "DIRECT_REPLY_QUEUE",
    "DIRECT_REPLY_TO",
    "FIRST_ROUNDED_FIB_N",
    "LARGEST_DOUBLE_FIB_N",
    "NOT_AN_INTEGER",
    "PROBE_TIMEOUT_S",
    "REPLY_MODES",
    "SERVER_HEADER",
    "EventSink",
    "RpcClient",
    "RpcServerError",
    "RpcTimeout",
    "decode_header",
    "expiration_for",
    "latency_summary",
    "percentile",
    "reply_problem",
    "shorten",
]
