#!/usr/bin/env bash
# Make .venv hold exactly the pinned dependencies: `scripts/setup.sh` (app) or `scripts/setup.sh dev` (tests too).
# Re-installs only when the requirements files change.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-app}"
req=requirements.txt
[ "$kind" = dev ] && req=requirements-dev.txt

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "RabbitLens needs Python 3.11 or newer as '$PYTHON' (set PYTHON=... to pick another)." >&2
  exit 1
fi

as_root_apt() {  # install Debian packages when we are root on Debian; else say what to install
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if [ ! -f .run/apt-updated ]; then apt-get update -qq && mkdir -p .run && touch .run/apt-updated; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "Please install: $* (Debian: sudo apt-get install $*)" >&2
    return 1
  fi
}

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    as_root_apt python3-venv
    "$PYTHON" -m venv .venv
  fi
fi

stamp=".venv/.installed-$kind"
want="$(cat requirements.txt "$req" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing pinned dependencies from $req ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
