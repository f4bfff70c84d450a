#!/usr/bin/env bash
# The four alpes services as local processes, against the local stack.
#
#   scripts/services.sh up [--replicas N] | down | status | env
#
# Builds the binaries (release), starts tracking :8081, attribution :8082, commission :8083 and
# marketing :8084 on 127.0.0.1 with the stack's connection variables, waits until each /readyz
# answers, and stops only the processes it started (pid files in .stack/services/).
# --replicas N (default 1) starts N processes of each service, replica r on the port + 100 × (r-1)
# (tracking :8081, :8181, ...): same subscriptions, same databases, as replicas of a deployment
# share them. `env` prints the URLs of the running replicas as ALPES_<SERVICE>_URL (comma
# separated: `alpes simulate` and `alpes bench` send requests to each in turn).
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

REPLICA_PORT_STEP=100

# instance NAME R: the pid-file and log name of replica R of service NAME (`tracking`,
# `tracking-2`, ...).
instance() { if (($2 == 1)); then echo "$1"; else echo "$1-$2"; fi; }

# alive INSTANCE: its pid file names a running process of the service's binary.
alive() {
  local pidfile="$STATE/$1.pid" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null && [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"/${1%-[0-9]*} "* ]]
}

# replicas NAME: the replica numbers of NAME with a pid file, in order (1 always listed).
replicas() {
  local file r
  {
    echo 1
    for file in "$STATE/$1"-[0-9]*.pid; do
      [[ -e "$file" ]] || continue
      r="${file##*-}"
      echo "${r%.pid}"
    done
  } | sort -n -u
}

up() {
  local count=1
  while (($#)); do
    case "$1" in
      --replicas) count="${2:-}"; shift 2 || true ;;
      *) echo "usage: $0 up [--replicas N]" >&2; exit 2 ;;
    esac
  done
  [[ "$count" =~ ^[1-9][0-9]?$ ]] || { echo "--replicas: expected 1 to 99, got '${count}'" >&2; exit 2; }
  mkdir -p "$STATE" "$LOGS"
  eval "$("$ROOT/scripts/stack.sh" env)"
  local bin="${ALPES_SERVICES_BIN:-}"
  if [[ -z "$bin" ]]; then
    log "building the services (release)"
    (cd "$ROOT" && cargo build --quiet --locked --release -p alpes-tracking -p alpes-attribution -p alpes-commission -p alpes-marketing) \
      || die "cargo build failed"
    bin="$TARGET/release"
  fi
  local entry name base port r id started=()
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" base="${entry##*:}"
    for ((r = 1; r <= count; r++)); do
      id="$(instance "$name" "$r")" port=$((base + (r - 1) * REPLICA_PORT_STEP))
      if alive "$id"; then
        log "$id: already running (pid $(cat "$STATE/$id.pid"))"
        started+=("$id:$port")
        continue
      fi
      log "$id: starting on 127.0.0.1:$port"
      # A broker with token authentication (ALPES_PULSAR_AUTH=token): each service connects as
      # its own role, never as the admin whose token `stack.sh env` exports for tools.
      local pulsar_token="${ALPES_PULSAR_TOKEN:-}"
      if [[ -n "${ALPES_PULSAR_TOKEN_DIR:-}" ]]; then
        pulsar_token="$(cat "$ALPES_PULSAR_TOKEN_DIR/alpes-$name.token")"
      fi
      # One tokio worker thread per process (TOKIO_WORKER_THREADS overrides it): the stack shares
      # the machine's cores with the broker and the databases, and a service waits on I/O; with a
      # worker per core its threads wake each other for every message (`scripts/bench.sh --rate
      # 100`, two runs each: 4.22–4.29 ms of the four services' CPU per saga with one worker,
      # 4.71–4.85 ms with TOKIO_WORKER_THREADS=2). The allocator keeps the pages it freed
      # (MIMALLOC_PURGE_DELAY=-1) rather than handing them back and faulting them in again (in
      # one run, ≈ 0.35 ms per saga less than mimalloc's default; perf had shown the page faults).
      TOKIO_WORKER_THREADS="${TOKIO_WORKER_THREADS:-1}" \
        MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:--1}" \
        ALPES_HTTP_ADDR="127.0.0.1:$port" ALPES_LOG_FORMAT=json ALPES_PULSAR_TOKEN="$pulsar_token" \
        setsid "$bin/$name" --http-addr "127.0.0.1:$port" </dev/null >>"$LOGS/$id.log" 2>&1 &
      echo $! >"$STATE/$id.pid"
      started+=("$id:$port")
    done
  done
  for entry in "${started[@]}"; do
    id="${entry%%:*}" port="${entry##*:}"
    local i
    for ((i = 0; i < 120; i++)); do
      curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null && break
      alive "$id" || die "$id exited during start-up" "$LOGS/$id.log"
      sleep 0.5
    done
    curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null || die "$id not ready after 60 s" "$LOGS/$id.log"
    log "$id: ready (http://127.0.0.1:$port)"
  done
}

down() {
  local entry name r id pid i
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    for r in $(replicas "$name"); do
      id="$(instance "$name" "$r")"
      if ! alive "$id"; then
        rm -f "$STATE/$id.pid"
        continue
      fi
      pid="$(cat "$STATE/$id.pid")"
      log "$id: stopping (pid $pid)"
      kill -TERM "$pid"
      for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "$id: still running, SIGKILL"; kill -KILL "$pid"; }
      rm -f "$STATE/$id.pid"
    done
  done
}

status() {
  local entry name base r id rc=0
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" base="${entry##*:}"
    for r in $(replicas "$name"); do
      id="$(instance "$name" "$r")"
      if alive "$id"; then
        printf '%-14s up   (pid %s, http://127.0.0.1:%s)\n' "$id:" "$(cat "$STATE/$id.pid")" \
          "$((base + (r - 1) * REPLICA_PORT_STEP))"
      else
        printf '%-14s down\n' "$id:"
        rc=1
      fi
    done
  done
  return $rc
}

# The running replicas' URLs, as the variables the CLI reads.
env_urls() {
  local entry name base r id urls
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}" base="${entry##*:}" urls=()
    for r in $(replicas "$name"); do
      id="$(instance "$name" "$r")"
      alive "$id" && urls+=("http://127.0.0.1:$((base + (r - 1) * REPLICA_PORT_STEP))")
    done
    ((${#urls[@]})) || urls=("http://127.0.0.1:$base")
    printf 'export ALPES_%s_URL=%s\n' "${name^^}" "$(IFS=,; echo "${urls[*]}")"
  done
}

command="${1:-}"
(($#)) && shift
case "$command" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  env) env_urls ;;
  *) echo "usage: $0 up [--replicas N] | down | status | env" >&2; exit 2 ;;
esac
