#!/usr/bin/env bash
# Brings alpes on GKE back after scripts/gke-stop.sh, in dependency order: Pulsar (ZooKeeper,
# bookie, broker, proxy), then MongoDB and Postgres, then the four services, each step waiting
# for the previous one to be ready.
#
#   scripts/gke-start.sh --project my-project --region europe-west1 --cluster alpes
#   scripts/gke-start.sh --dry-run
set -euo pipefail

SCRIPT=gke-start
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

DO_STORES=1
DO_PULSAR=1
NODE_POOL="${GKE_NODE_POOL:-}"
NODES="${GKE_NODES:-1}"
TIMEOUT="${ROLLOUT_TIMEOUT:-10m}"

usage() {
  cat <<EOF
Usage: scripts/gke-start.sh [options]

Scales back up, waiting for each step to be ready before the next:
  1. with --node-pool: the node pool, to --nodes nodes
  2. Pulsar StatefulSets: zookeeper, bookie, broker, proxy, toolset (1 replica each)
  3. StatefulSets mongo, postgres (when k8s/overlays/gke runs them in the cluster)
  4. Deployments marketing, commission, attribution, tracking (1 replica each; their
     HorizontalPodAutoscalers then raise them to their minimum)

Options (or environment):
  --services-only         start the services only
  --skip-pulsar           Pulsar is running already
  --node-pool NAME        first resize this node pool (GKE_NODE_POOL)
  --nodes N               nodes for --node-pool, per zone of a regional cluster
                          (GKE_NODES; default 1)
  --timeout D             wait per step (ROLLOUT_TIMEOUT; default 10m)
$COMMON_HELP
EOF
}

while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if [[ "$SHIFT" -gt 0 ]]; then shift "$SHIFT"; continue; fi
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --services-only) DO_STORES=0; DO_PULSAR=0; shift ;;
    --skip-pulsar) DO_PULSAR=0; shift ;;
    --node-pool) NODE_POOL="$(value_of "$@")"; shift 2 ;;
    --node-pool=*) NODE_POOL="${1#*=}"; shift ;;
    --nodes) NODES="$(value_of "$@")"; shift 2 ;;
    --nodes=*) NODES="${1#*=}"; shift ;;
    --timeout) TIMEOUT="$(value_of "$@")"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[[ "$NODES" =~ ^[0-9]+$ ]] || die "--nodes must be a number, not $NODES"

resolve_project
need gcloud kubectl
[[ "$DRY_RUN" == 1 ]] && log "dry run: printing the commands, running none"

if [[ -n "$NODE_POOL" ]]; then
  log "1/4 node pool $NODE_POOL to $NODES node(s)"
  run gcloud container clusters resize "$CLUSTER" --node-pool "$NODE_POOL" --num-nodes "$NODES" \
    --location "$LOCATION" --project "$PROJECT" --quiet
else
  log "1/4 node pool: left as it is"
fi

credentials

if [[ "$DO_PULSAR" == 1 ]]; then
  log "2/4 Pulsar"
  for component in "${PULSAR_COMPONENTS[@]}"; do
    run kubectl --namespace "$PULSAR_NAMESPACE" scale "statefulset/$(pulsar_sts "$component")" --replicas=1
    run kubectl --namespace "$PULSAR_NAMESPACE" rollout status "statefulset/$(pulsar_sts "$component")" --timeout="$TIMEOUT"
  done
else
  log "2/4 Pulsar: skipped"
fi

if [[ "$DO_STORES" == 1 ]] && overlay_has_stores; then
  log "3/4 stores"
  for store in "${STORES[@]}"; do
    run kubectl --namespace "$NAMESPACE" scale "statefulset/$store" --replicas=1
  done
  for store in "${STORES[@]}"; do
    run kubectl --namespace "$NAMESPACE" rollout status "statefulset/$store" --timeout="$TIMEOUT"
  done
else
  log "3/4 stores: skipped"
fi

log "4/4 services"
for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
  run kubectl --namespace "$NAMESPACE" scale "deployment/${SERVICES[$i]}" --replicas=1
done
for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
  run kubectl --namespace "$NAMESPACE" rollout status "deployment/${SERVICES[$i]}" --timeout="$TIMEOUT"
done
log "started"
