#!/usr/bin/env bash
# The newcomer's first command: installs what is missing, starts the local stack (real Pulsar,
# FerretDB, Postgres on 127.0.0.1), bootstraps Pulsar and runs the platform end to end.
# The stack stays up afterwards; `scripts/stack.sh down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

scripts/prerequisites.sh
step "local stack"
scripts/stack.sh up
eval "$(scripts/stack.sh env)"

step "building alpes"
cargo build --quiet --locked -p alpes-cli -p alpes-bus --examples --bins

step "bootstrapping Pulsar: tenant, namespace, topics, schemas"
cargo run --quiet --locked -p alpes-cli -- bootstrap

step "the contracts"
cargo run --quiet --locked -p alpes-cli -- events

step "an event through the real broker"
cargo run --quiet --locked -p alpes-bus --example roundtrip

cat <<'EOF'

The stack is still running: eval "$(scripts/stack.sh env)" to use it, scripts/stack.sh down to stop it.
EOF
