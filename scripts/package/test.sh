#!/usr/bin/env bash
# The Debian package, installed for real with apt on this machine (as root), then the operations
# guide's commands run as written:
#  1. build agora_<version>-1 and -2 (the same binary: -2 stands for the next release);
#  2. install -1: the system user, /var/lib/agora owned by it, the conffile, the admin token file
#     readable by root and agora only; `systemd-analyze verify` clean on the installed unit and
#     `systemd-analyze security --offline` printed; agora started as the unit says (see
#     systemctl-shim.sh: systemd is not PID 1 here) passes `agora doctor`, takes points;
#  3. upgrade to -2 with a locally edited configuration: the edit, the token file, the data and
#     the tokens are kept, and every query answers exactly as before;
#  4. purge: configuration, data and user gone;
#  5. the guide (docs/exploitation.md) from a clean machine: every `sh` block, in order.
# Called by scripts/test.sh; needs root (or sudo), apt-get, systemd-analyze (Debian's systemd).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
if ! command -v systemd-analyze >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; fi
deb1="$(scripts/package/build-deb.sh 1)"
deb2="$(scripts/package/build-deb.sh 2)"
work="$(mktemp -d)"
shim="$work/bin"; mkdir -p "$shim"
cp scripts/package/systemctl-shim.sh "$shim/systemctl"; cp scripts/package/systemctl-shim.sh "$shim/journalctl"
export PATH="$shim:$PATH" AGORA_SHIM_STATE="$work/shim"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http="$(free_port)"; mqtt="$(free_port)"; mqtts="$(free_port)"
export AGORA_SHIM_ENV="AGORA_HTTP=0.0.0.0:$http AGORA_MQTT_LISTEN=0.0.0.0:$mqtt"
purge() { systemctl stop agora || true; DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq agora >/dev/null 2>&1 || true; }
cleanup() { purge; rm -rf "$work" /var/backups/agora /etc/systemd/system/agora.service.d /var/lib/agora.avant-restauration.*; }
trap cleanup EXIT
purge
fails=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }

echo "── install $(basename "$deb1")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb1" >/dev/null
check "system user agora" 'id agora >/dev/null'
check "/var/lib/agora owned by agora, 0750" '[ "$(stat -c %U:%a /var/lib/agora)" = agora:750 ]'
check "/etc/agora/agora.env root:agora 0640" '[ "$(stat -c %U:%G:%a /etc/agora/agora.env)" = root:agora:640 ]'
check "agora.toml is a conffile" 'dpkg-query -W -f="\${Conffiles}" agora | grep -q /etc/agora/agora.toml'
check "agora --version names the commit" 'agora --version | grep -q "(commit $(git rev-parse --short=12 HEAD))"'
verify="$(systemd-analyze verify /lib/systemd/system/agora.service 2>&1)" || true
check "systemd-analyze verify: clean" '[ -z "$verify" ]' || echo "$verify"
security="$(systemd-analyze security --offline=true /lib/systemd/system/agora.service 2>&1 | grep 'Overall exposure')" || true
echo "     systemd-analyze security: ${security:-not available here}"
systemctl start agora
token="$(sed -n 's/^AGORA_ADMIN_TOKEN=//p' /etc/agora/agora.env)"
check "agora doctor passes as the service's user" 'runuser -u agora -- env $AGORA_SHIM_ENV agora doctor --config /etc/agora/agora.toml >"$work/doctor.txt"' || cat "$work/doctor.txt"
check "the data directory belongs to agora after start" '[ -z "$(find /var/lib/agora ! -user agora)" ]'
api() { curl -fsS -H "Authorization: Bearer $token" "$@"; }
ingest="$(api -H 'Content-Type: application/json' -d '{"name":"upgrade","scope":"ingest"}' "http://127.0.0.1:$http/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
now="$(date +%s)"
body=""
for i in $(seq 0 199); do body+="weather,device=w-1 temperature=$((i % 17)).5,humidity=$((40 + i % 9)) $((now - 20000 + i * 60))"$'\n'; done
printf '%s' "$body" | curl -fsS -H "Authorization: Token $ingest" --data-binary @- "http://127.0.0.1:$http/api/v2/write?precision=s"
from="$(date -u -d "@$((now - 30000))" +%Y-%m-%dT%H:%M:%SZ)"; to="$(date -u -d "@$((now - 1000))" +%Y-%m-%dT%H:%M:%SZ)"
queries=("/api/v1/observations?device=w-1&property=temperature&from=$from&to=$to&limit=1000&quality=all"
         "/api/v1/aggregate?device=w-1&property=humidity&every=1h&from=$from&to=$to"
         "/api/v1/devices/w-1")
# The device's silence grows with the clock: everything else must be the same.
snapshot() { for q in "${queries[@]}"; do api "http://127.0.0.1:$http$q" | python3 -c 'import json,sys; d=json.load(sys.stdin); [v.pop("silent_for_s", None) for v in [d.get("device")] if isinstance(v, dict)]; print(json.dumps(d, sort_keys=True))'; done; }
snapshot >"$work/before.json"
n="$(head -n1 "$work/before.json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["points"]))')"
check "200 points read back before the upgrade ($n)" '[ "$n" = 200 ]'
echo "# edited here" >>/etc/agora/agora.toml
envsum="$(sha256sum /etc/agora/agora.env)"
systemctl stop agora

echo "── upgrade to $(basename "$deb2")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb2" >/dev/null
check "version -2 installed" 'dpkg-query -W -f="\${Version}" agora | grep -q -- "-2$"'
check "the edited configuration is kept" 'tail -n1 /etc/agora/agora.toml | grep -q "edited here"'
check "the admin token file is kept" '[ "$(sha256sum /etc/agora/agora.env)" = "$envsum" ]'
systemctl start agora
snapshot >"$work/after.json"
check "every query answers as before the upgrade" 'diff "$work/before.json" "$work/after.json"' || diff "$work/before.json" "$work/after.json" | cut -c1-400
check "the ingest token made before still writes" 'curl -fsS -H "Authorization: Token $ingest" --data-binary "weather,device=w-1 temperature=1 $now" "http://127.0.0.1:$http/api/v2/write?precision=s"'
systemctl stop agora

echo "── purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq agora >/dev/null
check "purge removes configuration, data, binary and user" '[ ! -e /etc/agora ] && [ ! -e /var/lib/agora ] && [ ! -e /usr/bin/agora ] && ! id agora >/dev/null 2>&1'

echo "── the operations guide, as written"
mkdir -p "$work/guide/nouveau"
cp "$deb1" "$work/guide/"; cp "$deb2" "$work/guide/nouveau/"
python3 scripts/package/run-guide.py docs/exploitation.md "$http" "$mqtt" "$mqtts" >"$work/guide.sh"
blocks="$(grep -c '^```sh' docs/exploitation.md)"
if (cd "$work/guide" && bash "$work/guide.sh") >"$work/guide.log" 2>&1; then
  ok "every command of the guide ran ($blocks blocks)"
else
  tail -n 40 "$work/guide.log"; echo "agora's log:"; tail -n 20 "$work/shim/agora.log" || true
  fail "the guide's commands"
fi
if [ "$fails" != 0 ]; then echo "$fails package check(s) failed" >&2; exit 1; fi
echo "package: all checks passed"
