"""The lab's fib servers and today's tutorials agree on the request queue, and the password stays off ``ps``.

Today's tutorials declare their named queues durable (quorum); the older ones (2016) transient. The lab's server
uses an existing queue as it is, and declares a missing one durable (quorum on this broker) unless told otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from rabbit.rpc_servers import ServerPool
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def pool(broker_url, tmp_path):
    servers = ServerPool(broker_url, workdir=tmp_path / "pool")
    yield servers
    servers.stop_all(kill=True)


def _serving(pool, queue, **knobs):
    [stats] = pool.start(1, queue=queue, **knobs)
    assert stats["state"] == "serving", stats
    return stats


def test_a_missing_queue_is_declared_durable_quorum_as_todays_tutorials_do(pool, amqp, unique):
    queue = unique("rpc-today")
    amqp.queues.append(queue)
    stats = _serving(pool, queue)
    assert stats["queue_declaration"]["adopted"] is False
    assert stats["queue_declaration"]["type"] == "quorum" and stats["queue_declaration"]["durable"] is True
    # Today's tutorial rpc_server, started after the lab's: the same declaration, no 406.
    amqp.fresh_channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})


def test_the_older_tutorials_transient_queue_is_a_knob_away(pool, amqp, unique):
    queue = unique("rpc-2016")
    amqp.queues.append(queue)
    stats = _serving(pool, queue, queue_durable=False)
    assert stats["queue_declaration"]["durable"] is False and stats["queue_declaration"]["type"] == "classic"
    amqp.fresh_channel().queue_declare(queue)  # the 2016 tutorial's declaration
    classic = unique("rpc-classic")
    amqp.queues.append(classic)
    stats = _serving(pool, classic, queue_type="classic")
    assert stats["queue_declaration"]["type"] == "classic" and stats["queue_declaration"]["durable"] is True
    amqp.fresh_channel().queue_declare(classic, durable=True)


@pytest.mark.parametrize(
    "declare",
    [
        {},  # the 2016 tutorial: transient classic
        {"durable": True, "arguments": {"x-queue-type": "quorum"}},  # today's tutorial
        {"durable": True},
    ],
)
def test_an_existing_queue_is_used_as_it_is(pool, amqp, unique, declare):
    queue = unique("rpc-there")
    amqp.queues.append(queue)
    amqp.fresh_channel().queue_declare(queue, **declare)
    stats = _serving(pool, queue)
    assert stats["queue_declaration"]["adopted"] is True
    assert "already existed" in stats["queue_declaration"]["note"]
    amqp.fresh_channel().queue_declare(queue, **declare)  # still as it was: the tutorial may declare it again


def test_a_transient_quorum_queue_is_refused(pool, unique):
    from rabbit.errors import LabError

    with pytest.raises(LabError, match="always durable"):
        pool.start(1, queue=unique("rpc-bad"), queue_durable=False, queue_type="quorum")


def test_the_broker_password_is_not_on_the_servers_command_line(pool, amqp, unique, broker_url):
    queue = unique("rpc-ps")
    amqp.queues.append(queue)
    stats = _serving(pool, queue)
    cmdline = Path(f"/proc/{stats['pid']}/cmdline").read_bytes().decode()
    assert "amqp://" not in cmdline and "guest:guest" not in cmdline, cmdline
    environ = Path(f"/proc/{stats['pid']}/environ")
    assert oct(environ.stat().st_mode & 0o777) == "0o400"  # the owner's alone


@pytest.mark.parametrize("how", ["--amqp-url", "AMQP_URL", "RABBITLENS_AMQP_URL"])
def test_a_server_run_by_hand_takes_the_url_from_the_flag_or_the_environment(broker_url, tmp_path, amqp, unique, how):
    """The environment's URL is used (an unreachable one: the server keeps reconnecting instead of serving on the
    default broker); the flag wins over it."""
    queue = unique("rpc-hand")
    amqp.queues.append(queue)
    status = tmp_path / "status.json"
    unreachable = "amqp://guest:guest@127.0.0.1:1/%2F"
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "RABBITLENS_AMQP_URL")}
    args = [sys.executable, "-m", "rabbit.fib_server", "--queue", queue, "--status-file", str(status)]
    if how == "--amqp-url":
        args += ["--amqp-url", broker_url]
        env["AMQP_URL"] = unreachable
        wanted = "serving"
    else:
        env[how] = unreachable
        wanted = "reconnecting"
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: status.exists() and json.loads(status.read_text() or "{}").get("state") == wanted,
            message=f"a server given the URL by {how} to be {wanted}",
        )
    finally:
        process.kill()
        process.wait(10)


def test_post_rpc_servers_takes_the_queue_knobs(shared_lab, amqp, unique):
    queue = unique("rpc-api")
    amqp.queues.append(queue)
    response = shared_lab.post("/api/rpc/servers", {"count": 1, "queue": queue, "queue_durable": False})
    assert response.status_code == 201, response.text
    [server] = response.json()["servers"]
    try:
        assert server["queue_durable"] is False
        assert server["queue_declaration"]["durable"] is False
        amqp.fresh_channel().queue_declare(queue)  # transient, as asked
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            amqp.fresh_channel().queue_declare(queue, durable=True)
        assert refused.value.reply_code == 406
    finally:
        shared_lab.delete(f"/api/rpc/servers/{server['id']}?kill=1")
        shared_lab.delete("/api/rpc/servers?stopped=1")  # killed servers stay listed until cleared
    bad = shared_lab.post("/api/rpc/servers", {"queue": queue, "queue_durable": False, "queue_type": "quorum"})
    assert bad.status_code == 400 and "always durable" in bad.json()["error"]["message"]


def test_a_406_between_the_check_and_the_declaration_says_whose_declaration_won(broker_url, amqp, unique, tmp_path):
    """Another program declares the queue (transient, as the 2016 tutorial does) just after this server's passive
    check found none: this server's durable declaration gets 406, and it uses the queue as it is, saying why."""
    import threading

    from rabbit.fib_server import FibServer

    queue = unique("rpc-race")
    amqp.queues.append(queue)

    class Raced(FibServer):
        def on_channel_open(self, channel, step="check"):
            if step == "declare":  # the other program's declaration lands first
                other = pika.BlockingConnection(pika.URLParameters(broker_url))
                other.channel().queue_declare(queue)
                other.close()
            super().on_channel_open(channel, step)

    server = Raced(broker_url, queue=queue, status_file=tmp_path / "s.json", print_stats=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.stats["state"] == "serving", message="the raced server serving")
        declaration = server.stats["queue_declaration"]
        assert declaration["adopted"] is True
        note = declaration["note"]
        assert "first declaration wins" in note and "durable quorum" in note, note
        assert "PRECONDITION_FAILED" in note and "durable" in note, note
        amqp.fresh_channel().queue_declare(queue)  # still transient: the other program's declaration won
    finally:
        server.request_stop()
        thread.join(15)
