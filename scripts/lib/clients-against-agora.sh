# Sourced by the scripts that run integrators' own clients against a real agora:
# `run_clients_against_agora BIN TOKEN PYTHON SCRIPT [TOML]` starts `agora serve` (fresh data,
# MQTT off, the admin token TOKEN, the configuration TOML if given) on a free port, waits until
# it listens, runs SCRIPT with PYTHON (AGORA_URL and AGORA_TOKEN set), stops agora, and fails
# when agora logged an error meanwhile.
run_clients_against_agora() {
  local bin="$1" token="$2" python="$3" script="$4" toml="${5:-}"
  work="$(mktemp -d)"
  local config=()
  if [ -n "$toml" ]; then
    printf '%s\n' "$toml" >"$work/agora.toml"
    config=(--config "$work/agora.toml")
  fi
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  env -u AGORA_CONFIG AGORA_ADMIN_TOKEN="$token" AGORA_MQTT_LISTEN=off AGORA_LOG=warn \
    "$bin" serve "${config[@]}" --data "$work/data" --http "127.0.0.1:$port" >"$work/agora.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 1 120); do
    if grep -q "agora listening on" "$work/agora.log"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$work/agora.log"; echo "agora exited" >&2; exit 1; fi
    sleep 0.5
  done
  grep -q "agora listening on" "$work/agora.log" || { cat "$work/agora.log"; echo "agora did not start" >&2; exit 1; }
  AGORA_URL="http://127.0.0.1:$port" AGORA_TOKEN="$token" "$python" "$script"
  if grep -E "panicked|ERROR" "$work/agora.log"; then
    echo "agora logged errors while the clients ran" >&2
    exit 1
  fi
}
