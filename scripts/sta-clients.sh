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


# shellcheck source=scripts/lib/clients-against-agora.sh
. scripts/lib/clients-against-agora.sh
run_clients_against_agora "$BIN" sta-clients-admin-token-0123456789 "$VENV/bin/python" scripts/sta-clients.py
