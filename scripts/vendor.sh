#!/usr/bin/env bash
# Refresh the vendored front-end libraries from the pinned npm packages (package.json).
# Only needed when a pin changes: the files under static/vendor are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
npm install --no-audit --no-fund --silent
mkdir -p static/vendor/socket.io-client
cp node_modules/socket.io-client/dist/socket.io.esm.min.js static/vendor/socket.io-client/
cp node_modules/socket.io-client/LICENSE static/vendor/socket.io-client/
echo "vendored: socket.io-client $(node -p 'require("./node_modules/socket.io-client/package.json").version')"
