"""Settings from defaults, the environment (``RABBITLENS_*``) and the command line, in that order."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
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
    # POST /api/route: how many missed bindings are explained (all with "all_misses") and near misses listed.
    route_misses_shown: int = 50
    route_near_misses: int = 10
    # POST /api/route/matrix: most routing keys (rows) in one matrix.
    route_matrix_max_keys: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.management_url:
            self.management_url = management_url_for(self.amqp_url)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RABBITLENS_<NAME>`` variables, then non-None ``overrides``."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
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
