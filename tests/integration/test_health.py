import socketio

from tests.conftest import wait_until


def test_health_reports_the_broker_connected(shared_lab):
    health = shared_lab.get("/api/health").json()
    assert health["status"] == "ok"
    broker = health["broker"]
    assert broker["connected"] is True
    assert broker["url"].startswith("amqp://")
    assert broker["server_version"].startswith("3.")
    assert isinstance(health["management"], bool)


def test_unknown_api_paths_answer_json(shared_lab):
    response = shared_lab.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_page_serves_the_dashboard_with_the_status_indicator(shared_lab):
    response = shared_lab.get("/")
    assert response.status_code == 200
    assert 'id="broker-status"' in response.text
    assert "cdn" not in response.text.lower()


def test_broker_status_is_sent_on_connect(shared_lab):
    received = []
    client = socketio.Client(reconnection=False)
    client.on("broker_status", received.append)
    client.connect(shared_lab.base_url, transports=["websocket"])
    try:
        wait_until(lambda: received, message="broker_status on connect")
        assert received[0]["connected"] is True
        assert received[0]["state"] == "connected"
    finally:
        client.disconnect()


def test_openapi_document_lists_the_routes(shared_lab):
    document = shared_lab.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "get" in document["paths"]["/api/health"]
