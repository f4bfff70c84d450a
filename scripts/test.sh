#!/usr/bin/env bash
# The test command: everything CI checks, against the real local stack.
#
#   scripts/test.sh            # format, lints, schema compatibility, all tests
#
# Starts the local stack if it is not running (and stops it again afterwards, leaving a stack
# you had started yourself alone). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

scripts/prerequisites.sh

started_stack=false
if ! scripts/stack.sh status >/dev/null 2>&1; then
  started_stack=true
fi
step "local stack (Pulsar, FerretDB, Postgres)"
scripts/stack.sh up
started_services=false
# A second stack, with ports of its own, for the tests that kill its broker.
fault_env=(ALPES_STACK_DIR="$PWD/.stack-faults" ALPES_PULSAR_PORT=6660 ALPES_PULSAR_ADMIN_PORT=8090
  ALPES_PULSAR_BOOKIE_PORT=3191 ALPES_MONGO_PORT=27027 ALPES_FERRETDB_DEBUG_PORT=8098
  ALPES_POSTGRES_PORT=5443)
fault_stack() { env "${fault_env[@]}" scripts/stack.sh "$@"; }
started_fault_stack=false
# A third, whose broker requires tokens and enforces each role's permissions
# (ALPES_PULSAR_AUTH=token), for crates/bus/tests/auth.rs.
auth_env=(ALPES_STACK_DIR="$PWD/.stack-auth" ALPES_PULSAR_PORT=6670 ALPES_PULSAR_ADMIN_PORT=8070
  ALPES_PULSAR_BOOKIE_PORT=3171 ALPES_MONGO_PORT=27037 ALPES_FERRETDB_DEBUG_PORT=8108
  ALPES_POSTGRES_PORT=5453)
auth_stack() { env "${auth_env[@]}" scripts/stack.sh "$@"; }
started_auth_stack=false
cleanup() {
  if $started_auth_stack; then auth_stack down || true; fi
  if $started_fault_stack; then fault_stack down || true; fi
  if $started_services; then scripts/services.sh down || true; fi
  if $started_stack; then
    step "stopping the local stack"
    scripts/stack.sh down
  fi
}
trap cleanup EXIT
eval "$(scripts/stack.sh env)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "schema compatibility (alpes schema check)"
cargo run --quiet --locked -p alpes-cli -- schema check --dir schema

step "deployment files: compose, Kubernetes manifests, OpenAPI, GKE scripts' dry runs, shellcheck"
scripts/validate-deploy.sh

step "local stack with Pulsar token authentication and authorization (for crates/bus/tests/auth.rs)"
if ! auth_stack status >/dev/null 2>&1; then
  started_auth_stack=true
fi
ALPES_PULSAR_AUTH=token auth_stack up
# Only what auth.rs reads: evaluating that stack's `env` here would point everything at it.
auth_setting() { auth_stack env | sed -n "s/^export $1=//p"; }
ALPES_AUTH_PULSAR_URL="$(auth_setting ALPES_PULSAR_URL)"
ALPES_AUTH_PULSAR_ADMIN_URL="$(auth_setting ALPES_PULSAR_ADMIN_URL)"
ALPES_AUTH_TOKEN_DIR="$(auth_setting ALPES_PULSAR_TOKEN_DIR)"
export ALPES_AUTH_PULSAR_URL ALPES_AUTH_PULSAR_ADMIN_URL ALPES_AUTH_TOKEN_DIR

step "cargo test (unit and integration, against the stack)"
results="${CARGO_TARGET_DIR:-target}/test-output.txt"
mkdir -p "$(dirname "$results")"
# The two tests that kill the broker (scripts/stack.sh restart-pulsar) run on a stack of their
# own, after everything else: never against the broker of the stack above, which a platform you
# run (scripts/demo.sh) may be using.
restart_tests=(after_a_broker_restart the_broker_was_killed_in_their_middle)
cargo test --workspace --locked --no-fail-fast "$@" -- "${restart_tests[@]/#/--skip=}" 2>&1 | tee "$results"
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
# One closing line for the whole workspace (cargo's own last line is a crate's doc-tests).
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i + 1) ~ /^passed/) passed += $i
         if ($(i + 1) ~ /^failed/) failed += $i
       }
     }
     END { printf "\nworkspace: %d passed, %d failed\n", passed, failed }' "$results"

step "the four services (release) and the fraud simulation against them"
# Services you already run are used and left running; the ones started here are stopped.
if ! scripts/services.sh status >/dev/null 2>&1; then
  started_services=true
fi
# New subscriptions start at the end of the topics: the tests above left their traffic there.
ALPES_SUBSCRIBE_FROM=latest scripts/services.sh up
scripts/simulate-fraud.sh
