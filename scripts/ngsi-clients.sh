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


# shellcheck source=scripts/lib/clients-against-agora.sh
. scripts/lib/clients-against-agora.sh
# The notification endpoint is on this machine: internal addresses need the operator's consent.
run_clients_against_agora "$BIN" ngsi-clients-admin-token-0123456789 "$VENV/bin/python" scripts/ngsi-clients.py \
  $'[alerts]\nallow_hosts = ["127.0.0.1"]'

