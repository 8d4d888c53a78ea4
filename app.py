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

from lab.broker import BrokerService
from lab.container import Lab
from lab.events import EventSink, ObservedSink, Spawn
from lab.limits import Slots
from lab.message_service import MessageService
from lab.rpc import RpcService
from lab.settings import Settings, is_loopback
from lab.spies import SpyService
from lab.topology import TopologyService
from lab.traffic import TrafficService
from lab.watch import WatchService
from rabbit.urls import redact_url
from web import health, messages, pages, rpc, rpc_refused, spies, topology, traffic, watch
from web.api import docs_bp
from web.errors import register_error_handlers
from web.lab import EXTENSION_KEY, HUB_KEY, install_log_redaction
from web.live import LiveHub, TextOnlyPacket
from web.security import HostPolicy, TooManyTries, init_security, is_authorized, socketio_origin_check

log = logging.getLogger("rabbitlens")


def build_lab(settings: Settings, events: EventSink, spawn: Spawn) -> Lab:
    """The lab's services, each handed the others it needs (nothing is started here).

    broker  the main link and the broker status (the publisher's alarms show in it)
    watch   taps and the firehose                     <- the main link (passive checks), the management API
    topology  declares, routes, the live feed         <- the main link, the management API, watch's tap bindings
    traffic   publishes, consumers, predictions       <- topology (predictions), broker (blocked status)
    rpc       client, fib servers, inspector          <- watch (the firehose the inspector reads)
    spies     shadow queues mirroring a queue's bindings <- topology (bindings, its feed); predictions and the
              trace count their queues as the lab's (watch, topology)
    messages  each message's timeline, route verification <- topology (explanations), watch (trace state); it
              sees every event through the web layer's tee on the live hub
    """
    broker = BrokerService(settings, events)
    watch = WatchService(settings, events, link=broker.link, management=broker.management)
    topology = TopologyService(
        settings,
        events,
        link=broker.link,
        management=broker.management,
        lab_bindings=lambda: watch.tap_bindings() + spies.lab_bindings(),  # spies: bound below, before any call
    )
    traffic = TrafficService(settings, events, broker=broker, topology=topology, spawn=spawn)
    rpc = RpcService(settings, events, watch=watch, spawn=spawn)
    spies = SpyService(
        settings.amqp_url,
        topology.topology,
        Slots(
            settings.max_spies,
            "at most {limit} spies at a time (RABBITLENS_MAX_SPIES): delete one first",
            code="PRECONDITION_FAILED",
        ),
        on_event=events.stream,
        on_list=lambda listing: events.emit("spies", listing),
        timeout=settings.broker_timeout_s,
    )
    topology.listeners.append(spies.refresh)
    watch.owns_elsewhere = spies.owns
    messages = MessageService(settings, events, topology=topology, watch=watch, spawn=spawn)
    return Lab(
        settings=settings,
        broker=broker,
        watch=watch,
        topology=topology,
        traffic=traffic,
        rpc=rpc,
        spies=spies,
        messages=messages,
    )


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the Flask app, its Socket.IO server and the lab's services (the broker link starts here)."""
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
    events = ObservedSink(hub)  # every service reports here; the message service also sees each event
    lab = build_lab(settings, events, socketio.start_background_task)
    events.observers.append(lab.messages.observe)
    app.extensions[EXTENSION_KEY] = lab
    app.extensions[HUB_KEY] = hub
    app.extensions["socketio_server"] = socketio
    install_log_redaction(app, lab.secrets())

    register_error_handlers(app)
    init_security(app, settings)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs_bp)
    # Also the order in which a new page gets each area's state.
    for area in (topology, traffic, watch, rpc, spies, rpc_refused, messages):
        area.init_app(app, lab, hub)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        try:
            authorized = is_authorized(settings, auth)
        except TooManyTries as exc:
            raise ConnectionRefusedError(str(exc)) from None
        if not authorized:
            raise ConnectionRefusedError("unauthorized: this lab needs its access token")
        hub.send_to(request.sid, "broker_status", lab.broker.status())
        hub.client_connected(request.sid, auth)

    @socketio.on("disconnect")
    def on_disconnect(*_reason: Any) -> None:
        hub.client_disconnected(request.sid)

    lab.start()
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
