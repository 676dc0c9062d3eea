#!/usr/bin/env bash
# HTTPS and MQTT over TLS with real clients, against a running `agora serve` and a private
# authority made here with openssl: curl (HTTPS, HSTS, the redirect from plain HTTP, a wrong
# authority refused), mosquitto_pub (with --cafile and a token, with a device's client
# certificate and no token, with a certificate of another authority, with one naming an unknown
# device), then Eclipse Paho and a keep-alive HTTPS connection while the certificate is renewed
# twice (clients.py). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
BIN="${AGORA_BIN:-$CARGO_TARGET_DIR/debug/agora}"
PAHO_VENV="${AGORA_PAHO_VENV:-$HOME/.cache/agora-paho-venv-1}"
if [ ! -x "$PAHO_VENV/bin/python" ]; then
  python3 -m venv "$PAHO_VENV"
  "$PAHO_VENV/bin/pip" install --quiet --disable-pip-version-check "paho-mqtt==2.1.0"
fi
TOKEN=tls-admin-token-0123456789
work="$(mktemp -d)"
certs="$work/certs"
scripts/tls/make-certs.sh "$certs" 1 30
scripts/tls/make-certs.sh "$certs" device lamp-cert
scripts/tls/make-certs.sh "$certs" device lamp-ghost
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port="$(free_port)"; redirect_port="$(free_port)"; mqtt_port="$(free_port)"; mqtts_port="$(free_port)"
cat >"$work/agora.toml" <<TOML
http = "127.0.0.1:$https_port"

[https]
cert = "$certs/server.pem"
key = "$certs/server.key"
redirect_from = "127.0.0.1:$redirect_port"
reload_check_secs = 1

[mqtt.broker]
listen = "127.0.0.1:$mqtt_port"

[mqtt.broker.tls]
listen = "127.0.0.1:$mqtts_port"
client_ca = "$certs/ca.pem"
TOML
AGORA_ADMIN_TOKEN="$TOKEN" "$BIN" serve --config "$work/agora.toml" --data "$work/data" >"$work/agora.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fails=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
for _ in $(seq 1 200); do
  if curl -sf --cacert "$certs/ca.pem" "https://localhost:$https_port/readyz" >/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora serve exited" >&2; exit 1; fi
  sleep 0.1
done

# HTTPS with the city's authority; HSTS on every answer.
headers="$(curl -sS -D - -o /dev/null --cacert "$certs/ca.pem" "https://localhost:$https_port/readyz")"
if grep -qi '^strict-transport-security: max-age=31536000' <<<"$headers"; then ok "HTTPS answers with HSTS"; else fail "HSTS missing: $headers"; fi
if curl -s --cacert "$certs/rogue-ca.pem" "https://localhost:$https_port/readyz" >/dev/null; then fail "a client trusting another authority connected"; else ok "curl trusting another authority refuses the server"; fi
if curl -s -m 5 "http://127.0.0.1:$https_port/readyz" >/dev/null; then fail "plain HTTP answered on the HTTPS port"; else ok "no plain HTTP on the HTTPS port"; fi
# The plain HTTP port redirects, keeping the path and the query.
r="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$redirect_port/api/v1/devices?kind=streetlight&limit=2")"
if [ "$r" = "308 https://localhost:$https_port/api/v1/devices?kind=streetlight&limit=2" ]; then ok "plain HTTP redirected: $r"; else fail "redirect: $r"; fi
r="$(curl -s -L --location-trusted --cacert "$certs/ca.pem" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://localhost:$redirect_port/api/v1/devices")"
if [ "$r" = 200 ]; then ok "curl -L follows the redirect to HTTPS"; else fail "redirect followed: $r"; fi
# Session cookies over HTTPS are Secure.
cookie="$(curl -s -D - -o /dev/null --cacert "$certs/ca.pem" -H "Origin: https://localhost:$https_port" \
  --data-urlencode "token=$TOKEN" "https://localhost:$https_port/login" | grep -i '^set-cookie' || true)"
if grep -q '; Secure' <<<"$cookie"; then ok "the session cookie is Secure"; else fail "session cookie: $cookie"; fi

# Devices to publish as.
curl -sf --cacert "$certs/ca.pem" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"id":"lamp-cert","kind":"streetlight"}' "https://localhost:$https_port/api/v1/devices" >/dev/null
query() {
  curl -sf --cacert "$certs/ca.pem" -H "Authorization: Bearer $TOKEN" \
    "https://localhost:$https_port/api/v1/observations?device=$1&property=$2&from=2020-01-01T00:00:00Z&quality=all" \
    | python3 -c 'import json,sys; print(",".join(str(p["value"]) for p in json.load(sys.stdin)["points"]))'
}
# mosquitto_pub over TLS with a token.
if mosquitto_pub -h localhost -p "$mqtts_port" --cafile "$certs/ca.pem" -u "$TOKEN" -q 1 \
    -t agora/lamp-token/telemetry -m '{"temperature": 21.5}'; then
  v="$(query lamp-token temperature)"
  if [ "$v" = "21.5" ]; then ok "mosquitto_pub --cafile with a token: stored"; else fail "stored: $v"; fi
else fail "mosquitto_pub over TLS with a token"; fi
# A device's certificate is its identity: no token.
if mosquitto_pub -h localhost -p "$mqtts_port" --cafile "$certs/ca.pem" --cert "$certs/device-lamp-cert.pem" \
    --key "$certs/device-lamp-cert.key" -q 1 -t v1/devices/me/telemetry -m '{"power_w": 42}'; then
  v="$(query lamp-cert power_w)"
  if [ "$v" = "42.0" ]; then ok "mosquitto_pub with a client certificate and no token: stored as lamp-cert"; else fail "stored: $v"; fi
else fail "mosquitto_pub with a client certificate"; fi
# ... and only its own device.
out="$(mosquitto_pub -h localhost -p "$mqtts_port" --cafile "$certs/ca.pem" --cert "$certs/device-lamp-cert.pem" \
    --key "$certs/device-lamp-cert.key" -q 1 -V mqttv5 -t agora/lamp-token/telemetry -m '{"temperature": 99}' 2>&1 || true)"
v="$(query lamp-token temperature)"
if [ "$v" = "21.5" ]; then ok "a certified device cannot write another device's topic ($out)"; else fail "another device written: $v"; fi
if mosquitto_pub -h localhost -p "$mqtts_port" --cafile "$certs/ca.pem" --cert "$certs/rogue.pem" \
    --key "$certs/rogue.key" -q 1 -t v1/devices/me/telemetry -m '{"power_w": 1}' 2>/dev/null; then
  fail "a certificate of another authority was taken"
else ok "a client certificate of another authority is refused at the handshake"; fi
out="$(mosquitto_pub -h localhost -p "$mqtts_port" --cafile "$certs/ca.pem" --cert "$certs/device-lamp-ghost.pem" \
    --key "$certs/device-lamp-ghost.key" -q 1 -t v1/devices/me/telemetry -m '{"power_w": 1}' 2>&1 || true)"
if grep -qi "not authori" <<<"$out"; then ok "a certificate naming an unregistered device is refused: $out"; else fail "ghost device: $out"; fi
# Plain MQTT still there for the local network.
if mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -u "$TOKEN" -q 1 -t agora/lamp-plain/telemetry -m '{"temperature": 3}'; then
  ok "plain MQTT beside it"; else fail "plain MQTT"; fi

# Renewals during traffic.
"$PAHO_VENV/bin/python" scripts/tls/clients.py "$https_port" "$mqtts_port" "$TOKEN" "$certs" "$pid" || fails=$((fails + 1))

# The shipped alerting rules and Grafana dashboard name only metrics agora exports (with TLS on,
# the certificates' expiry is among them), and their queries are valid PromQL.
curl -sf --cacert "$certs/ca.pem" -H "Authorization: Bearer $TOKEN" "https://localhost:$https_port/metrics" >"$work/metrics.txt"
if python3 scripts/check-monitoring.py "$work/metrics.txt"; then ok "monitoring files match the metrics"; else fail "monitoring files"; fi
if (cd packaging/prometheus && promtool check rules agora-rules.yml >/dev/null && promtool test rules agora-rules.test.yml); then
  ok "alerting rules fire as tested"; else fail "promtool test rules"; fi

if ! kill -0 "$pid" 2>/dev/null; then fail "agora is still running"; fi
if grep -E "panicked" "$work/agora.log"; then fail "no panic"; fi
if [ "$fails" != 0 ]; then
  tail -n 40 "$work/agora.log"
  echo "$fails TLS check(s) failed" >&2
  exit 1
fi
echo "TLS clients: all checks passed"
