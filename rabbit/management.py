"""A small client for RabbitMQ's management HTTP API (optional: the lab works without it)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from rabbit.errors import LabError


class ManagementUnavailable(LabError):
    code = "MANAGEMENT_UNAVAILABLE"


class ManagementClient:
    """Talks to ``/api/...`` with the broker's credentials; caches whether the API answers."""

    def __init__(self, base_url: str, *, timeout: float = 3.0, availability_ttl: float = 10.0) -> None:
        parts = urlsplit(base_url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        self.base_url = urlunsplit((parts.scheme or "http", netloc, parts.path.rstrip("/"), "", ""))
        self._auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self._timeout = timeout
        self._ttl = availability_ttl
        self._checked_at = 0.0
        self._available = False
        self._session = requests.Session()

    def available(self, *, refresh: bool = False) -> bool:
        """Whether the API answers (cached for ``availability_ttl`` seconds)."""
        now = time.monotonic()
        if refresh or now - self._checked_at > self._ttl:
            try:
                self._request("GET", "/api/overview", timeout=min(self._timeout, 1.5))
                self._available = True
            except ManagementUnavailable:
                self._available = False
            self._checked_at = now
        return self._available

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params or None)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def set_tracing(self, vhost: str, enabled: bool) -> None:
        """Switch the firehose (``amq.rabbitmq.trace``) for ``vhost`` on or off."""
        self.put(f"/api/vhosts/{quote(vhost, safe='')}", {"tracing": enabled})

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            response = self._session.request(
                method, self.base_url + path, auth=self._auth, timeout=timeout or self._timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise ManagementUnavailable(f"management API at {self.base_url} is unreachable") from exc
        if response.status_code in (401, 403):
            raise ManagementUnavailable(f"management API at {self.base_url} refused the credentials")
        if response.status_code >= 400:
            raise ManagementUnavailable(
                f"management API answered {response.status_code} for {method} {path}",
                details={"status": response.status_code},
            )
        if not response.content:
            return None
        return response.json()
