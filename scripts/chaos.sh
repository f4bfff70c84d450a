#!/usr/bin/env bash
# The chaos run: every service as several replicas under load while replicas are killed (-9)
# and restarted, and the broker, FerretDB and Postgres restart once each; then, once quiet, a
# verdict read through the services' own APIs and the saga log.
#
#   scripts/chaos.sh [--replicas N] [--rate R] [--visitors V] [--window SECONDS]
#                    [--kill-every SECONDS] [--seed N] [--keep]
#
# The faults last --window seconds (120) or until the load is done. The load is steady: --rate
# visitors a second (20; about a quarter of what this 2-core machine settles, so that the
# backlog of an outage drains within the sagas' deadline), --visitors of them (by default
# enough to outlast the window).
#
# The load is `alpes simulate` (every visitor buys; a fifth of the sales reported as fraud once
# COMPLETED) against the replicas in turn. It checks, and this script prints as a table:
# - every saga final as its script implies (COMPLETED, or COMPENSATED when reported as fraud);
# - a COMPLETED saga's commission RESERVED or CONFIRMED, no other saga's holding money, the
#   budget's reserved amount equal to the sum of the live commissions;
# - no event type twice in a saga's log;
# - nothing in any dead-letter topic (all of the load is valid input: any dead letter is
#   unexplained).
# Exits 1 on any violation, 2 on bad flags.
#
# Runs on a stack of its own, made fresh every run (.stack-chaos; Pulsar 6690/8050, MongoDB
# 27057, Postgres 5473, services 8191-8194 and +100 per replica), stopped at the end unless
# --keep. Loopback only; the platform of scripts/demo.sh and the stacks of scripts/test.sh are
# never touched. The full run is the default.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
REPLICAS=2 RATE=20 VISITORS="" WINDOW=120 KILL_EVERY=5 SEED="" KEEP=false

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; }
while (($#)); do
  case "$1" in
    --replicas) REPLICAS="${2:-}"; shift 2 || true ;;
    --rate) RATE="${2:-}"; shift 2 || true ;;
    --visitors) VISITORS="${2:-}"; shift 2 || true ;;
    --window) WINDOW="${2:-}"; shift 2 || true ;;
    --kill-every) KILL_EVERY="${2:-}"; shift 2 || true ;;
    --seed) SEED="${2:-}"; shift 2 || true ;;
    --keep) KEEP=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "chaos: unknown flag $1" >&2; usage; exit 2 ;;
  esac
done
number() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || (($2 < $3)); then
    echo "chaos: $1 must be a number >= $3, got '$2'" >&2
    exit 2
  fi
}
number --replicas "$REPLICAS" 1
number --window "$WINDOW" 10
number --rate "$RATE" 1
[[ -z "$VISITORS" ]] && VISITORS=$((RATE * (WINDOW + 10)))
number --visitors "$VISITORS" 1
number --kill-every "$KILL_EVERY" 1
[[ -z "$SEED" ]] && SEED=$((RANDOM * 32768 + RANDOM))
number --seed "$SEED" 0

export ALPES_STACK_DIR="$ROOT/.stack-chaos" ALPES_PULSAR_PORT=6690 ALPES_PULSAR_ADMIN_PORT=8050 \
  ALPES_PULSAR_BOOKIE_PORT=3151 ALPES_MONGO_PORT=27057 ALPES_FERRETDB_DEBUG_PORT=8128 \
  ALPES_POSTGRES_PORT=5473 ALPES_TRACKING_PORT=8191 ALPES_ATTRIBUTION_PORT=8192 \
  ALPES_COMMISSION_PORT=8193 ALPES_MARKETING_PORT=8194
OUT="$ALPES_STACK_DIR/chaos"
SERVICES=(tracking attribution commission marketing)

log() { printf '[chaos %s] %s\n' "$(date +%T)" "$*" >&2; }
stop_all() {
  if ! $KEEP; then
    "$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
    "$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
  else
    log "kept running: ALPES_STACK_DIR=$ALPES_STACK_DIR (stop: scripts/services.sh down; scripts/stack.sh down, same variables)"
  fi
}
trap stop_all EXIT

log "a fresh stack in $ALPES_STACK_DIR"
"$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
rm -rf "$ALPES_STACK_DIR"
"$ROOT/scripts/stack.sh" up
eval "$("$ROOT/scripts/stack.sh" env)"
mkdir -p "$OUT"

log "building the CLI and the services"
# Each copied the moment it is built: another checkout building into the same target directory
# (CI's clone, say) would replace the binaries there under the run.
mkdir -p "$OUT/bin"
(cd "$ROOT" && cargo build --quiet --locked -p alpes-cli) && cp "$TARGET/debug/alpes" "$OUT/bin/"
(cd "$ROOT" && cargo build --quiet --locked --release -p alpes-tracking -p alpes-attribution \
  -p alpes-commission -p alpes-marketing) && cp "${SERVICES[@]/#/$TARGET/release/}" "$OUT/bin/"
ALPES="$OUT/bin/alpes"
export ALPES_SERVICES_BIN="$OUT/bin"
"$ALPES" bootstrap >/dev/null
"$ROOT/scripts/services.sh" up --replicas "$REPLICAS"
eval "$("$ROOT/scripts/services.sh" env)"

log "load: $VISITORS visitors, $RATE a second (each buys; a fifth reported as fraud), seed $SEED"
started_at=$SECONDS
"$ALPES" simulate --visitors "$VISITORS" --rate "$RATE" --purchase-rate 1 --fraud-rate 0.2 \
  --concurrency 8 --timeout 300s --seed "$SEED" --json >"$OUT/simulate.json" \
  2>"$OUT/simulate.log" &
load=$!

# The faults, for --window seconds or until the load is done: a random replica killed every
# --kill-every seconds and started again; the broker (gracefully: a kill -9 of a standalone
# broker can leave its bookie unregistered until a clean start, a Pulsar standalone matter),
# FerretDB (kill -9) and Postgres (immediate stop) restarted once each, a quarter, half and
# three quarters into the window.
kills=0 restarts=()
# restart COMPONENT WHAT: `scripts/stack.sh restart-COMPONENT`, noted in `restarts` if it worked.
restart() {
  log "restarting $2"
  if ALPES_RESTART_SIGNAL=TERM "$ROOT/scripts/stack.sh" "restart-$1" >>"$OUT/faults.log" 2>&1; then
    restarts+=("$1")
  else
    log "restarting $1 failed (see $OUT/faults.log)"
  fi
}
next_kill=$KILL_EVERY
stage=0
while kill -0 "$load" 2>/dev/null && ((SECONDS - started_at < WINDOW)); do
  elapsed=$((SECONDS - started_at))
  if ((stage < 3 && elapsed >= (stage + 1) * WINDOW / 4)); then
    case $stage in
      0) restart pulsar "the broker (graceful)" ;;
      1) restart ferretdb "FerretDB (kill -9)" ;;
      2) restart postgres "Postgres (immediate stop)" ;;
    esac
    stage=$((stage + 1))
  fi
  if ((elapsed >= next_kill)); then
    service="${SERVICES[RANDOM % ${#SERVICES[@]}]}" replica=$((RANDOM % REPLICAS + 1))
    id="$service"
    ((replica > 1)) && id="$service-$replica"
    pidfile="$ALPES_STACK_DIR/services/$id.pid"
    if [[ -s "$pidfile" ]] && kill -KILL "$(cat "$pidfile")" 2>/dev/null; then
      kills=$((kills + 1))
      log "killed $id (kill -9), starting it again"
      sleep $((RANDOM % 3))
      "$ROOT/scripts/services.sh" up --replicas "$REPLICAS" >>"$OUT/faults.log" 2>&1 \
        || log "$id did not come back at once; the next round tries again"
    fi
    next_kill=$((SECONDS - started_at + KILL_EVERY))
  fi
  sleep 1
done
faults_over=$SECONDS
log "faults over after $((faults_over - started_at)) s: $kills kills, restarts: ${restarts[*]:-none}"
if ((faults_over - started_at < WINDOW)); then
  log "the load ended before the window did: give it more --visitors to cover every fault"
fi
# Whatever is down comes back before the load's verdict.
"$ROOT/scripts/services.sh" up --replicas "$REPLICAS" >>"$OUT/faults.log" 2>&1 || true
load_status=0
wait "$load" || load_status=$?
quiet_after=$((SECONDS - faults_over))
log "the load ended (exit $load_status), $quiet_after s after the faults"

# Dead letters: every topic of the namespace ending in -DLQ, and how many messages it got.
dead_letters="$(python3 - "$ALPES_PULSAR_ADMIN_URL" "${ALPES_PULSAR_TOKEN:-}" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)
for topic in get("/admin/v2/persistent/alpes/events"):
    if topic.endswith("-DLQ"):
        stats = get("/admin/v2/" + topic.replace("persistent://", "persistent/") + "/stats")
        if stats.get("msgInCounter", 0):
            print(f"{topic.rsplit('/', 1)[-1]}={stats['msgInCounter']}")
PY
)" || dead_letters="(the dead-letter topics could not be read)"

python3 - "$OUT/simulate.json" "$load_status" "$kills" "${restarts[*]:-none}" "$quiet_after" \
  "$dead_letters" "$REPLICAS" "$SEED" <<'PY'
import json, sys
path, load_status, kills, restarts, quiet, dead, replicas, seed = sys.argv[1:]
violations = []
try:
    with open(path) as f:
        run = json.load(f)
    summary, sagas = run["summary"], run["sagas"]
except Exception as e:  # the load failed before its verdict
    summary, sagas = None, []
    violations.append(f"the load gave no verdict ({e}); see {path.rsplit('/', 1)[0]}/simulate.log")
rows = [("replicas per service", replicas), ("seed", seed)]
if summary:
    rows += [
        ("sagas", str(summary["sales"])),
        ("final statuses", ", ".join(f"{k} {v}" for k, v in summary["by_status"].items())),
        ("settled as scripted", f"{summary['settled']} of {summary['sales']}"),
    ]
    violations += [f"saga {d['saga_id']}: {d['problem']}" for d in summary["discrepancies"]]
    violations += [f"request failed: {e}" for e in summary["errors"]]
rows += [
    ("replicas killed (-9)", kills),
    ("restarted", restarts),
    ("quiet after the faults", f"{quiet} s"),
    ("dead letters", dead or "none"),
]
if dead:
    violations.append(f"unexplained dead letters: {dead}")
if load_status not in ("0", "1"):
    violations.append(f"the load exited {load_status}")
width = max(len(k) for k, _ in rows)
print("\n=== chaos verdict")
for key, value in rows:
    print(f"  {key:<{width}}  {value}")
for v in violations[:50]:
    print(f"  VIOLATION  {v}")
if len(violations) > 50:
    print(f"  ... and {len(violations) - 50} more")
print("FAILED" if violations else "ok: every saga final, money exact, nothing twice, no dead letter")
sys.exit(1 if violations else 0)
PY
