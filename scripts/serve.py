"""Serve RabbitLens with a broker: the given one, the local default, or a private node started for the run.

Called by ``scripts/run.sh``; arguments go to ``app.py``. A private node lives under ``.run/rabbitmq`` and is
stopped when the app stops.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from rabbit.localnode import NodeError, PrivateNode, free_port_block, port_open  # noqa: E402
from rabbit.urls import DEFAULT_AMQP_URL  # noqa: E402


def main(argv: list[str]) -> int:
    if "--amqp-url" in argv or os.environ.get("RABBITLENS_AMQP_URL"):
        return app.main(argv)
    # Where the local default broker is looked for (5672; the tests point it at an empty port).
    local_port = int(os.environ.get("RABBITLENS_LOCAL_BROKER_PORT", "5672"))
    if port_open(local_port):
        print(f"Using the local broker at {DEFAULT_AMQP_URL.replace('guest:guest@', 'guest@')}", flush=True)
        return app.main(argv)
    run_dir = Path(os.environ.get("RABBITLENS_RUN_DIR", ROOT / ".run"))
    port = free_port_block(int(os.environ.get("RABBITLENS_PRIVATE_NODE_PORT", "45700")), size=3)
    node = PrivateNode(run_dir / "rabbitmq", amqp_port=port, management_port=port + 2)
    print(f"No broker answers on 127.0.0.1:{local_port}: starting a private RabbitMQ node on {port} ...", flush=True)
    try:
        node.start()
    except NodeError as exc:
        print(f"Could not start a private RabbitMQ node: {exc}", file=sys.stderr)
        return 1
    os.environ["RABBITLENS_AMQP_URL"] = node.amqp_url
    os.environ["RABBITLENS_MANAGEMENT_URL"] = node.management_url or ""
    try:  # app.main returns on SIGTERM or Ctrl-C after its own clean-up; then the node goes
        return app.main(argv)
    finally:
        print("Stopping the private RabbitMQ node ...", flush=True)
        node.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
