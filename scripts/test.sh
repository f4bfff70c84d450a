#!/usr/bin/env bash
# The test command: everything CI checks, against the real local stack.
#
#   scripts/test.sh            # format, lints, schema compatibility, all tests
#
# Runs on stacks of its own (.stack-auth, with Pulsar token authentication; .stack-faults, for
# the broker-restart tests; .stack-chaos, for a short chaos run), never on the platform
# `scripts/demo.sh` leaves running; starts them if they are not running and stops again what it
# started. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

scripts/prerequisites.sh

# The stack the tests run on: its own ports and directory, beside the platform `scripts/demo.sh`
# runs (which they neither disturb nor are disturbed by), and its broker requires tokens and
# enforces each role's permissions (ALPES_PULSAR_AUTH=token): every test presents the admin
# role's token (ALPES_PULSAR_TOKEN), crates/bus/tests/auth.rs each service's own, and the
# services started at the end run as their own roles.
auth_env=(ALPES_STACK_DIR="$PWD/.stack-auth" ALPES_PULSAR_PORT=6670 ALPES_PULSAR_ADMIN_PORT=8070
  ALPES_PULSAR_BOOKIE_PORT=3171 ALPES_MONGO_PORT=27037 ALPES_FERRETDB_DEBUG_PORT=8108
  ALPES_POSTGRES_PORT=5453 ALPES_TRACKING_PORT=8171 ALPES_ATTRIBUTION_PORT=8172
  ALPES_COMMISSION_PORT=8173 ALPES_MARKETING_PORT=8174)
auth_stack() { env "${auth_env[@]}" scripts/stack.sh "$@"; }
auth_services() { env "${auth_env[@]}" scripts/services.sh "$@"; }
started_auth_stack=false started_services=false
# A second, for the tests that kill its broker.
fault_env=(ALPES_STACK_DIR="$PWD/.stack-faults" ALPES_PULSAR_PORT=6660 ALPES_PULSAR_ADMIN_PORT=8090
  ALPES_PULSAR_BOOKIE_PORT=3191 ALPES_MONGO_PORT=27027 ALPES_FERRETDB_DEBUG_PORT=8098
  ALPES_POSTGRES_PORT=5443)
fault_stack() { env "${fault_env[@]}" scripts/stack.sh "$@"; }
started_fault_stack=false
cleanup() {
  if $started_services; then auth_services down || true; fi
  if $started_auth_stack; then auth_stack down || true; fi
  if $started_fault_stack; then fault_stack down || true; fi
}
trap cleanup EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "schema compatibility (alpes schema check)"
cargo run --quiet --locked -p alpes-cli -- schema check --dir schema

step "deployment files: compose, Kubernetes manifests, OpenAPI, GKE scripts' dry runs, shellcheck"
scripts/validate-deploy.sh

step "local stack (Pulsar with token authentication and authorization, FerretDB, Postgres)"
if ! auth_stack status >/dev/null 2>&1; then
  started_auth_stack=true
fi
ALPES_PULSAR_AUTH=token auth_stack up

step "cargo test (unit and integration, against the stack)"
results="${CARGO_TARGET_DIR:-target}/test-output.txt"
mkdir -p "$(dirname "$results")"
# The two tests that kill the broker (scripts/stack.sh restart-pulsar) run on a stack of their
# own, after everything else: never against the broker of the stack above, which a platform you
# run (scripts/demo.sh) may be using.
restart_tests=(after_a_broker_restart the_broker_was_killed_in_their_middle)
(
  export "${auth_env[@]}"
  eval "$(scripts/stack.sh env)"
  cargo test --workspace --locked --no-fail-fast "$@" -- "${restart_tests[@]/#/--skip=}"
) 2>&1 | tee "$results"

step "the four services (release), each as its own Pulsar role, and the fraud simulation"
# Services already running beside this stack are used and left running; the ones started here
# are stopped.
if ! auth_services status >/dev/null 2>&1; then
  started_services=true
fi
(
  export "${auth_env[@]}"
  eval "$(scripts/stack.sh env)"
  # As the admin role: topics and schemas of alpes/events, and each role's grants.
  cargo run --quiet --locked -p alpes-cli -- bootstrap >/dev/null
  # New subscriptions start at the end of the topics: the tests above left their traffic there.
  ALPES_SUBSCRIBE_FROM=latest scripts/services.sh up
  ALPES_TRACKING_URL="http://127.0.0.1:$ALPES_TRACKING_PORT" \
    ALPES_ATTRIBUTION_URL="http://127.0.0.1:$ALPES_ATTRIBUTION_PORT" \
    ALPES_COMMISSION_URL="http://127.0.0.1:$ALPES_COMMISSION_PORT" \
    ALPES_MARKETING_URL="http://127.0.0.1:$ALPES_MARKETING_PORT" \
    scripts/simulate-fraud.sh
)
if $started_services; then
  auth_services down
  started_services=false
fi
if $started_auth_stack; then
  auth_stack down
  started_auth_stack=false
fi

step "cargo test: the broker killed and restarted under live subscriptions and sagas (a stack of their own)"
# Each on a broker never killed before: after a kill -9, a standalone broker's bookie
# registration can flap and leave no bookie for new ledgers until the next clean start (a
# Pulsar standalone matter, not the platform's), so one test's kill must not reach the next.
started_fault_stack=true
for package in alpes-bus alpes-e2e; do
  fault_stack down
  rm -rf "$PWD/.stack-faults"
  fault_stack up
  (
    export "${fault_env[@]}"
    eval "$(scripts/stack.sh env)"
    cargo test --locked --no-fail-fast -p "$package" --test broker_restart
  ) 2>&1 | tee -a "$results"
done
fault_stack down
started_fault_stack=false

step "a short chaos run: two replicas of each service, kills and restarts under load (its own stack)"
# The full run is scripts/chaos.sh (README: Replicas, and the chaos run).
scripts/chaos.sh --window 45 --kill-every 5 --seed 1
# One closing line for the whole workspace (cargo's own last line is a crate's doc-tests).
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i + 1) ~ /^passed/) passed += $i
         if ($(i + 1) ~ /^failed/) failed += $i
       }
     }
     END { printf "\nworkspace: %d passed, %d failed\n", passed, failed }' "$results"
