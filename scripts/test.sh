#!/usr/bin/env bash
# The test command: the same set-up as the run command, then lint and the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/system-deps.sh rabbitmq-server chromium
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Known vulnerabilities in the pinned dependencies (PyPI's advisory data): any found fails the run.
mkdir -p .run
if ! .venv/bin/pip-audit --progress-spinner off > .run/pip-audit.txt 2>&1; then
  cat .run/pip-audit.txt >&2
  echo "pip-audit reports vulnerable dependencies (or could not run): see above" >&2
  exit 1
fi
head -n 1 .run/pip-audit.txt
exec .venv/bin/python -m pytest "$@"
