#!/usr/bin/env bash
# The InfluxDB Python clients as integrators have them, from PyPI (influxdb 5.3.2 and
# influxdb-client, in a venv under ~/.cache), against the real agora binary: the v1 client writes
# with write_points and reads back with query() in every InfluxQL form Grafana's data source and
# Telegraf use; the v2 client's ping(), health() and ready(). Uses the debug binary that
# `cargo build --bin agora` made (AGORA_BIN to use another); needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
V1_VERSION=5.3.2
V2_VERSION=1.50.0
VENV="${AGORA_INFLUX_VENV:-$HOME/.cache/agora-influx-venv}"
if ! "$VENV/bin/python" -c "import influxdb, influxdb_client, sys; sys.exit(influxdb.__version__ != '$V1_VERSION' or influxdb_client.__version__ != '$V2_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "influxdb==$V1_VERSION" "influxdb-client==$V2_VERSION"
fi


# shellcheck source=scripts/lib/clients-against-agora.sh
. scripts/lib/clients-against-agora.sh
run_clients_against_agora "$BIN" influx-clients-admin-token-0123456789 "$VENV/bin/python" scripts/influx-clients.py
