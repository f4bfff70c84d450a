#!/usr/bin/env bash
# The fraud simulation: purchases go through, some are reported as fraud through the
# FraudDetected topic, and every saga's timeline and final state is checked.
#
#   scripts/simulate-fraud.sh [--purchases N] [--frauds M] [--timeout SECONDS] [alpes simulate flags]
#                                              (services from scripts/services.sh up, or a cluster)
#
# The users' entry point to `alpes simulate` (one implementation, one client of the services'
# HTTP API), with this scenario's settings:
# 1. checks that the four services are ready and marketing takes the token, then creates and
#    activates a campaign (10 %, min 5.00, max 50.00 per sale, a budget that covers every sale);
# 2. N visitors from 3 partners view, click a partner's link and buy (--purchase-rate 1);
# 3. once a sale's saga is COMPLETED, M of them (chosen by the seed) are reported as fraud,
#    published to the FraudDetected topic (--fraud-via topic, as `alpes publish` does);
# 4. when every saga has settled, prints each one's timeline (`alpes saga show`), then the verdict:
#    - reported sagas are COMPENSATED with their commission REVERTED, the others COMPLETED with
#      their commission RESERVED (or CONFIRMED),
#    - the campaign budget's reserved amount is the sum of the live commissions,
#    - no step is in a saga's log twice.
# Exits 1 on any discrepancy, 2 on bad flags. Any other flag goes to `alpes simulate` as it is
# (`alpes simulate --help`): --marketing-url, --tracking-url, --attribution-url, --commission-url,
# --token, --pulsar-url, --pulsar-token, --seed, --concurrency, ...; each also reads its ALPES_*
# variable, so `eval "$(scripts/stack.sh env)"` configures it.
#
# The `alpes` binary: $ALPES_BIN, else target/debug/alpes (under $CARGO_TARGET_DIR when set),
# built with cargo first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PURCHASES=6
FRAUDS=3
TIMEOUT=90

usage() {
  cat <<EOF
Usage: scripts/simulate-fraud.sh [flags] [alpes simulate flags]

  --purchases N          sales to drive (default $PURCHASES)
  --frauds M             of which reported as fraud (default $FRAUDS)
  --timeout SECONDS      how long the sagas get to settle after the last purchase (default $TIMEOUT)

Any other flag is alpes simulate's (see alpes simulate --help), e.g. --marketing-url URL,
--token TOKEN (env ALPES_API_TOKEN: scopes read, operate, ingest), --pulsar-url URL, --seed N.

Example, against a cluster through port-forwards:
  ALPES_API_TOKEN=... scripts/simulate-fraud.sh --purchases 10 --frauds 4
EOF
}

die() { printf 'simulate-fraud: %s\n' "$1" >&2; exit "${2:-1}"; }

passed=()
while (($#)); do
  case "$1" in
    --purchases) PURCHASES="${2:?--purchases needs a number}"; shift 2 ;;
    --frauds) FRAUDS="${2:?--frauds needs a number}"; shift 2 ;;
    --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) passed+=("$1"); shift ;;
  esac
done
[[ "$PURCHASES" =~ ^[1-9][0-9]*$ ]] || die "--purchases must be a positive number" 2
if ! [[ "$FRAUDS" =~ ^[0-9]+$ ]] || ((FRAUDS > PURCHASES)); then
  die "--frauds must be 0 to --purchases" 2
fi
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds" 2

if [[ -n "${ALPES_BIN:-}" ]]; then
  [[ -x "$ALPES_BIN" ]] || die "ALPES_BIN=$ALPES_BIN is not an executable"
  ALPES="$ALPES_BIN"
else
  # Always through cargo (a no-op when up to date): a binary left by an older build may not
  # speak what this checkout's services expect.
  printf 'building the alpes CLI (cargo build -p alpes-cli)\n' >&2
  (cd "$ROOT" && cargo build --quiet --locked -p alpes-cli) >&2 || die "cargo build -p alpes-cli failed"
  ALPES="$TARGET/debug/alpes"
fi

exec "$ALPES" simulate \
  --visitors "$PURCHASES" --purchase-rate 1 --frauds "$FRAUDS" --partners 3 \
  --fraud-via topic --fraud-when completed --timeout "${TIMEOUT}s" --timelines \
  ${passed[@]+"${passed[@]}"}
