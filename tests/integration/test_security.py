"""Who may use the lab: the access token, same-origin requests, loopback by default."""

import json
import re
import subprocess
import sys
import time

import pika
import pytest
import requests
import socketio

from tests.conftest import ROOT, wait_until

TOKEN = "t0ken-for-tests-5b1"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def locked_lab(broker_url, lab_factory):
    return lab_factory(broker_url, RABBITLENS_TOKEN=TOKEN)


def test_binding_beyond_loopback_without_a_token_is_refused():
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "RABBITLENS_TOKEN": ""},
    )
    assert result.returncode == 2
    assert "RABBITLENS_TOKEN" in result.stderr


def test_api_needs_the_token_when_one_is_set(locked_lab):
    response = locked_lab.get("/api/health")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert locked_lab.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert locked_lab.get("/api/health", headers={"X-RabbitLens-Token": TOKEN}).status_code == 200
    assert locked_lab.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_session_keeps_the_token_once_given(locked_lab):
    browser = requests.Session()
    assert browser.get(locked_lab.base_url + "/api/session").json() == {"token_required": True, "authorized": False}
    wrong = browser.post(locked_lab.base_url + "/api/session", json={"token": "nope"})
    assert wrong.status_code == 401
    assert browser.get(locked_lab.base_url + "/api/health").status_code == 401
    right = browser.post(locked_lab.base_url + "/api/session", json={"token": TOKEN})
    assert right.status_code == 200
    assert browser.get(locked_lab.base_url + "/api/health").status_code == 200


def test_socketio_needs_the_token_when_one_is_set(locked_lab):
    anonymous = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect(locked_lab.base_url, transports=["websocket"])
    received = []
    client = socketio.Client(reconnection=False)
    client.on("broker_status", received.append)
    client.connect(locked_lab.base_url, transports=["websocket"], auth={"token": TOKEN})
    try:
        wait_until(lambda: received, message="broker_status after an authorized connect")
    finally:
        client.disconnect()


def test_state_changing_requests_from_another_origin_are_refused(shared_lab):
    evil = shared_lab.post("/api/session", json={"token": ""}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert evil.json()["error"]["code"] == "FORBIDDEN_ORIGIN"
    same = shared_lab.post("/api/session", json={"token": ""}, headers={"Origin": shared_lab.base_url})
    assert same.status_code == 200
    assert shared_lab.get("/api/health").status_code == 200


def test_socketio_from_another_origin_is_refused(shared_lab):
    handshake = "/socket.io/?EIO=4&transport=polling"
    evil = shared_lab.get(handshake, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 400
    same = shared_lab.get(handshake, headers={"Origin": shared_lab.base_url})
    assert same.status_code == 200
    assert '"sid"' in same.text


def test_request_bodies_over_the_limit_are_refused_cleanly(shared_lab):
    response = shared_lab.post(
        "/api/session", data=b"x" * (5 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    assert shared_lab.get("/api/health").json()["broker"]["connected"] is True


def test_bad_json_and_unknown_fields_are_400(shared_lab):
    bad = shared_lab.post("/api/session", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "INVALID"
    unknown = shared_lab.post("/api/session", json={"token": "", "admin": True})
    assert unknown.status_code == 400
    assert "admin" in unknown.json()["error"]["message"]


# --------------------------------------------------------------------------- DNS rebinding: the Host check
def test_a_host_name_the_lab_is_not_served_as_is_refused(shared_lab, amqp, unique):
    """A page that rebinds evil.example to 127.0.0.1 sends Host and Origin evil.example: same origin, wrong host."""
    port = shared_lab.base_url.rsplit(":", 1)[1]
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    name = unique("rebound")
    created = shared_lab.post("/api/queues", {"name": name}, headers=evil)
    assert created.status_code == 403, created.text
    assert created.json()["error"]["code"] == "FORBIDDEN_HOST"
    assert "RABBITLENS_ALLOWED_HOSTS" in created.json()["error"]["message"]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        amqp.fresh_channel().queue_declare(name, passive=True)
    assert shared_lab.get("/", headers=evil).status_code == 403
    assert shared_lab.get("/api/health", headers=evil).status_code == 403
    handshake = shared_lab.get("/socket.io/?EIO=4&transport=polling", headers=evil)
    assert handshake.status_code == 403
    assert "Access-Control-Allow-Origin" not in handshake.headers
    for fine in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert shared_lab.get("/api/health", headers={"Host": fine}).status_code == 200, fine
    assert shared_lab.get("/api/health", headers={"Host": "localhost:notaport"}).status_code == 403


def test_allowed_hosts_adds_names_and_socketio_still_wants_the_same_origin(broker_url, lab_factory):
    lab = lab_factory(broker_url, RABBITLENS_ALLOWED_HOSTS="lab.example, other.example")
    port = lab.base_url.rsplit(":", 1)[1]
    served = {"Host": f"lab.example:{port}", "Origin": f"http://lab.example:{port}"}
    assert lab.get("/api/health", headers=served).status_code == 200
    handshake = "/socket.io/?EIO=4&transport=polling"
    assert lab.get(handshake, headers=served).status_code == 200
    # A foreign origin is refused even when its Host is one the lab is served as.
    foreign = {"Host": f"lab.example:{port}", "Origin": f"http://evil.example:{port}"}
    assert lab.get(handshake, headers=foreign).status_code == 400
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    assert lab.get(handshake, headers=rebound).status_code == 403


# --------------------------------------------------------------------------- 400, never 500
def _json_routes(lab):
    document = lab.get("/api/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                yield method.upper(), re.sub(r"{[^}]+}", "x", path)


def test_deeply_nested_json_is_a_400_on_every_json_route(shared_lab):
    routes = list(_json_routes(shared_lab))
    assert len(routes) >= 10
    for depth in (40, 2000, 100_000):
        deep = '{"a": ' + "[" * depth + "]" * depth + "}"
        for method, path in routes:
            response = requests.request(method, shared_lab.base_url + path, data=deep, headers=JSON, timeout=15)
            assert response.status_code == 400, (method, path, depth, response.text[:300])
            assert "nests deeper than" in response.json()["error"]["message"]
    assert "Traceback" not in shared_lab.log_text()


def test_a_lone_surrogate_is_a_400(shared_lab, broker_url, lab_factory):
    cases = [
        ("/api/route", '{"exchange": "", "routing_key": "\\ud800"}', "routing_key"),
        ("/api/publish", '{"routing_key": "q", "body": "a\\udfffb"}', "body"),
        ("/api/publish", '{"routing_key": "q", "properties": {"headers": {"\\ud800": 1}}}', "headers"),
    ]
    for path, body, where in cases:
        response = requests.post(shared_lab.base_url + path, data=body, headers=JSON, timeout=15)
        assert response.status_code == 400, (path, response.text)
        message = response.json()["error"]["message"]
        assert "lone surrogate" in message and where in message, message
    locked = lab_factory(broker_url, RABBITLENS_TOKEN=TOKEN)
    response = requests.post(locked.base_url + "/api/session", data='{"token": "\\ud800"}', headers=JSON, timeout=15)
    assert response.status_code == 400
    assert "Traceback" not in shared_lab.log_text() + locked.log_text()


def test_malformed_origins_are_refused_not_500(shared_lab):
    for origin in ("http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:-1", "null", "", "http://"):
        response = shared_lab.post("/api/session", json={"token": ""}, headers={"Origin": origin})
        assert response.status_code == 403, (origin, response.text)
        assert response.json()["error"]["code"] == "FORBIDDEN_ORIGIN"
        handshake = shared_lab.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})
        assert handshake.status_code in (200, 400), origin  # "" is no Origin at all for engineio
    assert "Traceback" not in shared_lab.log_text()


def test_socketio_tokens_that_are_not_strings_are_refused_quietly(broker_url, lab_factory):
    locked_lab = lab_factory(broker_url, RABBITLENS_TOKEN=TOKEN, RABBITLENS_TOKEN_FAILURES_ALLOWED="50")
    for token in (5, None, ["t"], {"token": TOKEN}, True, 1.5, "\ud800"):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(locked_lab.base_url, transports=["websocket"], auth={"token": token}, wait_timeout=5)
        client.disconnect()
    client = socketio.Client(reconnection=False)
    client.connect(locked_lab.base_url, transports=["websocket"], auth={"token": TOKEN}, wait_timeout=5)
    client.disconnect()
    log = locked_lab.log_text()
    assert "Traceback" not in log and "AttributeError" not in log, log[-3000:]


# --------------------------------------------------------------------------- content type, cross-site posts
def test_json_routes_take_application_json_only(shared_lab, amqp, unique):
    name = unique("form-post")
    body = json.dumps({"name": name})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.post(shared_lab.base_url + "/api/queues", data=body, headers=headers, timeout=15)
        assert response.status_code == 415, (content_type, response.text)
        assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
        assert "application/json" in response.json()["error"]["message"]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        amqp.fresh_channel().queue_declare(name, passive=True)
    charset = requests.post(
        shared_lab.base_url + "/api/queues", data=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 201, charset.text
    amqp.queues.append(name)


def test_a_bodyless_state_changing_request_takes_json_or_no_content_type_only(shared_lab, amqp, unique):
    queue = unique("form-purge")
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.basic_publish("", queue, b"keep me")
    purge = f"{shared_lab.base_url}/api/queues/{queue}/purge"
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
        for method in ("POST", "DELETE"):
            url = purge if method == "POST" else f"{shared_lab.base_url}/api/queues/{queue}"
            response = requests.request(method, url, headers={"Content-Type": content_type}, timeout=15)
            assert response.status_code == 415, (method, content_type, response.text)
            assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == 1
    assert requests.post(purge, timeout=15).status_code == 200  # no Content-Type: a bodyless call from a script
    json_purge = requests.post(purge, headers={"Content-Type": "application/json"}, timeout=15)
    assert json_purge.status_code == 200, json_purge.text


def test_a_cross_site_request_without_an_origin_is_refused(shared_lab, unique):
    purge = f"/api/queues/{unique('nope')}/purge"
    for site in ("cross-site", "same-site"):
        response = shared_lab.post(purge, headers={"Sec-Fetch-Site": site})
        assert response.status_code == 403, (site, response.text)
        assert response.json()["error"]["code"] == "FORBIDDEN_ORIGIN"
    assert shared_lab.post(purge, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 404


# --------------------------------------------------------------------------- strict types
def test_types_are_strict_and_an_empty_body_is_not_an_empty_object(shared_lab):
    cases = [
        ("/api/publish", {"routing_key": "q", "count": "5"}, "count"),
        ("/api/publish", {"routing_key": "q", "count": 2.0}, "count"),
        ("/api/publish", {"routing_key": "q", "mandatory": 1}, "mandatory"),
        ("/api/publish", {"routing_key": "q", "properties": {"delivery_mode": True}}, "delivery_mode"),
        ("/api/publish", {"routing_key": "q", "properties": {"priority": "1"}}, "priority"),
        ("/api/rpc/call", {"n": "5"}, "n"),
        ("/api/rpc/servers", {"count": True}, "count"),
        ("/api/trace", {"enabled": "yes"}, "enabled"),
        ("/api/consumers", {"queue": "q", "prefetch": "1"}, "prefetch"),
    ]
    for path, body, field in cases:
        response = shared_lab.post(path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert field in response.json()["error"]["message"], response.text
    for path in ("/api/publish", "/api/rpc/servers", "/api/trace", "/api/session"):
        empty = requests.post(shared_lab.base_url + path, data=b"", headers=JSON, timeout=15)
        assert empty.status_code == 400, (path, empty.text)
        assert "empty" in empty.json()["error"]["message"]
    document = shared_lab.get("/api/openapi.json").json()
    assert document["components"]["schemas"]["PublishIn"]["properties"]["count"]["type"] == "integer"


# --------------------------------------------------------------------------- headers
def test_every_response_carries_the_security_headers(shared_lab):
    for path in ("/", "/static/js/main.js", "/api/health", "/api/nothing-here"):
        headers = shared_lab.get(path).headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("X-Frame-Options") == "DENY", path


# --------------------------------------------------------------------------- the session
def test_the_session_cookie_expires_and_a_new_token_voids_it(broker_url, lab_factory):
    first = lab_factory(broker_url, RABBITLENS_TOKEN=TOKEN, RABBITLENS_SECRET_KEY="fixed-secret-for-tests")
    browser = requests.Session()
    opened = browser.post(first.base_url + "/api/session", json={"token": TOKEN})
    assert opened.status_code == 200
    cookie = next(c for c in browser.cookies if c.name == "session")
    assert cookie.expires is not None and 11 * 3600 < cookie.expires - time.time() <= 12 * 3600 + 60
    assert "Secure" not in opened.headers["Set-Cookie"]  # plain http: a Secure cookie would never come back
    assert browser.get(first.base_url + "/api/health").status_code == 200
    first.stop()
    # Same secret key, new token: the old cookie must not open the lab any more.
    second = lab_factory(
        broker_url, RABBITLENS_TOKEN="another-token-77", RABBITLENS_SECRET_KEY="fixed-secret-for-tests"
    )
    cookies = {"session": cookie.value}
    assert requests.get(second.base_url + "/api/health", cookies=cookies, timeout=15).status_code == 401
    assert requests.get(second.base_url + "/api/session", cookies=cookies, timeout=15).json()["authorized"] is False
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(second.base_url, transports=["polling"], headers={"Cookie": f"session={cookie.value}"})
    client.disconnect()


def test_the_session_cookie_is_secure_over_https(broker_url):
    from app import create_app

    app = create_app({"amqp_url": broker_url, "token": TOKEN, "async_mode": "threading"})
    try:
        client = app.test_client()
        response = client.post("/api/session", json={"token": TOKEN}, base_url="https://localhost")
        assert response.status_code == 200
        assert "Secure" in response.headers["Set-Cookie"]
        plain = app.test_client().post("/api/session", json={"token": TOKEN}, base_url="http://localhost")
        assert "Secure" not in plain.headers["Set-Cookie"]
    finally:
        app.extensions["rabbitlens"].shutdown()


def test_behind_a_trusted_tls_proxy_the_session_cookie_is_secure(broker_url):
    from app import create_app

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost"}
    for trust_proxy, secure in ((0, False), (1, True)):
        app = create_app(
            {"amqp_url": broker_url, "token": TOKEN, "async_mode": "threading", "trust_proxy": trust_proxy}
        )
        try:
            client = app.test_client()
            response = client.post(
                "/api/session", json={"token": TOKEN}, base_url="http://127.0.0.1", headers=forwarded
            )
            assert response.status_code == 200, response.text
            assert ("Secure" in response.headers["Set-Cookie"]) is secure, (trust_proxy, response.headers["Set-Cookie"])
        finally:
            app.extensions["rabbitlens"].shutdown()


def test_repeated_wrong_tokens_are_slowed_down(locked_lab):
    browser = requests.Session()
    url = locked_lab.base_url + "/api/session"
    for _ in range(5):
        assert browser.post(url, json={"token": "guess"}).status_code == 401
    slowed = browser.post(url, json={"token": "guess"})
    assert slowed.status_code == 401  # the sixth wrong try is counted, and from now on each try waits
    waiting = browser.post(url, json={"token": TOKEN})
    assert waiting.status_code == 429, waiting.text
    assert int(waiting.headers["Retry-After"]) >= 1
    assert "too many wrong access tokens" in waiting.json()["error"]["message"]
    assert locked_lab.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    time.sleep(float(waiting.headers["Retry-After"]) + 0.2)
    assert browser.post(url, json={"token": TOKEN}).status_code == 200
    assert browser.post(url, json={"token": "guess"}).status_code == 401  # a right token clears the count
