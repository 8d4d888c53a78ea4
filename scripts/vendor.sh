#!/usr/bin/env bash
# Refresh the vendored front-end libraries from the pinned npm packages (package.json).
# Only needed when a pin changes: the files under static/vendor are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
npm install --no-audit --no-fund --silent
version() { node -p "require('./node_modules/$1/package.json').version"; }

mkdir -p static/vendor/socket.io-client
cp node_modules/socket.io-client/dist/socket.io.esm.min.js static/vendor/socket.io-client/
cp node_modules/socket.io-client/LICENSE static/vendor/socket.io-client/
echo "vendored: socket.io-client $(version socket.io-client)"

# The graph view: Cytoscape.js and its dagre layout, both as ES modules (no eval, no inline code: they run under
# the page's Content-Security-Policy). cytoscape-dagre's build bundles dagre and graphlib, so those two are pinned
# to the versions it bundles only to keep their licences beside it.
mkdir -p static/vendor/cytoscape static/vendor/cytoscape-dagre
cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs static/vendor/cytoscape/cytoscape.esm.min.js
cp node_modules/cytoscape/LICENSE static/vendor/cytoscape/
cp node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.mjs static/vendor/cytoscape-dagre/cytoscape-dagre.esm.min.js
sed -i '/sourceMappingURL=/d' static/vendor/cytoscape-dagre/cytoscape-dagre.esm.min.js
cp node_modules/cytoscape-dagre/LICENSE static/vendor/cytoscape-dagre/
cp node_modules/@dagrejs/dagre/LICENSE static/vendor/cytoscape-dagre/LICENSE.dagre
cp node_modules/@dagrejs/graphlib/LICENSE static/vendor/cytoscape-dagre/LICENSE.graphlib
echo "vendored: cytoscape $(version cytoscape), cytoscape-dagre $(version cytoscape-dagre)" \
  "(bundles dagre $(version @dagrejs/dagre), graphlib $(version @dagrejs/graphlib))"
