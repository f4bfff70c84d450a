#!/usr/bin/env bash
# Builds and pushes the alpes images, installs Pulsar (Helm), applies k8s/overlays/gke, runs the
# bootstrap Job, waits for every rollout and smoke-checks marketing's /sagas/stats.
#
#   scripts/deploy-gke.sh --project my-project --region europe-west1 --cluster alpes
#   scripts/deploy-gke.sh --dry-run            # prints every command, runs none
#
# The namespace and its secrets must exist first (k8s/README.md, "Secrets").
set -euo pipefail

SCRIPT=deploy-gke
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

REPOSITORY="${AR_REPOSITORY:-alpes}"
TAG="${IMAGE_TAG:-}"
BUILDER="${IMAGE_BUILDER:-cloudbuild}"
PULSAR_CHART_VERSION="${PULSAR_CHART_VERSION:-4.6.0}"
PULSAR_CHART_REPO="${PULSAR_CHART_REPO:-https://pulsar.apache.org/charts}"
DO_BUILD=1
DO_PULSAR=1
DO_SMOKE=1
RENDER=0
SMOKE_PORT="${SMOKE_PORT:-18084}"
TIMEOUT="${ROLLOUT_TIMEOUT:-10m}"
IMAGES=(tracking attribution commission marketing cli)

usage() {
  cat <<EOF
Usage: scripts/deploy-gke.sh [options]

Builds the five images (Dockerfile targets tracking, attribution, commission, marketing, cli)
into Artifact Registry REGION-docker.pkg.dev/PROJECT/alpes, installs or upgrades Pulsar with
k8s/pulsar/values-gke-small.yaml, applies k8s/overlays/gke with those images, waits for the
stores, the bootstrap Job and every Deployment, then GETs marketing's /sagas/stats through a
port-forward with the API token from secret alpes-api-token.

Options (or environment):
  --tag TAG               image tag (IMAGE_TAG; default: git short hash, -dirty when modified)
  --repository NAME       Artifact Registry repository (AR_REPOSITORY; default alpes)
  --builder B             cloudbuild (gcloud builds submit; no local Docker) or docker
                          (IMAGE_BUILDER; default cloudbuild)
  --chart-version V       Apache Pulsar Helm chart version (PULSAR_CHART_VERSION; default $PULSAR_CHART_VERSION)
  --timeout D             rollout/wait timeout (ROLLOUT_TIMEOUT; default 10m)
  --skip-build            deploy images already pushed with --tag
  --skip-pulsar           leave the Pulsar release as it is
  --skip-smoke            no /sagas/stats check at the end
  --render                print the manifests this deploy would apply and stop (renders with
                          \$KUSTOMIZE build when set, else kubectl kustomize; no cluster)
$COMMON_HELP
EOF
}

while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if [[ "$SHIFT" -gt 0 ]]; then shift "$SHIFT"; continue; fi
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --tag) TAG="$(value_of "$@")"; shift 2 ;;
    --tag=*) TAG="${1#*=}"; shift ;;
    --repository) REPOSITORY="$(value_of "$@")"; shift 2 ;;
    --repository=*) REPOSITORY="${1#*=}"; shift ;;
    --builder) BUILDER="$(value_of "$@")"; shift 2 ;;
    --builder=*) BUILDER="${1#*=}"; shift ;;
    --chart-version) PULSAR_CHART_VERSION="$(value_of "$@")"; shift 2 ;;
    --chart-version=*) PULSAR_CHART_VERSION="${1#*=}"; shift ;;
    --timeout) TIMEOUT="$(value_of "$@")"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    --skip-build) DO_BUILD=0; shift ;;
    --skip-pulsar) DO_PULSAR=0; shift ;;
    --skip-smoke) DO_SMOKE=0; shift ;;
    --render) RENDER=1; shift ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

case "$BUILDER" in
  cloudbuild | docker) ;;
  *) die "--builder must be cloudbuild or docker, not $BUILDER" ;;
esac

if [[ -z "$TAG" ]]; then
  TAG="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
  if [[ "$TAG" != dev ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
    TAG="$TAG-dirty"
  fi
fi
resolve_project
REGISTRY="$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY"

tools=(gcloud kubectl)
[[ "$DO_PULSAR" == 1 ]] && tools+=(helm)
[[ "$DO_BUILD" == 1 && "$BUILDER" == docker ]] && tools+=(docker)
[[ "$DO_SMOKE" == 1 ]] && tools+=(curl base64)
[[ "$RENDER" == 1 ]] || need "${tools[@]}"

log "project $PROJECT, region $REGION, cluster $CLUSTER ($LOCATION), namespace $NAMESPACE, images $REGISTRY/*:$TAG"
[[ "$DRY_RUN" == 1 ]] && log "dry run: printing the commands, running none"

# --- images -----------------------------------------------------------------------------------
ensure_repository() {
  if [[ "$DRY_RUN" == 1 ]]; then
    run gcloud artifacts repositories describe "$REPOSITORY" --location "$REGION" --project "$PROJECT"
    echo "# only when the describe above fails:"
    run gcloud artifacts repositories create "$REPOSITORY" --repository-format=docker \
      --location "$REGION" --project "$PROJECT" --description "alpes images"
    return 0
  fi
  if ! run gcloud artifacts repositories describe "$REPOSITORY" --location "$REGION" --project "$PROJECT" >/dev/null 2>&1; then
    run gcloud artifacts repositories create "$REPOSITORY" --repository-format=docker \
      --location "$REGION" --project "$PROJECT" --description "alpes images"
  fi
}

build_images() {
  ensure_repository
  if [[ "$BUILDER" == cloudbuild ]]; then
    # One build on Cloud Build: the five targets share the builder stage (scripts/deploy/cloudbuild.yaml).
    run gcloud builds submit "$ROOT" --project "$PROJECT" --region "$REGION" \
      --config "$ROOT/scripts/deploy/cloudbuild.yaml" \
      --substitutions "_REGISTRY=$REGISTRY,_TAG=$TAG"
  else
    run gcloud auth configure-docker "$REGION-docker.pkg.dev" --quiet
    local image
    for image in "${IMAGES[@]}"; do
      run env DOCKER_BUILDKIT=1 docker build --target "$image" --tag "$REGISTRY/$image:$TAG" "$ROOT"
    done
    for image in "${IMAGES[@]}"; do
      run docker push "$REGISTRY/$image:$TAG"
    done
  fi
}

# --- Pulsar -----------------------------------------------------------------------------------
install_pulsar() {
  run helm repo add apache "$PULSAR_CHART_REPO" --force-update
  run helm repo update apache
  run helm upgrade --install "$PULSAR_RELEASE" apache/pulsar --version "$PULSAR_CHART_VERSION" \
    --namespace "$PULSAR_NAMESPACE" --create-namespace \
    --values "$ROOT/k8s/pulsar/values-gke-small.yaml" --timeout 20m
  local component
  for component in "${PULSAR_COMPONENTS[@]}"; do
    run kubectl --namespace "$PULSAR_NAMESPACE" rollout status "statefulset/$(pulsar_sts "$component")" --timeout="$TIMEOUT"
  done
}

# --- the alpes manifests ----------------------------------------------------------------------
check_secrets() {
  if ! run kubectl --namespace "$NAMESPACE" get secret alpes-mongo alpes-postgres alpes-api-token; then
    die "namespace $NAMESPACE or its secrets are missing: see k8s/README.md, \"Secrets\""
  fi
}

# The overlay with this deploy's registry, tag and project filled in, in a temporary directory
# next to k8s/overlays/gke (kustomize takes only relative paths to other kustomizations).
OVERLAY_DIR=""
write_overlay() {
  OVERLAY_DIR="$(mktemp -d "$ROOT/k8s/overlays/.deploy.XXXXXX")"
  # Removed at exit, also after a failure.
  trap 'rm -rf "$OVERLAY_DIR"' EXIT
  {
    echo "# Generated by scripts/deploy-gke.sh"
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - ../gke"
    echo "images:"
    local image
    for image in "${IMAGES[@]}"; do
      echo "  - name: REGION-docker.pkg.dev/PROJECT/alpes/$image"
      echo "    newName: $REGISTRY/$image"
      echo "    newTag: \"$TAG\""
    done
    echo "patches:"
    echo "  - target: {kind: ServiceAccount, name: alpes}"
    echo "    patch: |-"
    echo "      - op: replace"
    echo "        path: /metadata/annotations/iam.gke.io~1gcp-service-account"
    echo "        value: alpes-runtime@$PROJECT.iam.gserviceaccount.com"
  } >"$OVERLAY_DIR/kustomization.yaml"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "# $OVERLAY_DIR/kustomization.yaml:"
    sed 's/^/#   /' "$OVERLAY_DIR/kustomization.yaml"
  fi
}

apply_manifests() {
  write_overlay
  # A Job's template is immutable: drop the finished bootstrap so the new image runs it again.
  run kubectl --namespace "$NAMESPACE" delete job alpes-bootstrap --ignore-not-found
  run kubectl apply -k "$OVERLAY_DIR"
  if overlay_has_stores; then
    local store
    for store in "${STORES[@]}"; do
      run kubectl --namespace "$NAMESPACE" rollout status "statefulset/$store" --timeout="$TIMEOUT"
    done
  fi
  run kubectl --namespace "$NAMESPACE" wait --for=condition=complete job/alpes-bootstrap --timeout="$TIMEOUT"
  local service
  for service in "${SERVICES[@]}"; do
    # Scaled to 0 by scripts/gke-stop.sh? `apply` leaves replicas alone; wake it up.
    if [[ "$DRY_RUN" != 1 ]] &&
      [[ "$(kubectl --namespace "$NAMESPACE" get "deployment/$service" -o 'jsonpath={.spec.replicas}')" == 0 ]]; then
      run kubectl --namespace "$NAMESPACE" scale "deployment/$service" --replicas=1
    fi
    run kubectl --namespace "$NAMESPACE" rollout status "deployment/$service" --timeout="$TIMEOUT"
  done
}

# --- smoke check ------------------------------------------------------------------------------
PF_PID=""
smoke() {
  local url="http://127.0.0.1:$SMOKE_PORT/sagas/stats"
  printf '+ %s &\n' "kubectl --namespace $NAMESPACE port-forward service/marketing $SMOKE_PORT:8084"
  echo "+ kubectl --namespace $NAMESPACE get secret alpes-api-token -o 'jsonpath={.data.ALPES_API_TOKEN}' | base64 -d"
  echo "+ curl -fsS -H @- $url    # stdin: Authorization: Bearer <token>"
  [[ "$DRY_RUN" == 1 ]] && return 0

  kubectl --namespace "$NAMESPACE" port-forward service/marketing "$SMOKE_PORT:8084" >/dev/null 2>&1 &
  PF_PID=$!
  trap 'rm -rf "$OVERLAY_DIR"; [[ -n "$PF_PID" ]] && kill "$PF_PID" 2>/dev/null || true' EXIT
  local token attempt body
  token="$(kubectl --namespace "$NAMESPACE" get secret alpes-api-token -o 'jsonpath={.data.ALPES_API_TOKEN}' | base64 -d)"
  for attempt in $(seq 1 30); do
    if body="$(printf 'Authorization: Bearer %s\n' "$token" | curl -fsS --max-time 5 -H @- "$url" 2>/dev/null)"; then
      log "smoke check passed: GET /sagas/stats -> $body"
      kill "$PF_PID" 2>/dev/null || true
      PF_PID=""
      return 0
    fi
    log "waiting for marketing /sagas/stats ($attempt/30)"
    sleep 2
  done
  die "GET $url did not answer 200"
}

# --- main -------------------------------------------------------------------------------------
if [[ "$RENDER" == 1 ]]; then
  write_overlay
  if [[ -n "${KUSTOMIZE:-}" ]]; then
    "$KUSTOMIZE" build "$OVERLAY_DIR"
  else
    need kubectl
    kubectl kustomize "$OVERLAY_DIR"
  fi
  exit 0
fi
credentials
if [[ "$DO_BUILD" == 1 ]]; then build_images; else log "--skip-build: using $REGISTRY/*:$TAG"; fi
if [[ "$DO_PULSAR" == 1 ]]; then install_pulsar; else log "--skip-pulsar: Pulsar release left as it is"; fi
check_secrets
apply_manifests
if [[ "$DO_SMOKE" == 1 ]]; then smoke; fi
if [[ "$DRY_RUN" == 1 ]]; then
  log "dry run done: nothing was built, installed or applied"
else
  log "deployed $REGISTRY/*:$TAG to $CLUSTER/$NAMESPACE"
fi
