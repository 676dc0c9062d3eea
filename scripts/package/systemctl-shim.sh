#!/usr/bin/env bash
# Stands in for systemctl and journalctl in a test machine (a container) where systemd is not
# PID 1: `start` runs the unit's own ExecStart, as its User, with its EnvironmentFile and its
# drop-ins' Environment= lines, the way systemd would; `reload` sends SIGHUP as ExecReload does;
# `stop` sends SIGTERM and waits, as systemd does. The hardening directives are checked
# separately with systemd-analyze (they need a real systemd to apply).
# Installed as both `systemctl` and `journalctl` in a directory put first in PATH by test.sh.
set -euo pipefail
unit=/lib/systemd/system/agora.service
state="${AGORA_SHIM_STATE:-/run/agora-shim}"
mkdir -p "$state"
log="$state/agora.log"
pidfile="$state/pid"
extra_env="${AGORA_SHIM_ENV:-}"   # the test's own overrides (free ports), like a drop-in would be

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
ready() {
  for _ in $(seq 1 300); do
    if ! running; then echo "agora exited:" >&2; tail -n 30 "$log" >&2; return 1; fi
    if grep -q "agora is ready" "$log" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "agora not ready in 30 s" >&2; tail -n 30 "$log" >&2; return 1
}
start() {
  running && return 0
  local user exec envfile
  user="$(sed -n 's/^User=//p' "$unit")"
  exec="$(sed -n 's/^ExecStart=//p' "$unit")"
  envfile="$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")"
  local envs=()
  if [ -f "$envfile" ]; then
    while IFS= read -r line; do
      case "$line" in ''|'#'*) ;; *) envs+=("$line") ;; esac
    done <"$envfile"
  fi
  for v in $extra_env; do envs+=("$v"); done
  : >"$log"
  # A fresh log for each start, as `journalctl -u agora -b` would show.
  setsid runuser -u "$user" -- env "${envs[@]}" $exec >>"$log" 2>&1 &
  echo $! >"$pidfile"
  ready
}
stop() {
  running || return 0
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}

case "$(basename "$0")" in
  journalctl) cat "$log"; exit 0 ;;
esac
args=()
for a in "$@"; do case "$a" in --*) ;; *) args+=("$a") ;; esac; done
cmd="${args[0]:-}"
case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  try-restart) if running; then stop; start; fi ;;
  reload) running && kill -HUP "$(cat "$pidfile")" ;;
  status) if running; then echo "● agora.service - running (pid $(cat "$pidfile"))"; else echo "● agora.service - inactive"; exit 3; fi ;;
  is-active) running ;;
  daemon-reload|enable|disable) ;;
  *) echo "systemctl shim: $cmd not handled" >&2; exit 1 ;;
esac
