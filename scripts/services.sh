#!/usr/bin/env bash
# The four alpes services as local processes, against the local stack.
#
#   scripts/services.sh up | down | status
#
# Builds the binaries (release), starts tracking :8081, attribution :8082, commission :8083 and
# marketing :8084 on 127.0.0.1 with the stack's connection variables, waits until each /readyz
# answers, and stops only the processes it started (pid files in .stack/services/).
# Beside a second stack (ALPES_STACK_DIR, see scripts/stack.sh), pid files and logs live in its
# directory, and ALPES_{TRACKING,ATTRIBUTION,COMMISSION,MARKETING}_PORT move the services.
# ALPES_SERVICES_BIN=<dir> runs the binaries in <dir> instead of building them (e.g. another
# revision's, to compare in a benchmark). A graceful stop gets 30 s (flushing an outbox under
# load takes several) before SIGKILL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${ALPES_STACK_DIR:-$ROOT/.stack}"
STATE="$STACK/services"
LOGS="$STACK/logs"
SERVICES=(
  "tracking:${ALPES_TRACKING_PORT:-8081}"
  "attribution:${ALPES_ATTRIBUTION_PORT:-8082}"
  "commission:${ALPES_COMMISSION_PORT:-8083}"
  "marketing:${ALPES_MARKETING_PORT:-8084}"
)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] FAILED: %s\n' "$1" >&2
  [[ -n "${2:-}" && -s "$2" ]] && { printf '[services] --- last lines of %s ---\n' "$2" >&2; tail -n 20 "$2" >&2; }
  exit 1
}

alive() {
  local pidfile="$STATE/$1.pid" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null && [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"/$1 "* ]]
}

up() {
  mkdir -p "$STATE" "$LOGS"
  eval "$("$ROOT/scripts/stack.sh" env)"
  local bin="${ALPES_SERVICES_BIN:-}"
  if [[ -z "$bin" ]]; then
    log "building the services (release)"
    (cd "$ROOT" && cargo build --quiet --locked --release -p alpes-tracking -p alpes-attribution -p alpes-commission -p alpes-marketing) \
      || die "cargo build failed"
    bin="$TARGET/release"
  fi
  local entry name port
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" port="${entry##*:}"
    if alive "$name"; then
      log "$name: already running (pid $(cat "$STATE/$name.pid"))"
      continue
    fi
    log "$name: starting on 127.0.0.1:$port"
    # A broker with token authentication (ALPES_PULSAR_AUTH=token): each service connects as its
    # own role, never as the admin whose token `stack.sh env` exports for tools.
    local pulsar_token="${ALPES_PULSAR_TOKEN:-}"
    if [[ -n "${ALPES_PULSAR_TOKEN_DIR:-}" ]]; then
      pulsar_token="$(cat "$ALPES_PULSAR_TOKEN_DIR/alpes-$name.token")"
    fi
    ALPES_HTTP_ADDR="127.0.0.1:$port" ALPES_LOG_FORMAT=json ALPES_PULSAR_TOKEN="$pulsar_token" \
      setsid "$bin/$name" --http-addr "127.0.0.1:$port" </dev/null >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$STATE/$name.pid"
  done
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" port="${entry##*:}"
    local i
    for ((i = 0; i < 120; i++)); do
      curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null && break
      alive "$name" || die "$name exited during start-up" "$LOGS/$name.log"
      sleep 0.5
    done
    curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null || die "$name not ready after 60 s" "$LOGS/$name.log"
    log "$name: ready (http://127.0.0.1:$port)"
  done
}

down() {
  local entry name pid i
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    if ! alive "$name"; then
      rm -f "$STATE/$name.pid"
      continue
    fi
    pid="$(cat "$STATE/$name.pid")"
    log "$name: stopping (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name: still running, SIGKILL"; kill -KILL "$pid"; }
    rm -f "$STATE/$name.pid"
  done
}

status() {
  local entry name port rc=0
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" port="${entry##*:}"
    if alive "$name"; then
      printf '%-12s up   (pid %s, http://127.0.0.1:%s)\n' "$name:" "$(cat "$STATE/$name.pid")" "$port"
    else
      printf '%-12s down\n' "$name:"
      rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up | down | status" >&2; exit 2 ;;
esac
