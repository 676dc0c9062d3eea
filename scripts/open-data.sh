#!/usr/bin/env bash
# Open data read by independent readers, against a running `agora demo` (two days of a simulated
# city and its default catalogue): the DCAT-AP catalogue in its three serializations validated
# by pySHACL against the DCAT-AP 3.0.1 shapes (0 violations; warnings listed), and every export
# format of the published datasets read back — CSV with Python's csv, Parquet with pyarrow,
# GeoJSON with the geojson package — their rows and values equal to the Explore API's. Called
# by scripts/test.sh; needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
VENV="${AGORA_OPEN_DATA_VENV:-$HOME/.cache/agora-open-data-venv-1}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pyshacl, pyarrow, geojson" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "pyshacl==0.40.1" "pyarrow==26.0.1" "geojson==3.3.0"
fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
AGORA_MQTT_LISTEN=off RUST_LOG=warn \
  "$BIN" demo --days 2 --counter-history-days 40 --data "$work/data" --http "127.0.0.1:$port" >"$work/agora.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  if grep -q "demo city ready" "$work/agora.log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora demo exited" >&2; exit 1; fi
  sleep 0.5
done
grep -q "demo city ready" "$work/agora.log" || { cat "$work/agora.log"; echo "agora demo not ready" >&2; exit 1; }

base="http://127.0.0.1:$port"
"$VENV/bin/python" scripts/check-dcat.py \
  "$base/api/v1/open-data/dcat.ttl" "$base/api/v1/open-data/dcat.jsonld" "$base/api/v1/open-data/dcat.rdf"
"$VENV/bin/python" scripts/check-open-data.py "$base"
if grep -E "panicked|ERROR" "$work/agora.log"; then
  echo "agora logged errors while serving open data" >&2
  exit 1
fi
