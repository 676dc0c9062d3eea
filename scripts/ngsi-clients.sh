#!/usr/bin/env bash
# NGSI-LD through Orange's Python client as FIWARE integrators have it, from PyPI (ngsildclient
# 0.5.2, in a venv under ~/.cache), against the real agora binary (see scripts/ngsi-clients.py).
# Uses the debug
# binary that `cargo build --bin agora` made (AGORA_BIN to use another); needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
VERSION=0.5.2
VENV="${AGORA_NGSI_VENV:-$HOME/.cache/agora-ngsi-venv-$VERSION}"
if ! "$VENV/bin/python" -c "import ngsildclient, sys; sys.exit(ngsildclient.__version__ != '$VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "ngsildclient==$VERSION"
fi

TOKEN=ngsi-clients-admin-token-0123456789
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

AGORA_URL="http://127.0.0.1:$port" AGORA_TOKEN="$TOKEN" "$VENV/bin/python" scripts/ngsi-clients.py
if grep -E "panicked|ERROR" "$work/agora.log"; then
  echo "agora logged errors while the clients ran" >&2
  exit 1
fi
