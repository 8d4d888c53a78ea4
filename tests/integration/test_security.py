"""Who may use the lab: the access token, same-origin requests, loopback by default."""

import subprocess
import sys

import pytest
import requests
import socketio

from tests.conftest import ROOT, wait_until

TOKEN = "t0ken-for-tests-5b1"


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
