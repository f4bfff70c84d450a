#!/usr/bin/env bash
# The forward saga against running services: a campaign, a partner's click, a purchase, and the
# commission reserved for it. Prints each step; exits non-zero if the saga does not complete.
#
#   scripts/forward-demo.sh        (services from scripts/services.sh up)
set -euo pipefail

TRACKING="${ALPES_TRACKING_URL:-http://127.0.0.1:8081}"
ATTRIBUTION="${ALPES_ATTRIBUTION_URL:-http://127.0.0.1:8082}"
COMMISSION="${ALPES_COMMISSION_URL:-http://127.0.0.1:8083}"
MARKETING="${ALPES_MARKETING_URL:-http://127.0.0.1:8084}"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# The services' API token (every scope): `eval "$(scripts/stack.sh env)"` sets it.
auth=(-H "authorization: Bearer ${ALPES_API_TOKEN:?set ALPES_API_TOKEN: eval \"\$(scripts/stack.sh env)\"}")
post() { curl -sS --fail-with-body "${auth[@]}" -H 'content-type: application/json' -d "$2" "$1"; }

echo "1. marketing: a campaign paying 10 % (min 5.00, max 50.00 EUR) out of a 1,000.00 EUR budget"
campaign="$(post "$MARKETING/campaigns" '{"name":"Demo","budget":{"amount_minor":100000,"currency":"EUR"},
  "terms":{"kind":"PERCENTAGE","percentage_bps":1000,"minimum_minor":500,"maximum_minor":5000}}' | json "['campaign_id']")"
post "$MARKETING/campaigns/$campaign/activate" '{}' >/dev/null
echo "   campaign $campaign ACTIVE"
sleep 1 # let attribution and commission hear of the campaign before the first sale

visitor="demo-$RANDOM$RANDOM"
echo "2. tracking: visitor $visitor clicks partner-42's link, then buys for 120.00 EUR"
post "$TRACKING/interactions" "{\"kind\":\"CLICK\",\"visitor\":{\"anonymous_id\":\"$visitor\"},
  \"tracking\":{\"campaign_id\":\"$campaign\",\"partner_id\":\"partner-42\",\"medium\":\"affiliate\"},
  \"target\":{\"url\":\"https://shop.example/p/1\"}}" >/dev/null
saga="$(post "$TRACKING/interactions" "{\"kind\":\"PURCHASE\",\"visitor\":{\"anonymous_id\":\"$visitor\",\"user_agent\":\"Firefox\"},
  \"tracking\":{\"campaign_id\":\"$campaign\",\"partner_id\":\"partner-42\",\"medium\":\"affiliate\"},
  \"target\":{\"url\":\"https://shop.example/checkout\"},
  \"purchase\":{\"order_id\":\"order-$RANDOM\",\"amount\":{\"amount_minor\":12000,\"currency\":\"EUR\"}}}" | json "['saga_id']")"
echo "   saga $saga started"

echo "3. attribution and commission react (choreography: nobody commands anybody)"
for _ in $(seq 1 60); do
  budget="$(curl -sf "${auth[@]}" "$COMMISSION/budgets/$campaign" || true)"
  if [[ -n "$budget" ]] && [[ "$(echo "$budget" | json "['reserved']['amount_minor']")" != "0" ]]; then
    echo "   attribution: $(curl -sf "${auth[@]}" "$ATTRIBUTION/attributions/$saga")"
    echo "   budget:      $budget"
    echo "forward saga completed: 12.00 EUR commission reserved for partner-42"
    exit 0
  fi
  sleep 0.5
done
echo "the saga did not reach CommissionReserved within 30 s; see .stack/logs/*.log" >&2
exit 1
