# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings below are read by the scripts that source this file
# Shared by scripts/deploy-gke.sh, scripts/gke-start.sh and scripts/gke-stop.sh (sourced, not run).
#
# Every command that touches Google Cloud or the cluster goes through `run`, which prints it as
# `+ cmd args...` and, under --dry-run, executes nothing. Settings come from flags or from the
# environment: GKE_PROJECT, GKE_REGION, GKE_LOCATION, GKE_CLUSTER, K8S_NAMESPACE,
# PULSAR_NAMESPACE, PULSAR_RELEASE.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="${SCRIPT:-$(basename "$0" .sh)}"

DRY_RUN=0
PROJECT="${GKE_PROJECT:-}"
REGION="${GKE_REGION:-europe-west1}"
LOCATION="${GKE_LOCATION:-}"
CLUSTER="${GKE_CLUSTER:-alpes}"
NAMESPACE="${K8S_NAMESPACE:-alpes}"
PULSAR_NAMESPACE="${PULSAR_NAMESPACE:-pulsar}"
PULSAR_RELEASE="${PULSAR_RELEASE:-pulsar}"
GET_CREDENTIALS=1

# The services in stop order (ingestion first); started in the reverse order.
SERVICES=(tracking attribution commission marketing)
# The in-cluster stores (k8s/components/in-cluster-stores), when the overlay uses them.
STORES=(mongo postgres)
# Pulsar's StatefulSets (chart components) in start order; stopped in the reverse order.
PULSAR_COMPONENTS=(zookeeper bookie broker proxy toolset)

log() { printf '[%s] %s\n' "$SCRIPT" "$*" >&2; }
die() {
  printf '[%s] FAILED: %s\n' "$SCRIPT" "$*" >&2
  exit 1
}

# run CMD [ARGS...]: prints the command, then runs it unless this is a dry run.
run() {
  printf '+'
  local arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[][A-Za-z0-9_./:=@%+,{}~-]+$ ]]; then
      printf ' %s' "$arg"
    else
      printf " '%s'" "${arg//\'/\'\\\'\'}"
    fi
  done
  printf '\n'
  [[ "$DRY_RUN" == 1 ]] && return 0
  "$@"
}

# need TOOL...: the tools a real run calls (a dry run needs none of them).
need() {
  [[ "$DRY_RUN" == 1 ]] && return 0
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (k8s/README.md lists what a deploy needs)"
  done
}

# value_of FLAG ARGS...: the value after FLAG, or dies.
value_of() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see --help)"
  printf '%s' "$2"
}

# common_flag ARGS...: handles a flag every script takes and sets SHIFT to the number of
# arguments it consumed (0 when the first argument is not a common flag).
common_flag() {
  SHIFT=1
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --project) PROJECT="$(value_of "$@")"; SHIFT=2 ;;
    --project=*) PROJECT="${1#*=}" ;;
    --region) REGION="$(value_of "$@")"; SHIFT=2 ;;
    --region=*) REGION="${1#*=}" ;;
    --location) LOCATION="$(value_of "$@")"; SHIFT=2 ;;
    --location=*) LOCATION="${1#*=}" ;;
    --cluster) CLUSTER="$(value_of "$@")"; SHIFT=2 ;;
    --cluster=*) CLUSTER="${1#*=}" ;;
    --namespace) NAMESPACE="$(value_of "$@")"; SHIFT=2 ;;
    --namespace=*) NAMESPACE="${1#*=}" ;;
    --pulsar-namespace) PULSAR_NAMESPACE="$(value_of "$@")"; SHIFT=2 ;;
    --pulsar-namespace=*) PULSAR_NAMESPACE="${1#*=}" ;;
    --skip-credentials) GET_CREDENTIALS=0 ;;
    *) SHIFT=0 ;;
  esac
}

COMMON_HELP="Common options (or environment):
  --project ID            Google Cloud project (GKE_PROJECT; default: gcloud's configured project)
  --region REGION         region of the registry, and of the cluster unless --location
                          (GKE_REGION; default europe-west1)
  --location LOCATION     the cluster's region or zone (GKE_LOCATION; default: --region)
  --cluster NAME          GKE cluster (GKE_CLUSTER; default alpes)
  --namespace NS          namespace of the alpes services (K8S_NAMESPACE; default alpes)
  --pulsar-namespace NS   namespace of the Pulsar Helm release (PULSAR_NAMESPACE; default pulsar)
  --skip-credentials      use the current kubectl context instead of
                          'gcloud container clusters get-credentials'
  --dry-run               print every command, run none (needs no gcloud, kubectl, helm or docker)
  -h, --help              this text"

# resolve_project: the cluster's location (default: the region) and the project from flags/environment, else gcloud's default; a dry run without
# either prints the placeholder PROJECT.
resolve_project() {
  LOCATION="${LOCATION:-$REGION}"
  if [[ -z "$PROJECT" ]] && command -v gcloud >/dev/null 2>&1; then
    PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
  fi
  if [[ -z "$PROJECT" ]]; then
    [[ "$DRY_RUN" == 1 ]] || die "no project: pass --project or set GKE_PROJECT"
    PROJECT="PROJECT"
  fi
}

# credentials: point kubectl at the cluster.
credentials() {
  [[ "$GET_CREDENTIALS" == 1 ]] || return 0
  run gcloud container clusters get-credentials "$CLUSTER" --location "$LOCATION" --project "$PROJECT"
}

# overlay_has_stores: whether k8s/overlays/gke runs MongoDB and Postgres in the cluster.
overlay_has_stores() {
  grep -Eq '^[[:space:]]*-[[:space:]]*\.\./\.\./components/in-cluster-stores' \
    "$ROOT/k8s/overlays/gke/kustomization.yaml"
}

# pulsar_sts COMPONENT: the StatefulSet name the Helm chart gives a component.
pulsar_sts() { printf '%s-%s' "$PULSAR_RELEASE" "$1"; }
