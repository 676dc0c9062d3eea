#!/usr/bin/env bash
# API conformance: a property-based tester (schemathesis, from PyPI) generates requests from the
# OpenAPI document agora serves — generated from the code — and sends them to a running
# `agora demo` (one day of a simulated city). It fails on any server error (5xx) and on any answer
# the document does not describe: an undocumented status code or content type, or a body that
# does not match its schema. Called by scripts/test.sh; needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
ST_VERSION=4.32.5
VENV="${AGORA_ST_VENV:-$HOME/.cache/agora-schemathesis-$ST_VERSION}"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

TOKEN=conformance-admin-token-0123456789
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
AGORA_ADMIN_TOKEN="$TOKEN" AGORA_MQTT_LISTEN=off RUST_LOG=warn \
  "$BIN" demo --days 1 --data "$work/data" --http "127.0.0.1:$port" >"$work/agora.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  if grep -q "demo city ready" "$work/agora.log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora demo exited" >&2; exit 1; fi
  sleep 0.5
done
grep -q "demo city ready" "$work/agora.log" || { cat "$work/agora.log"; echo "agora demo not ready" >&2; exit 1; }

# Run from the scratch directory: schemathesis keeps its caches in the working directory.
# Left out: the live stream (it never ends), the ThingsBoard long polls (they wait up to a minute
# by design; the client tests cover them), revoking tokens (it could revoke the one used) and the
# Explore API's list of export formats (schemathesis infers from its path a link to the people's
# export that cannot hold; the integration tests cover it).
cd "$work"
# The standard APIs (SensorThings under /v1.1, NGSI-LD under /ngsi-ld) are documented here but
# checked by their own clients (scripts/sta-clients.sh, scripts/ngsi-clients.sh) and their tests.
"$VENV/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --wait-for-schema 30 \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /api/v1/live \
  --exclude-path-regex '^/(v1\.1|ngsi-ld)/' \
  --exclude-path /v1.1 \
  --exclude-name 'DELETE /api/v1/tokens/{id}' \
  --exclude-name 'GET /api/v1/{token}/attributes/updates' \
  --exclude-name 'GET /api/v1/{token}/rpc' \
  --exclude-name 'GET /api/explore/v2.1/catalog/datasets/{dataset_id}/exports' \
  --max-examples "${AGORA_ST_EXAMPLES:-25}" --seed 42 --generation-database none --workers 1 \
  --request-timeout 20 --no-color
if grep -E "panicked|ERROR" "$work/agora.log"; then
  echo "agora logged errors during the conformance run" >&2
  exit 1
fi
