#!/usr/bin/env bash
# The run command: venv + pinned dependencies, a broker (the one given, the local one, or a private node),
# then the app. Arguments go to app.py (--host, --port, --amqp-url, --management-url).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh app
scripts/system-deps.sh rabbitmq
exec .venv/bin/python scripts/serve.py "$@"
