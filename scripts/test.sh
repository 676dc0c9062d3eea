#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Rust: installs what the tests need
# (a real Mosquitto broker and its command-line clients, a real SMTP server — Debian's
# python3-aiosmtpd —, openssl for test certificates, promtool — Debian's prometheus — to lint
# the metrics, zbarimg — Debian's zbar-tools — to read QR codes back, Debian's Chromium and, from npm,
# playwright-core to drive it), then runs every crate's unit and
# integration tests against real components, a property-based API tester (schemathesis) against
# a running `agora demo`, integrators' own clients from PyPI (ThingsBoard's SDK, Paho, InfluxDB's
# clients) against `agora serve`, and the dashboard's end-to-end tests in the browser against another.
# Backups are mirrored to a real S3-compatible server (moto, from PyPI) in their test.
# Screenshots land in e2e/output/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"

need_pkgs=()
if [ ! -x /usr/sbin/mosquitto ] && ! command -v mosquitto >/dev/null 2>&1; then need_pkgs+=(mosquitto); fi
if ! command -v mosquitto_pub >/dev/null 2>&1; then need_pkgs+=(mosquitto-clients); fi
if ! command -v openssl >/dev/null 2>&1; then need_pkgs+=(openssl); fi
if ! /usr/bin/python3 -c "import aiosmtpd" >/dev/null 2>&1; then need_pkgs+=(python3-aiosmtpd); fi
if [ ! -x /usr/bin/chromium ]; then need_pkgs+=(chromium); fi
if ! command -v node >/dev/null 2>&1; then need_pkgs+=(nodejs npm); fi
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then need_pkgs+=(python3-venv); fi
if ! command -v promtool >/dev/null 2>&1; then need_pkgs+=(prometheus); fi
# systemd-analyze checks the package's unit; objcopy and objdump (binutils) make the package.
if ! command -v systemd-analyze >/dev/null 2>&1; then need_pkgs+=(systemd); fi
if ! command -v objcopy >/dev/null 2>&1; then need_pkgs+=(binutils); fi
# A real QR code reader for the visitors' tours.
if ! command -v zbarimg >/dev/null 2>&1; then need_pkgs+=(zbar-tools); fi
# ip adds the IPv6 test addresses below.
if ! command -v ip >/dev/null 2>&1; then need_pkgs+=(iproute2); fi
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "installing ${need_pkgs[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_pkgs[@]}"
fi

# A local S3-compatible object store for the backup mirror's test: moto's server, from PyPI.
MOTO_VENV="$HOME/.cache/agora-moto-venv-5.2.1"
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet "moto[server]==5.2.1"
fi
export AGORA_MOTO_SERVER="$MOTO_VENV/bin/moto_server"

# Zone B's school holidays, shipped as data, against the ministry's calendar as the
# `vacances-scolaires-france` package (PyPI) carries it.
HOLIDAYS_VENV="$HOME/.cache/agora-school-holidays-venv-0.12.0"
if [ ! -x "$HOLIDAYS_VENV/bin/python" ] || ! "$HOLIDAYS_VENV/bin/python" -c "import vacances_scolaires_france" 2>/dev/null; then
  python3 -m venv "$HOLIDAYS_VENV"
  "$HOLIDAYS_VENV/bin/pip" install --quiet "vacances-scolaires-france==0.12.0"
fi
"$HOLIDAYS_VENV/bin/python" scripts/check-school-holidays.py

# IPv6 documentation addresses (RFC 3849) on the loopback interface, so that the limits test
# connects from several /64s of one /48 and from another /48 (crates/agora/tests/it/limits.rs).
for a in 2001:db8:48:1::1 2001:db8:48:2::1 2001:db8:48:3::1 2001:db8:49:1::1; do
  $sudo_cmd ip -6 addr replace "$a/128" dev lo nodad
done

cargo test --workspace --all-targets --locked

# End-to-end: the dashboard in a real headless Chromium.
# The target directory may be shared with other checkouts: relink so that debug/agora is this one.
touch crates/agora/src/main.rs
cargo build --locked --bin agora
# The API answers as its OpenAPI document says (schemathesis against a running demo).
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/api-conformance.sh
# Open data read by independent readers: the DCAT-AP catalogue against the 3.0.1 SHACL shapes
# (pySHACL), exports with Python's csv, pyarrow and the geojson package.
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/open-data.sh
# Integrators' clients as shipped (ThingsBoard's SDK, from PyPI) against a running `agora serve`.
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/clients/run.sh
# InfluxDB's own Python clients (v1 query() for each InfluxQL form, v2 ping/health/ready).
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/influx-clients.sh
# OGC SensorThings API: FROST-Server's Python client (PyPI) and Grafana's data sources' requests.
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/sta-clients.sh
# HTTPS and MQTT over TLS with curl, mosquitto_pub and Paho, certificates renewed during traffic.
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/tls/run.sh
# The Debian package installed, upgraded and purged with apt, then the operations guide's
# commands run as written (builds the release binary).
./scripts/package/test.sh
# NGSI-LD: Orange's ngsildclient (PyPI), as a FIWARE integrator connects.
AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" ./scripts/ngsi-clients.sh
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd e2e && AGORA_BIN="$CARGO_TARGET_DIR/debug/agora" node --test --test-concurrency=1 tests/)
