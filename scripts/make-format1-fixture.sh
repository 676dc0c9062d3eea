#!/usr/bin/env bash
# Builds crates/agora/tests/fixtures/format1.tar.gz: a small data directory written by the
# release at commit 7a9a364, the last before data directories carried a format version
# (issue 18, item 8). `it::upgrade` opens it with the current release and checks every answer
# against values it computes from the same formulas. Run from the repository root:
#
#   scripts/make-format1-fixture.sh
#
# The city in it: commune 13001, place hotel-de-ville; a weather station (temperature every
# 10 minutes), a sound level meter (LAeq every minute), a pedestrian counter (every 15 minutes)
# and a street lamp (its status every hour). Day 1 is written and the server stopped cleanly,
# day 2 likewise (two segments), then 12 hours of day 3 and a kill -9: the last part is only in
# the write-ahead log.
set -euo pipefail
COMMIT=7a9a364
ROOT=$(pwd)
# FORMAT1_BIN: an agora binary already built from $COMMIT (skips the build).
BIN=${FORMAT1_BIN:-}
if [ -z "$BIN" ]; then
  SRC=$(mktemp -d)/agora-$COMMIT
  git worktree add -f "$SRC" "$COMMIT" >/dev/null
  trap 'git worktree remove --force "$SRC"' EXIT
  export CARGO_TARGET_DIR=$HOME/.cache/agora-format1-target
  (cd "$SRC" && cargo build -p agora --bin agora)
  BIN=$CARGO_TARGET_DIR/debug/agora
fi
WORK=$(mktemp -d)
DATA=$WORK/data
ADMIN=agora_test_admin_token_0123456789
T=1767225600
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

start() {
  AGORA_ADMIN_TOKEN=$ADMIN AGORA_LOG=warn "$BIN" serve --data "$DATA" --http 127.0.0.1:$PORT >/dev/null &
  PID=$!
  for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && return; sleep 0.1; done
  echo "agora did not start" >&2; exit 1
}
post() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$2" "$URL$1" >/dev/null; }
# Lines for day $1 (0-based) up to $2 hours; the formulas are those of crates/agora/tests/it/upgrade.rs.
day() {
  python3 - "$1" "$2" "$T" <<'PY'
import sys
d, hours, t0 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = []
for m in range(d * 1440, d * 1440 + hours * 60):
    t = t0 + m * 60
    if m % 10 == 0:
        out.append(f"weather,device=wx-1,site=hotel-de-ville temperature={10 + (m // 10 % 17) * 0.5} {t}")
    out.append(f"noise,device=n-1,site=hotel-de-ville laeq={40 + m % 23} {t}")
    if m % 15 == 0:
        out.append(f"pedestrian_counter,device=pc-1,site=hotel-de-ville people_in={m // 15 % 9}i {t}")
    if m % 60 == 0:
        status = "defectiveLamp" if m // 60 % 5 == 0 else "ok"
        out.append(f'streetlight,device=sl-1,site=hotel-de-ville lamp_status="{status}" {t}')
print("\n".join(out))
PY
}
write() { day "$1" "$2" | curl -sf -H "Authorization: Bearer $ADMIN" --data-binary @- "$URL/api/v2/write?precision=s"; }

start
post /api/v1/communes '{"insee": "13001", "name": "Aix-en-Provence"}'
post /api/v1/sites '{"id": "hotel-de-ville", "commune": "13001", "name": "Hôtel de Ville", "lat": 43.5299, "lon": 5.4474}'
write 0 24
kill -TERM $PID; wait $PID
start
write 1 24
kill -TERM $PID; wait $PID
start
write 2 12
kill -KILL $PID; wait $PID || true
tar -C "$WORK" -czf "$ROOT/crates/agora/tests/fixtures/format1.tar.gz" data
rm -rf "$WORK"
ls -l "$ROOT/crates/agora/tests/fixtures/format1.tar.gz"
