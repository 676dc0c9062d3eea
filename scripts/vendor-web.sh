#!/usr/bin/env bash
# Copy the dashboard's front-end libraries from the npm registry into the repository.
# Run after changing crates/agora-web/package.json; the copies are committed, so building agora
# never needs npm or the network.
set -euo pipefail
cd "$(dirname "$0")/../crates/agora-web"
npm ci --no-audit --no-fund
v=assets/vendor
rm -rf "$v" && mkdir -p "$v/leaflet/images" "$v/uplot"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$v/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$v/leaflet/images/"
cp node_modules/leaflet/LICENSE "$v/leaflet/LICENSE"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$v/uplot/"
cp node_modules/uplot/LICENSE "$v/uplot/LICENSE"
echo "vendored: leaflet $(node -p "require('./node_modules/leaflet/package.json').version"), uplot $(node -p "require('./node_modules/uplot/package.json').version")"
