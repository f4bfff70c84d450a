#!/usr/bin/env bash
# The fraud simulation: purchases go through, some are reported as fraud through the
# FraudDetected topic, and every saga's timeline and final state is checked.
#
#   scripts/simulate-fraud.sh [flags]          (services from scripts/services.sh up, or a cluster)
#
# 1. creates and activates a campaign (10 %, min 5.00, max 50.00 EUR, budget 1,000.00 EUR)
# 2. drives --purchases sales (a partner's click, then a purchase) and waits until each saga is COMPLETED
# 3. reports --frauds of them as fraud with `alpes publish FraudDetected -` (straight to Pulsar)
# 4. waits, prints each saga's timeline (`alpes saga show`), then the verdict:
#    - reported sagas are COMPENSATED and their commission REVERTED,
#    - the others are COMPLETED with their commission RESERVED (or CONFIRMED),
#    - the campaign budget's reserved amount is the sum of the non-fraud commissions.
# Exits 1 on any discrepancy, 2 on bad flags.
#
# The `alpes` binary: $ALPES_BIN, else target/debug/alpes (under $CARGO_TARGET_DIR when set),
# built with cargo first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

MARKETING="${ALPES_MARKETING_URL:-http://127.0.0.1:8084}"
TRACKING="${ALPES_TRACKING_URL:-http://127.0.0.1:8081}"
ATTRIBUTION="${ALPES_ATTRIBUTION_URL:-http://127.0.0.1:8082}"
COMMISSION="${ALPES_COMMISSION_URL:-http://127.0.0.1:8083}"
TOKEN="${ALPES_API_TOKEN:-}"
PULSAR="${ALPES_PULSAR_URL:-pulsar://127.0.0.1:6650}"
PULSAR_ADMIN="${ALPES_PULSAR_ADMIN_URL:-http://127.0.0.1:8080}"
PURCHASES=6
FRAUDS=3
TIMEOUT=90

usage() {
  cat <<EOF
Usage: scripts/simulate-fraud.sh [flags]

  --purchases N          sales to drive (default $PURCHASES)
  --frauds M             of which reported as fraud (default $FRAUDS)
  --timeout SECONDS      how long each wait may take (default $TIMEOUT)
  --marketing-url URL    env ALPES_MARKETING_URL   (default http://127.0.0.1:8084)
  --tracking-url URL     env ALPES_TRACKING_URL    (default http://127.0.0.1:8081)
  --attribution-url URL  env ALPES_ATTRIBUTION_URL (default http://127.0.0.1:8082)
  --commission-url URL   env ALPES_COMMISSION_URL  (default http://127.0.0.1:8083)
  --token TOKEN          env ALPES_API_TOKEN: the services' API token (scopes read, operate, ingest)
  --pulsar-url URL       env ALPES_PULSAR_URL      (default pulsar://127.0.0.1:6650)
  --pulsar-admin-url URL env ALPES_PULSAR_ADMIN_URL (default http://127.0.0.1:8080)

Example, against a cluster through port-forwards:
  ALPES_API_TOKEN=... scripts/simulate-fraud.sh --purchases 10 --frauds 4
EOF
}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'simulate-fraud: %s\n' "$1" >&2; exit "${2:-1}"; }

while (($#)); do
  case "$1" in
    --purchases) PURCHASES="${2:?--purchases needs a number}"; shift 2 ;;
    --frauds) FRAUDS="${2:?--frauds needs a number}"; shift 2 ;;
    --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
    --marketing-url) MARKETING="${2:?}"; shift 2 ;;
    --tracking-url) TRACKING="${2:?}"; shift 2 ;;
    --attribution-url) ATTRIBUTION="${2:?}"; shift 2 ;;
    --commission-url) COMMISSION="${2:?}"; shift 2 ;;
    --token) TOKEN="${2:?}"; shift 2 ;;
    --pulsar-url) PULSAR="${2:?}"; shift 2 ;;
    --pulsar-admin-url) PULSAR_ADMIN="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown flag: $1" 2 ;;
  esac
done
[[ "$PURCHASES" =~ ^[1-9][0-9]*$ ]] || die "--purchases must be a positive number" 2
if ! [[ "$FRAUDS" =~ ^[0-9]+$ ]] || ((FRAUDS > PURCHASES)); then
  die "--frauds must be 0 to --purchases" 2
fi
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds" 2

# What `alpes` reads: the same variables, so flags given here reach it too.
export ALPES_MARKETING_URL="$MARKETING" ALPES_API_TOKEN="$TOKEN"
export ALPES_PULSAR_URL="$PULSAR" ALPES_PULSAR_ADMIN_URL="$PULSAR_ADMIN"

alpes_binary() {
  if [[ -n "${ALPES_BIN:-}" ]]; then
    [[ -x "$ALPES_BIN" ]] || die "ALPES_BIN=$ALPES_BIN is not an executable"
    printf '%s\n' "$ALPES_BIN"
    return
  fi
  # Always through cargo (a no-op when up to date): a binary left by an older build may not
  # speak what this checkout's services expect.
  log "building the alpes CLI (cargo build -p alpes-cli)"
  (cd "$ROOT" && cargo build --quiet --locked -p alpes-cli) >&2 || die "cargo build -p alpes-cli failed"
  printf '%s\n' "$TARGET/debug/alpes"
}
ALPES="$(alpes_binary)"

# json EXPR: evaluates a Python expression over the JSON document on stdin, bound to `d`.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); v=$1; print('' if v is None else v)"; }
auth=()
[[ -n "$TOKEN" ]] && auth=(-H "authorization: Bearer $TOKEN")
post() { curl -sS --fail-with-body --max-time 15 "${auth[@]}" -H 'content-type: application/json' -d "$2" "$1"; }
saga_status() {
  curl -sS --max-time 10 "${auth[@]}" "$MARKETING/sagas/$1" | json "d.get('status', '')" 2>/dev/null || true
}

for service in "marketing $MARKETING" "tracking $TRACKING" "attribution $ATTRIBUTION" "commission $COMMISSION"; do
  curl -sf --max-time 5 "${service#* }/readyz" >/dev/null \
    || die "${service% *} is not ready at ${service#* }/readyz (scripts/services.sh up, or pass --${service% *}-url)"
done

code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${auth[@]}" "$MARKETING/sagas/stats" || true)"
case "$code" in
  200) ;;
  401 | 403) die "the saga log refused the API token ($code): pass --token or set ALPES_API_TOKEN to a token with scopes read, operate and ingest" ;;
  *) die "marketing does not serve the saga log: GET $MARKETING/sagas/stats answered ${code:-nothing}" ;;
esac

run="$(date +%s)-$RANDOM"
echo "1. marketing: campaign paying 10 % (min 5.00, max 50.00 EUR) out of a 1,000.00 EUR budget"
campaign="$(post "$MARKETING/campaigns" "{\"name\":\"Fraud simulation $run\",
  \"budget\":{\"amount_minor\":100000,\"currency\":\"EUR\"},
  \"terms\":{\"kind\":\"PERCENTAGE\",\"percentage_bps\":1000,\"minimum_minor\":500,\"maximum_minor\":5000}}" \
  | json "d['campaign_id']")"
post "$MARKETING/campaigns/$campaign/activate" '{"reason":"fraud simulation"}' >/dev/null
for ((i = 0; i < TIMEOUT * 5; i++)); do
  a="$(curl -sf --max-time 5 "${auth[@]}" "$ATTRIBUTION/campaigns/$campaign" | json "d['status']" 2>/dev/null || true)"
  c="$(curl -sf --max-time 5 "${auth[@]}" "$COMMISSION/budgets/$campaign" | json "d['status']" 2>/dev/null || true)"
  [[ "$a" == ACTIVE && "$c" == ACTIVE ]] && break
  sleep 0.2
done
[[ "$a" == ACTIVE && "$c" == ACTIVE ]] \
  || die "campaign $campaign is not ACTIVE in attribution ($a) and commission ($c) after ${TIMEOUT} s"
echo "   campaign $campaign ACTIVE in attribution and commission"

AMOUNTS=(12000 8000 25000 4500 9900 31000 15000 6000 18000 7200)
sagas=()
echo "2. tracking: $PURCHASES visitors click a partner's link and buy"
for ((i = 0; i < PURCHASES; i++)); do
  visitor="fraudsim-$run-$i" partner="partner-$((i % 3 + 1))" amount="${AMOUNTS[i % ${#AMOUNTS[@]}]}"
  tracking="\"tracking\":{\"campaign_id\":\"$campaign\",\"partner_id\":\"$partner\",\"medium\":\"affiliate\"}"
  post "$TRACKING/interactions" "{\"kind\":\"CLICK\",\"visitor\":{\"anonymous_id\":\"$visitor\",\"user_agent\":\"Firefox\"},
    $tracking,\"target\":{\"url\":\"https://shop.example/p/$i\"}}" >/dev/null
  saga="$(post "$TRACKING/interactions" "{\"kind\":\"PURCHASE\",\"visitor\":{\"anonymous_id\":\"$visitor\",\"user_agent\":\"Firefox\"},
    $tracking,\"target\":{\"url\":\"https://shop.example/checkout\"},
    \"purchase\":{\"order_id\":\"order-$run-$i\",\"amount\":{\"amount_minor\":$amount,\"currency\":\"EUR\"}}}" \
    | json "d['saga_id']")"
  sagas+=("$saga")
  printf '   saga %s: %s via %s, %d.%02d EUR\n' "$saga" "$visitor" "$partner" $((amount / 100)) $((amount % 100))
done

# Polls the saga log until every saga has its expected status; false after --timeout seconds.
declare -A status expected
wait_for_expected() {
  local deadline=$((SECONDS + TIMEOUT)) saga pending
  while :; do
    pending=0
    for saga in "${sagas[@]}"; do
      if [[ "${status[$saga]:-}" != "${expected[$saga]}" ]]; then
        status[$saga]="$(saga_status "$saga")"
        [[ "${status[$saga]}" == "${expected[$saga]}" ]] || pending=$((pending + 1))
      fi
    done
    ((pending == 0)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

echo "3. the forward sagas run (tracking → attribution → commission → saga log)"
for saga in "${sagas[@]}"; do expected[$saga]=COMPLETED; done
wait_for_expected || log "   not every saga COMPLETED within ${TIMEOUT} s; reporting fraud anyway"
for saga in "${sagas[@]}"; do echo "   saga $saga: ${status[$saga]:-unknown to the saga log}"; done

# Fraud on every other sale first (1st, 3rd, 5th, ...), then on the rest.
declare -A fraud
order=()
for ((i = 0; i < PURCHASES; i += 2)); do order+=("$i"); done
for ((i = 1; i < PURCHASES; i += 2)); do order+=("$i"); done
for i in "${order[@]:0:FRAUDS}"; do fraud[${sagas[i]}]=1; done

echo "4. fraud reported on $FRAUDS sale(s) through the FraudDetected topic (alpes publish)"
for saga in "${sagas[@]}"; do
  [[ -n "${fraud[$saga]:-}" ]] || continue
  document="{\"metadata\":{\"saga_id\":\"$saga\"},\"reason\":\"chargeback: card reported stolen\",
    \"reporter\":\"simulate-fraud.sh\",\"score\":95}"
  result="$(printf '%s' "$document" | "$ALPES" publish FraudDetected - --json)" \
    || die "alpes publish FraudDetected failed for saga $saga"
  echo "   saga $saga: FraudDetected $(json "d['event_id']" <<<"$result") → message $(json "d['message_id']" <<<"$result")"
  expected[$saga]=COMPENSATED
done

echo "5. compensation runs in reverse (commission → attribution → tracking → saga log)"
wait_for_expected || log "   not every saga reached its expected status within ${TIMEOUT} s"

echo
echo "=== timelines"
for saga in "${sagas[@]}"; do
  echo
  echo "--- saga $saga ($([[ -n "${fraud[$saga]:-}" ]] && echo "reported as fraud" || echo "a sale"))"
  "$ALPES" saga show "$saga" || echo "(alpes saga show failed)"
done

echo
echo "=== verdict"
failures=0
check() { # check WHAT EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then
    printf '  ok        %-60s %s\n' "$1" "$3"
  else
    printf '  MISMATCH  %-60s expected %s, got %s\n' "$1" "$2" "${3:-nothing}"
    failures=$((failures + 1))
  fi
}
reserved_sum=0
for saga in "${sagas[@]}"; do
  check "saga $saga" "${expected[$saga]}" "$(saga_status "$saga")"
  commission="$(curl -sS --max-time 10 "${auth[@]}" "$COMMISSION/commissions/commission-$saga" || true)"
  commission_status="$(json "d.get('status')" <<<"$commission" 2>/dev/null || true)"
  if [[ -n "${fraud[$saga]:-}" ]]; then
    check "  commission-$saga" REVERTED "$commission_status"
  else
    # A confirmed commission is still reserved against the budget.
    case "$commission_status" in
      CONFIRMED) check "  commission-$saga" CONFIRMED "$commission_status" ;;
      *) check "  commission-$saga" RESERVED "$commission_status" ;;
    esac
    amount="$(json "(d.get('amount') or {}).get('amount_minor', 0)" <<<"$commission" 2>/dev/null || echo 0)"
    reserved_sum=$((reserved_sum + ${amount:-0}))
  fi
done
reserved="$(curl -sS --max-time 10 "${auth[@]}" "$COMMISSION/budgets/$campaign" | json "d['reserved']['amount_minor']" 2>/dev/null || true)"
check "budget $campaign: reserved = sum of the non-fraud commissions" "$reserved_sum" "$reserved"

if ((failures > 0)); then
  echo "FAILED: $failures discrepanc$( ((failures == 1)) && echo y || echo ies) (service logs: .stack/logs/*.log)"
  exit 1
fi
echo "ok: $FRAUDS fraudulent sale(s) compensated, $((PURCHASES - FRAUDS)) completed, budget consistent"
