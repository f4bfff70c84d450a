#!/usr/bin/env bash
# The newcomer's first command: installs what is missing, starts the local stack (real Pulsar,
# FerretDB, Postgres on 127.0.0.1), the four services, runs a sale through the forward saga, then
# the fraud simulation (purchases, fraud on some, compensation checked through every service).
# Everything stays up afterwards; `scripts/services.sh down && scripts/stack.sh down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

scripts/prerequisites.sh
step "local stack"
scripts/stack.sh up
eval "$(scripts/stack.sh env)"

step "bootstrapping Pulsar: tenant, namespace, topics, schemas"
cargo run --quiet --locked -p alpes-cli -- bootstrap

step "the contracts"
cargo run --quiet --locked -p alpes-cli -- events

step "the four services"
scripts/services.sh up

step "a sale through the forward saga"
scripts/forward-demo.sh

step "the fraud simulation: sales, fraud reported on some, compensation checked end to end"
scripts/simulate-fraud.sh

cat <<'DONE'

Still running: the stack (scripts/stack.sh status) and the services (scripts/services.sh status).
Stop them with: scripts/services.sh down && scripts/stack.sh down
DONE
