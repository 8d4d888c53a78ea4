"""Settings from defaults, the environment (``RABBITLENS_*``) and the command line, in that order."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from rabbit.urls import DEFAULT_AMQP_URL, management_url_for


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    amqp_url: str = DEFAULT_AMQP_URL
    management_url: str = ""  # empty: the AMQP host on 15672 with the same credentials
    async_mode: str = "gevent"
    # How long the lab waits for the broker to answer one operation.
    broker_timeout_s: float = 10.0
    # Required (HTTP API and Socket.IO) when set; must be set to bind anything but loopback.
    token: str = ""
    # Signs the session cookie; a random one per process when empty.
    secret_key: str = ""
    # The largest HTTP request body the app reads at all (message bodies have their own, smaller limit).
    max_request_bytes: int = 4 * 1024 * 1024
    # How deeply a JSON request body may nest (arrays and objects); deeper is a 400, not a RecursionError.
    max_json_depth: int = 32
    # Host names the lab is also served as (comma-separated; "*" for any), besides IP addresses, loopback names,
    # the bound address and this machine's name: any other Host header is refused (DNS rebinding).
    allowed_hosts: str = ""
    # Proxies in front of the lab (0: none) whose X-Forwarded-Proto/-Host/-For it trusts, e.g. one that
    # terminates TLS: the session cookie is then marked Secure, and Host and Origin checks see the public name.
    trust_proxy: int = 0
    # How long the session cookie keeps a given token.
    session_hours: float = 12.0
    # Wrong tokens from one address before each further try waits 1, 2, 4 ... up to token_backoff_max_s.
    token_failures_allowed: int = 5
    token_backoff_max_s: float = 60.0
    # DEBUG, INFO, WARNING...: DEBUG also shows every failed connection attempt with pika's own lines and tracebacks.
    log_level: str = "INFO"
    # Limits on what runs at once (each checked and reserved under one lock, so concurrent requests cannot race it).
    max_taps: int = 20
    max_spies: int = 10
    max_consumers: int = 50
    # What one POST /api/publish may ask: the largest body, the most copies, the most bytes of bodies in a burst
    # (count x body size: a load demo, not a broker filler).
    publish_max_body: int = 1024 * 1024
    publish_max_count: int = 10_000
    publish_max_burst_bytes: int = 64 * 1024 * 1024
    # Publishes (single messages or bursts) whose prediction a later delivery is checked against.
    predictions_kept: int = 10_000
    # Confirmed publish bursts at once (each holds up to 16 MiB of bodies in flight).
    publish_max_bursts: int = 4
    rpc_max_bursts: int = 4
    rpc_max_servers: int = 8
    # Stopped and killed fib servers kept in the server list (greyed, final counts) until cleared; the oldest go.
    rpc_kept_servers: int = 32
    # The longest an RPC burst may run before it is cancelled (its calls in flight are dropped).
    rpc_burst_max_s: float = 600.0
    # Socket.IO packets waiting for one client beyond which it is disconnected (a tab that stopped reading).
    client_max_backlog: int = 256
    client_max_backlog_bytes: int = 16 * 1024 * 1024
    # POST /api/route: how many missed bindings are explained (all with "all_misses") and near misses listed.
    route_misses_shown: int = 50
    route_near_misses: int = 10
    # POST /api/route/matrix: most routing keys (rows) in one matrix.
    route_matrix_max_keys: int = 200
    # GET /api/messages/<id>: the timelines of the last this many lab messages are kept (the oldest go first).
    messages_kept: int = 10_000

    def __post_init__(self) -> None:
        if not self.management_url:
            self.management_url = management_url_for(self.amqp_url)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RABBITLENS_<NAME>`` variables, then non-None ``overrides``."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"RABBITLENS_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the app reachable from this machine only."""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _coerce(kind: Any, raw: str) -> Any:
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    return raw
