#!/usr/bin/env bash
# Integrators' own clients, as shipped (from PyPI), against a running `agora serve`: ThingsBoard's
# device SDK (MQTT 5, gateway and HTTP) and Eclipse Paho (MQTT 5, 3.1.1, 3.1). Called by
# scripts/test.sh; needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
VENV="${AGORA_CLIENTS_VENV:-$HOME/.cache/agora-clients-venv-1}"
# Paho apart: ThingsBoard's SDK brings its own fork of it under the same module name.
PAHO_VENV="${AGORA_PAHO_VENV:-$HOME/.cache/agora-paho-venv-1}"
if [ ! -x "$PAHO_VENV/bin/python" ]; then
  python3 -m venv "$PAHO_VENV"
  "$PAHO_VENV/bin/pip" install --quiet --disable-pip-version-check "paho-mqtt==2.1.0"
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  # tb-mqtt-client installs its own dependencies with pip at import time when missing: give it
  # them first (mmh3 included), pinned.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "tb-mqtt-client==1.13.14" "tb-paho-mqtt-client==2.1.2" "mmh3==5.1.0" "requests==2.32.3"
fi

TOKEN=clients-admin-token-0123456789
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port="$(free_port)"
mqtt_port="$(free_port)"
cat >"$work/agora.toml" <<TOML
[ingest.thingsboard_device_types]
thermometer = "weather"
TOML
AGORA_ADMIN_TOKEN="$TOKEN" AGORA_MQTT_LISTEN="127.0.0.1:$mqtt_port" RUST_LOG=info \
  "$BIN" serve --config "$work/agora.toml" --data "$work/data" --http "127.0.0.1:$http_port" \
  >"$work/agora.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora serve exited" >&2; exit 1; fi
  sleep 0.1
done
status=0
"$VENV/bin/python" scripts/clients/thingsboard_sdk.py "http://127.0.0.1:$http_port" "$mqtt_port" "$TOKEN" || status=$?
"$PAHO_VENV/bin/python" scripts/clients/paho_clients.py "http://127.0.0.1:$http_port" "$mqtt_port" "$TOKEN" || status=$?
if [ "$status" != 0 ] || grep -E "panicked|ERROR" "$work/agora.log"; then
  tail -n 60 "$work/agora.log"
  echo "client tests failed" >&2
  exit 1
fi
