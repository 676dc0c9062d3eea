#!/usr/bin/env bash
# OGC SensorThings API 1.1 through FROST-Server's Python client as integrators have it, from PyPI
# (frost_sta_client 1.1.53, in a venv under ~/.cache), and the requests Grafana's SensorThings
# data sources send, against the real agora binary (see scripts/sta-clients.py). Uses the debug
# binary that `cargo build --bin agora` made (AGORA_BIN to use another); needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
VERSION=1.1.53
VENV="${AGORA_STA_VENV:-$HOME/.cache/agora-sta-venv-$VERSION}"
if ! "$VENV/bin/python" -c "import frost_sta_client, sys; sys.exit(frost_sta_client.__version__ != '$VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "frost_sta_client==$VERSION"
fi

TOKEN=sta-clients-admin-token-0123456789
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
env -u AGORA_CONFIG AGORA_ADMIN_TOKEN="$TOKEN" AGORA_MQTT_LISTEN=off AGORA_LOG=warn \
  "$BIN" serve --data "$work/data" --http "127.0.0.1:$port" >"$work/agora.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  if grep -q "agora listening on" "$work/agora.log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora exited" >&2; exit 1; fi
  sleep 0.5
done
grep -q "agora listening on" "$work/agora.log" || { cat "$work/agora.log"; echo "agora did not start" >&2; exit 1; }

AGORA_URL="http://127.0.0.1:$port" AGORA_TOKEN="$TOKEN" "$VENV/bin/python" scripts/sta-clients.py
if grep -E "panicked|ERROR" "$work/agora.log"; then
  echo "agora logged errors while the clients ran" >&2
  exit 1
fi
