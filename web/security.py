"""Who may use the lab: an access token when one is set, the names the lab is served as, same-origin browsers.

- ``RABBITLENS_TOKEN`` set: every ``/api/`` request and every Socket.IO connection needs it, as
  ``Authorization: Bearer <token>``, an ``X-RabbitLens-Token`` header, or the session cookie that
  ``POST /api/session`` sets after the page asked for the token once. The cookie holds an HMAC of the token (a
  new token voids old cookies), expires after ``RABBITLENS_SESSION_HOURS`` and is ``Secure`` over HTTPS.
  Repeated wrong tokens from one address are slowed down (429 with ``Retry-After``).
- The ``Host`` header must name the lab as it is served (an IP address, a loopback name, the bound address, this
  machine's name, or one of ``RABBITLENS_ALLOWED_HOSTS``), for HTTP and Socket.IO alike: a page on another
  site that rebinds its DNS name to 127.0.0.1 is refused (DNS rebinding).
- State-changing requests must come from the app's own origin when they say where they come from (``Origin``,
  ``Sec-Fetch-Site``), and JSON routes take ``application/json`` only: a cross-site form post cannot act.
  Socket.IO accepts the app's own origin only.
- Every response carries a self-only Content-Security-Policy, ``X-Content-Type-Options: nosniff`` and
  ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface

from lab.settings import Settings
from web.api import ApiModel, api
from web.lab import current_lab

bp = Blueprint("security", __name__)
OPEN_PATHS = ("/api/session",)
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
LOOPBACK_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")
# Scripts, styles, fonts, images and sockets from the lab itself only; no frames, plugins or foreign forms.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SessionIn(ApiModel):
    token: str


# --------------------------------------------------------------------------- tokens
def token_matches(given: Any, expected: str) -> bool:
    """Constant-time comparison; anything but a non-empty string (a number, a lone surrogate) does not match."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def token_mac(settings: Settings, secret: bytes | str) -> str:
    """What the session cookie keeps instead of a flag: bound to this token, so a new token voids old cookies."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(
        key, b"rabbitlens-token:" + settings.token.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-RabbitLens-Token")


def _session_authorized(settings: Settings) -> bool:
    from flask import current_app

    mac = session.get("token_mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, token_mac(settings, current_app.secret_key))


class TokenThrottle:
    """Slows down guessing: after ``allowed`` wrong tokens from one address, each further try waits
    1, 2, 4 ... up to ``max_wait_s`` seconds (refused meanwhile, without looking at the token). A right token
    clears the address."""

    def __init__(self, allowed: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed = max(0, allowed)
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds this address must still wait before its next try (0: it may try now)."""
        with self._lock:
            _, until = self._failures.get(address, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # bounded memory: forget the oldest addresses
                for key in list(self._failures)[:5_000]:
                    del self._failures[key]
            count = self._failures.get(address, (0, 0.0))[0] + 1
            over = count - self.allowed
            until = self.clock() + min(self.max_wait_s, 2.0 ** (over - 1)) if over > 0 else 0.0
            self._failures[address] = (count, until)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class TooManyTries(Exception):
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"too many wrong access tokens: try again in {math.ceil(wait_s)} s")
        self.wait_s = wait_s


THROTTLE_KEY = "rabbitlens.token_throttle"


def _throttle() -> TokenThrottle:
    from flask import current_app

    return current_app.extensions[THROTTLE_KEY]


def _client_address() -> str:
    return request.remote_addr or "?"


def check_token(settings: Settings, given: Any) -> bool:
    """Whether ``given`` is the token, counting wrong ones per address; raises :class:`TooManyTries` while the
    address must wait."""
    throttle = _throttle()
    address = _client_address()
    wait = throttle.wait_s(address)
    if wait > 0:
        raise TooManyTries(wait)
    if token_matches(given, settings.token):
        throttle.succeeded(address)
        return True
    throttle.failed(address)
    return False


def is_authorized(settings: Settings, auth: Any = None) -> bool:
    """Whether this request (or Socket.IO connect with ``auth``) may use the lab; raises :class:`TooManyTries`."""
    if not settings.token:
        return True
    if _session_authorized(settings):
        return True
    given = auth.get("token") if isinstance(auth, dict) else None
    if given is None:
        given = presented_token()
    if given is None:
        return False
    return check_token(settings, given)


# --------------------------------------------------------------------------- hosts and origins
def split_host(host: str) -> tuple[str, int | None] | None:
    """``name[:port]`` or ``[v6][:port]`` as (lowercase name, port); None when it is malformed."""
    host = host.strip()
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[1:end], host[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:]
    elif host.count(":") == 1:
        name, port = host.split(":")
    elif ":" in host:  # a bare IPv6 address
        name = host
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return None
    name = name.lower().rstrip(".")
    if not name:
        return None
    return name, int(port) if port else None


class HostPolicy:
    """The names the lab answers to: IP literals (a browser that asks for an IP connects to that IP, so no
    rebinding), loopback names, the address it is bound to, this machine's name, and the configured extras."""

    def __init__(self, settings: Settings) -> None:
        extra = [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
        self.any = "*" in extra
        names = {*LOOPBACK_NAMES, settings.host.lower().strip("[]"), socket.gethostname().lower()}
        for entry in extra:
            parsed = split_host(entry)
            if parsed is not None:
                names.add(parsed[0])
        self.names = frozenset(n for n in names if n)

    def allows(self, hostname: str) -> bool:
        if self.any:
            return True
        hostname = hostname.lower().rstrip(".").strip("[]")
        if hostname in self.names or hostname.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(hostname)
        except ValueError:
            return False
        return True

    def allows_host_header(self, host: str | None) -> bool:
        parsed = split_host(host or "")
        return parsed is not None and self.allows(parsed[0])


def parse_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an ``Origin`` header; None when it is malformed or ``null``."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _default_port(parts.scheme)


def same_origin(origin: str, host_url: str) -> bool:
    a, b = parse_origin(origin), parse_origin(host_url)
    return a is not None and a == b


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def socketio_origin_check(policy: HostPolicy) -> Callable[[str | None, dict[str, Any]], bool]:
    """python-engineio's ``cors_allowed_origins``: the app's own origin, under a name the lab is served as."""

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        host = environ.get("HTTP_HOST", "")
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
        parsed = parse_origin(origin)
        return (
            parsed is not None
            and policy.allows(parsed[1])
            and policy.allows_host_header(host)
            and (same_origin(origin, own))
        )

    return allowed


class HostCheckMiddleware:
    """WSGI: refuses a request whose ``Host`` the lab is not served as, before Flask or Socket.IO see it."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], policy: HostPolicy) -> None:
        self.wsgi_app = wsgi_app
        self.policy = policy

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if self.policy.allows_host_header(host):
            return self.wsgi_app(environ, start_response)
        import json

        shown = host.encode("latin-1", "replace").decode("ascii", "replace")[:100]
        message = (
            f"this lab is not served as {shown!r} (the request's Host): a page that renamed itself to this address "
            "(DNS rebinding) is refused; to serve the lab under that name, add it to RABBITLENS_ALLOWED_HOSTS"
        )
        body = json.dumps({"error": {"code": "FORBIDDEN_HOST", "message": message}}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += list(SECURITY_HEADERS.items())
        start_response("403 FORBIDDEN", headers)
        return [body]


# --------------------------------------------------------------------------- the session cookie
class LabSessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, ``Secure`` whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> tuple[Response, int]:
    response = jsonify({"error": {"code": code, "message": message}})
    response.headers.update(headers or {})
    return response, status


def _too_many(exc: TooManyTries) -> tuple[Response, int]:
    return _error(429, "TOO_MANY_REQUESTS", str(exc), {"Retry-After": str(math.ceil(exc.wait_s))})


def init_security(app: Flask, settings: Settings) -> None:
    """The checks on every request and every response; call after the Socket.IO server wraps the app."""
    policy = HostPolicy(settings)
    app.extensions[THROTTLE_KEY] = TokenThrottle(settings.token_failures_allowed, settings.token_backoff_max_s)
    app.session_interface = LabSessionInterface()
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.session_hours)
    app.wsgi_app = HostCheckMiddleware(app.wsgi_app, policy)  # type: ignore[method-assign]
    if settings.trust_proxy > 0:  # outermost: the Host check, the Origin check and is_secure see what it forwards
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trust_proxy
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    @app.before_request
    def guard() -> tuple[Response, int] | None:
        if request.method in STATE_CHANGING:
            origin = request.headers.get("Origin")
            if origin is not None and not same_origin(origin, request.host_url):
                shown = origin[:100].encode("ascii", "replace").decode()
                return _error(403, "FORBIDDEN_ORIGIN", f"requests from {shown} are not accepted: same origin only")
            fetch_site = request.headers.get("Sec-Fetch-Site")
            if fetch_site is not None and fetch_site not in ("same-origin", "none"):
                return _error(403, "FORBIDDEN_ORIGIN", f"requests from a {fetch_site} page are not accepted")
            # A form post from another site (urlencoded, multipart, text/plain) needs no preflight, bodyless or not
            # (a purge): only JSON, or no Content-Type at all, is taken.
            content_type = request.headers.get("Content-Type")
            if request.path.startswith("/api/") and content_type is not None and request.mimetype != "application/json":
                shown = ascii(request.mimetype or content_type[:100])
                return _error(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"send state-changing requests with Content-Type: application/json or none (not {shown})",
                )
        if request.path.startswith("/api/") and request.path not in OPEN_PATHS:
            try:
                authorized = is_authorized(settings)
            except TooManyTries as exc:
                return _too_many(exc)
            if not authorized:
                return _error(401, "UNAUTHORIZED", "this lab needs its access token (RABBITLENS_TOKEN)")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.register_blueprint(bp)


@api.route(bp, "/api/session", "GET", summary="Whether a token is required and this browser has given it")
def session_state() -> dict[str, bool] | tuple[Response, int]:
    settings = current_lab().settings
    try:
        authorized = is_authorized(settings)
    except TooManyTries as exc:
        return _too_many(exc)
    return {"token_required": bool(settings.token), "authorized": authorized}


@api.route(
    bp,
    "/api/session",
    "POST",
    body=SessionIn,
    summary="Give the access token once; the session cookie keeps it (bound to the token, for a limited time)",
    responses={200: "Authorized", 401: "Wrong token", 429: "Too many wrong tokens: wait (Retry-After)"},
)
def open_session(body: SessionIn) -> dict[str, bool] | tuple[Response, int]:
    from flask import current_app

    settings = current_lab().settings
    if settings.token:
        try:
            right = check_token(settings, body.token)
        except TooManyTries as exc:
            return _too_many(exc)
        if not right:
            return _error(401, "UNAUTHORIZED", "wrong access token")
        session.permanent = True
        session["token_mac"] = token_mac(settings, current_app.secret_key)
    return {"token_required": bool(settings.token), "authorized": True}
