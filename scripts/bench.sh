#!/usr/bin/env bash
# The benchmark: what one saga costs on the local stack — CPU per process, store commands,
# Pulsar messages and Postgres commits per completed saga — at a given arrival rate.
#
#   scripts/bench.sh [alpes bench flags...]
#   scripts/bench.sh --rate 20 --duration 1m --json bench.json
#
# 1. installs the build prerequisites and brings the local stack up (scripts/stack.sh up); a
#    stack it started is stopped again at the end, one you had started is left alone;
# 2. builds the CLI (release) and brings the four services up (release, scripts/services.sh up):
#    services already running are used as they are; if it had to start any, it stops them
#    again at the end;
# 3. runs `alpes bench` with the flags given (`alpes bench --help`), and reads Postgres's
#    committed transactions (pg_stat_database.xact_commit, summed over databases) before and
#    after it, to print the commits per completed saga: the CLI has no Postgres driver.
#
# Loopback only. Exit code: that of `alpes bench` (1 when a saga got stuck or a visitor failed).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

scripts/prerequisites.sh

started_stack=false
if ! scripts/stack.sh status >/dev/null 2>&1; then
  started_stack=true
fi
step "local stack (Pulsar, FerretDB, Postgres)"
scripts/stack.sh up
started_services=false
workdir="$(mktemp -d)"
cleanup() {
  rm -rf "$workdir"
  if $started_services; then scripts/services.sh down || true; fi
  if $started_stack; then
    step "stopping the local stack"
    scripts/stack.sh down
  fi
}
trap cleanup EXIT
eval "$(scripts/stack.sh env)"

TARGET="${CARGO_TARGET_DIR:-target}"
step "the alpes CLI (release)"
cargo build --release --locked -p alpes-cli

step "the four services (release)"
if ! scripts/services.sh status >/dev/null 2>&1; then
  started_services=true
fi
# New subscriptions start at the end of the topics: old traffic is not this run's work.
ALPES_SUBSCRIBE_FROM=latest scripts/services.sh up
# The services' URLs, on the ports ALPES_<SERVICE>_PORT may have moved them to.
eval "$(scripts/services.sh env)"

# The result file `completed` is read from: the caller's --json, or one of ours.
args=("$@")
json_file=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --json) json_file="${args[i + 1]:-}" ;;
    --json=*) json_file="${args[i]#--json=}" ;;
  esac
done
if [[ -z "$json_file" ]]; then
  json_file="$workdir/bench.json"
  args+=(--json "$json_file")
fi
rm -f "$json_file"

PG_PORT="${ALPES_POSTGRES_PORT:-5433}"
pg_commits() {
  psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c 'SELECT sum(xact_commit) FROM pg_stat_database'
}

step "alpes bench ${args[*]}"
commits_before="$(pg_commits)"
rc=0
"$TARGET/release/alpes" bench "${args[@]}" || rc=$?

if [[ -s "$json_file" ]]; then
  # A backend that has gone idle reports its counts within 10 s (PGSTAT_IDLE_INTERVAL), not
  # at once: wait for the last sagas' commits to be counted.
  sleep 11
  commits_after="$(pg_commits)"
  commits=$((commits_after - commits_before))
  completed="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sagas"]["completed"])' "$json_file")"
  if ((completed > 0)); then
    per_saga="$(python3 -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[2]):.2f}")' "$commits" "$completed")"
  else
    per_saga="-"
  fi
  printf 'postgres commits: %d during the run, %s per completed saga (xact_commit, all databases)\n' \
    "$commits" "$per_saga"
else
  echo "alpes bench wrote no result; Postgres commits not reported" >&2
fi
((rc == 0)) || exit "$rc"
