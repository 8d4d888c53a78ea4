"""RabbitLens: the application factory and the entry point.

python app.py [--host 127.0.0.1] [--port 5000] [--amqp-url URL] [--management-url URL]
"""

if __name__ == "__main__":  # gevent must patch sockets and threads before anything imports them
    from gevent import monkey

    monkey.patch_all()

import argparse
import logging
import os
import sys
from typing import Any

from flask import Flask, request
from flask_socketio import ConnectionRefusedError, SocketIO

from rabbit.connection import BrokerLink
from rabbit.management import ManagementClient
from rabbit.urls import redact_url
from web import health, messages, pages, rpc, rpc_refused, spies, topology, traffic, watch
from web.api import docs_bp
from web.errors import register_error_handlers
from web.lab import EXTENSION_KEY, Lab, install_log_redaction
from web.live import LiveHub, TextOnlyPacket
from web.security import HostPolicy, TooManyTries, init_security, is_authorized, socketio_origin_check
from web.settings import Settings, is_loopback

log = logging.getLogger("rabbitlens")


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the Flask app, its Socket.IO server and its services (the broker link starts here)."""
    settings = config if isinstance(config, Settings) else Settings.from_env(**(config or {}))
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config["JSON_SORT_KEYS"] = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["MAX_JSON_DEPTH"] = settings.max_json_depth
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.secret_key = settings.secret_key or os.urandom(32)
    socketio = SocketIO(
        app,
        async_mode=settings.async_mode,
        logger=False,
        engineio_logger=False,
        serializer=TextOnlyPacket,
        cors_allowed_origins=socketio_origin_check(HostPolicy(settings)),
    )
    hub = LiveHub(
        socketio,
        client_max_backlog=settings.client_max_backlog,
        client_max_backlog_bytes=settings.client_max_backlog_bytes,
    )

    def on_status(status: dict[str, Any]) -> None:
        lab = app.extensions.get(EXTENSION_KEY)
        if lab is not None:
            hub.broadcast("broker_status", lab.broker_status())

    link = BrokerLink(settings.amqp_url, name="rabbitlens", on_status=on_status)
    lab = Lab(settings=settings, link=link, management=ManagementClient(settings.management_url), hub=hub)
    app.extensions[EXTENSION_KEY] = lab
    app.extensions["socketio_server"] = socketio
    install_log_redaction(app, lab.secrets())

    register_error_handlers(app)
    init_security(app, settings)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs_bp)
    messages.init_app(app, lab)  # first: its tee on the hub sees every area's events
    for area in (topology, traffic, watch, rpc, spies, rpc_refused):
        area.init_app(app, lab)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        try:
            authorized = is_authorized(settings, auth)
        except TooManyTries as exc:
            raise ConnectionRefusedError(str(exc)) from None
        if not authorized:
            raise ConnectionRefusedError("unauthorized: this lab needs its access token")
        hub.send_to(request.sid, "broker_status", lab.broker_status())
        hub.client_connected(request.sid, auth)

    @socketio.on("disconnect")
    def on_disconnect(*_reason: Any) -> None:
        hub.client_disconnected(request.sid)

    link.start()
    return app


def serve(app: Flask, host: str, port: int, on_stop: Any = None) -> None:
    """gevent's WSGI server with real websockets (gevent-websocket), as ``socketio.run`` builds it, plus
    TCP_NODELAY: without it every small response waits ~40 ms for the client's delayed ACK (Nagle).

    SIGTERM (``kill``, ``docker stop``, systemd) runs ``on_stop`` and then ends ``serve_forever`` normally, so
    the caller's clean-up runs too: consumers closed, trace switched back off, fib servers stopped.
    """
    import signal
    import socket

    import gevent
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    class NoDelayHandler(WebSocketHandler):
        def __init__(self, sock: socket.socket, address: Any, server: Any, rfile: Any = None) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().__init__(sock, address, server, rfile)

    server = pywsgi.WSGIServer((host, port), app, handler_class=NoDelayHandler, log=None)

    def on_sigterm() -> None:
        log.info("SIGTERM: shutting down")
        if on_stop is not None:
            on_stop()
        server.stop(timeout=2)

    gevent.signal_handler(signal.SIGTERM, on_sigterm)
    server.serve_forever()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="RabbitLens: a live web lab for RabbitMQ.")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1, env RABBITLENS_HOST)")
    parser.add_argument("--port", type=int, help="port to serve on (default 5000, env RABBITLENS_PORT)")
    parser.add_argument("--amqp-url", help="broker URL (env RABBITLENS_AMQP_URL)")
    parser.add_argument("--management-url", help="management API base URL (env RABBITLENS_MANAGEMENT_URL)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env(
        host=args.host, port=args.port, amqp_url=args.amqp_url, management_url=args.management_url
    )
    if not is_loopback(settings.host) and not settings.token:
        print(
            f"Refusing to bind {settings.host}: anyone who can reach it could drive your broker. "
            "Set RABBITLENS_TOKEN to an access token (the page asks for it once), or bind 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    level = logging.getLevelName(settings.log_level.upper())
    logging.basicConfig(
        level=level if isinstance(level, int) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    debug = level == logging.DEBUG
    for noisy in ("pika", "geventwebsocket.handler"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    app = create_app(settings)
    lab: Lab = app.extensions[EXTENSION_KEY]
    log.info("RabbitLens on http://%s:%d/ (broker %s)", settings.host, settings.port, redact_url(settings.amqp_url))
    print(f"RabbitLens is serving on http://{settings.host}:{settings.port}/", flush=True)
    try:
        serve(app, settings.host, settings.port, on_stop=lab.shutdown)
    finally:
        lab.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
