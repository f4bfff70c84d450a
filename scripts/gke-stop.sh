#!/usr/bin/env bash
# Scales alpes on GKE to zero, in dependency order: the four services first (tracking, the
# ingestion, before the rest), then MongoDB and Postgres, then Pulsar (proxy, broker, bookie,
# ZooKeeper). Volumes stay; scripts/gke-start.sh brings everything back.
#
#   scripts/gke-stop.sh --project my-project --region europe-west1 --cluster alpes
#   scripts/gke-stop.sh --dry-run
set -euo pipefail

SCRIPT=gke-stop
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

DO_STORES=1
DO_PULSAR=1
NODE_POOL="${GKE_NODE_POOL:-}"
TIMEOUT="${ROLLOUT_TIMEOUT:-5m}"

usage() {
  cat <<EOF
Usage: scripts/gke-stop.sh [options]

Scales to 0, waiting for each step's pods to be gone before the next:
  1. Deployments tracking, attribution, commission, marketing (SIGTERM: they finish in-hand work
     and flush their outboxes)
  2. StatefulSets mongo, postgres (when k8s/overlays/gke runs them in the cluster)
  3. Pulsar StatefulSets: toolset, proxy, broker, bookie, zookeeper
  4. with --node-pool: the node pool, to 0 nodes (nothing left to pay for but disks)

Options (or environment):
  --services-only         stop the services only (stores and Pulsar keep running)
  --skip-pulsar           leave Pulsar running
  --node-pool NAME        also resize this node pool to 0 nodes (GKE_NODE_POOL)
  --timeout D             wait per step (ROLLOUT_TIMEOUT; default 5m)
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
    --timeout) TIMEOUT="$(value_of "$@")"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

resolve_project
need gcloud kubectl
[[ "$DRY_RUN" == 1 ]] && log "dry run: printing the commands, running none"

credentials

log "1/4 services"
for service in "${SERVICES[@]}"; do
  run kubectl --namespace "$NAMESPACE" scale "deployment/$service" --replicas=0
done
run kubectl --namespace "$NAMESPACE" wait --for=delete pod -l app.kubernetes.io/component=service --timeout="$TIMEOUT"

if [[ "$DO_STORES" == 1 ]] && overlay_has_stores; then
  log "2/4 stores"
  for store in "${STORES[@]}"; do
    run kubectl --namespace "$NAMESPACE" scale "statefulset/$store" --replicas=0
  done
  run kubectl --namespace "$NAMESPACE" wait --for=delete pod -l app.kubernetes.io/component=store --timeout="$TIMEOUT"
else
  log "2/4 stores: skipped"
fi

if [[ "$DO_PULSAR" == 1 ]]; then
  log "3/4 Pulsar"
  for ((i = ${#PULSAR_COMPONENTS[@]} - 1; i >= 0; i--)); do
    component="${PULSAR_COMPONENTS[$i]}"
    run kubectl --namespace "$PULSAR_NAMESPACE" scale "statefulset/$(pulsar_sts "$component")" --replicas=0
    run kubectl --namespace "$PULSAR_NAMESPACE" wait --for=delete pod \
      -l "release=$PULSAR_RELEASE,component=$component" --timeout="$TIMEOUT"
  done
else
  log "3/4 Pulsar: skipped"
fi

if [[ -n "$NODE_POOL" ]]; then
  log "4/4 node pool $NODE_POOL to 0 nodes"
  run gcloud container clusters resize "$CLUSTER" --node-pool "$NODE_POOL" --num-nodes 0 \
    --location "$LOCATION" --project "$PROJECT" --quiet
else
  log "4/4 node pool: left as it is (--node-pool NAME resizes it to 0)"
fi
log "stopped"
