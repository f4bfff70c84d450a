#!/usr/bin/env bash
# Builds and pushes the alpes images, makes the Pulsar tokens that are missing, installs Pulsar
# (Helm) with token authentication and its NetworkPolicies, applies k8s/overlays/gke, runs the
# bootstrap Job, waits for every rollout and smoke-checks marketing's /sagas/stats.
#
#   scripts/deploy-gke.sh --project my-project --region europe-west1 --cluster alpes
#   scripts/deploy-gke.sh --dry-run            # prints every command, runs none
#
# The namespace and its secrets must exist first (k8s/README.md, "Secrets"); the Pulsar signing
# key and tokens are made here (k8s/README.md, "Authentication and secrets").
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
# Pulsar roles: the chart's superusers (k8s/pulsar/values-gke-small.yaml, auth.superUsers), of
# which alpes-admin is the bootstrap Job's; each service has its own role, alpes-<service>.
PULSAR_SUPERUSERS=(broker-admin proxy-admin alpes-admin)
PULSAR_ADMIN_ROLE=alpes-admin
# Where the chart reads the HS256 signing key from (key SECRETKEY).
PULSAR_KEY_SECRET="$PULSAR_RELEASE-token-symmetric-key"
# The application users of the in-cluster stores (k8s/components/in-cluster-stores).
STORE_APP_USER=alpes_app

usage() {
  cat <<EOF
Usage: scripts/deploy-gke.sh [options]

Checks the secrets of namespace $NAMESPACE, builds the five images (Dockerfile targets tracking,
attribution, commission, marketing, cli) into Artifact Registry
REGION-docker.pkg.dev/PROJECT/alpes, makes the Pulsar signing key and role tokens that are
missing (secrets $PULSAR_RELEASE-token-* in namespace pulsar, alpes-pulsar-token-* in $NAMESPACE),
installs or upgrades Pulsar with k8s/pulsar/values-gke-small.yaml and applies
k8s/pulsar/networkpolicy.yaml, applies k8s/overlays/gke with those images, makes sure the
stores' application users exist, waits for the bootstrap Job and every Deployment, then GETs
marketing's /sagas/stats through a port-forward with the API token from secret alpes-api-token.

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
# The Pulsar tokens are signed locally (python3) and secrets decoded with base64.
tools+=(python3 base64)
[[ "$RENDER" == 1 ]] || need "${tools[@]}"

log "project $PROJECT, region $REGION, cluster $CLUSTER ($LOCATION), namespace $NAMESPACE, images $REGISTRY/*:$TAG"

# Removed at exit, also after a failure: the generated overlay, the tokens made here, the
# smoke check's port-forward.
OVERLAY_DIR=""
TOKENS_DIR=""
PF_PID=""
cleanup() {
  [[ -z "$OVERLAY_DIR" ]] || rm -rf "$OVERLAY_DIR"
  [[ -z "$TOKENS_DIR" ]] || rm -rf "$TOKENS_DIR"
  [[ -z "$PF_PID" ]] || kill "$PF_PID" 2>/dev/null || true
}
trap cleanup EXIT
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

# --- Pulsar tokens ----------------------------------------------------------------------------
# secret_exists NAMESPACE NAME: whether the secret is there. A dry run prints the check and
# answers no, so that it shows what a first deploy creates.
secret_exists() {
  if [[ "$DRY_RUN" == 1 ]]; then
    run kubectl --namespace "$1" get secret "$2"
    echo "# only when the secret above is missing:"
    return 1
  fi
  kubectl --namespace "$1" get secret "$2" >/dev/null 2>&1
}

# sign_token ROLE: an HS256 JWT {"sub": ROLE}, no expiry, signed with $TOKENS_DIR/secret.key:
# what `bin/pulsar tokens create --secret-key` makes. Into $TOKENS_DIR/ROLE (mode 600); the key
# and the token never appear on a command line.
sign_token() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/pulsar/sign-token.py" "$TOKENS_DIR/secret.key" "$1" "$TOKENS_DIR/$1"
}

# ensure_token NAMESPACE SECRET KEY ROLE: secret SECRET (key KEY) holds ROLE's token; made when
# missing, or always after a new signing key (which invalidates every earlier token).
ensure_token() {
  local namespace="$1" secret="$2" key="$3" role="$4"
  if [[ "$NEW_KEY" == 1 ]]; then
    run kubectl --namespace "$namespace" delete secret "$secret" --ignore-not-found
  elif secret_exists "$namespace" "$secret"; then
    return 0
  fi
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "# $TOKENS_DIR/$role: HS256 JWT {\"sub\":\"$role\"} signed with the key (python3)"
  else
    sign_token "$role"
  fi
  run kubectl --namespace "$namespace" create secret generic "$secret" --from-file="$key=$TOKENS_DIR/$role"
}

# The HS256 signing key of the release (secret $PULSAR_KEY_SECRET, made once) and a token per
# role: the chart's superusers in namespace pulsar (secrets pulsar-token-ROLE, key TOKEN, which
# the chart mounts), each service's in namespace alpes (alpes-pulsar-token-SERVICE, key
# ALPES_PULSAR_TOKEN) and the bootstrap Job's (alpes-pulsar-token-admin). Existing secrets are
# kept: delete one to have it made again (k8s/README.md, "Authentication and secrets").
NEW_KEY=0
# A new key for a release that runs already: its pods and the services must restart to load it.
KEY_REPLACED=0
ensure_pulsar_tokens() {
  TOKENS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/alpes-tokens.XXXXXX")"
  if [[ "$DRY_RUN" == 1 ]]; then
    run kubectl get namespace "$PULSAR_NAMESPACE"
    echo "# only when the namespace above is missing:"
    run kubectl create namespace "$PULSAR_NAMESPACE"
  elif ! kubectl get namespace "$PULSAR_NAMESPACE" >/dev/null 2>&1; then
    run kubectl create namespace "$PULSAR_NAMESPACE"
  fi
  if secret_exists "$PULSAR_NAMESPACE" "$PULSAR_KEY_SECRET"; then
    echo "+ kubectl --namespace $PULSAR_NAMESPACE get secret $PULSAR_KEY_SECRET -o 'jsonpath={.data.SECRETKEY}' | base64 -d > $TOKENS_DIR/secret.key"
    (umask 077 && kubectl --namespace "$PULSAR_NAMESPACE" get secret "$PULSAR_KEY_SECRET" \
      -o 'jsonpath={.data.SECRETKEY}' | base64 -d >"$TOKENS_DIR/secret.key")
  else
    echo "+ head -c 32 /dev/urandom > $TOKENS_DIR/secret.key"
    [[ "$DRY_RUN" == 1 ]] || (umask 077 && head -c 32 /dev/urandom >"$TOKENS_DIR/secret.key")
    run kubectl --namespace "$PULSAR_NAMESPACE" create secret generic "$PULSAR_KEY_SECRET" \
      --from-file="SECRETKEY=$TOKENS_DIR/secret.key"
    NEW_KEY=1
    if [[ "$DRY_RUN" != 1 ]] &&
      kubectl --namespace "$PULSAR_NAMESPACE" get "statefulset/$(pulsar_sts broker)" >/dev/null 2>&1; then
      KEY_REPLACED=1
    fi
  fi
  local role service
  for role in "${PULSAR_SUPERUSERS[@]}"; do
    ensure_token "$PULSAR_NAMESPACE" "$PULSAR_RELEASE-token-$role" TOKEN "$role"
  done
  for service in "${SERVICES[@]}"; do
    ensure_token "$NAMESPACE" "alpes-pulsar-token-$service" ALPES_PULSAR_TOKEN "alpes-$service"
  done
  ensure_token "$NAMESPACE" alpes-pulsar-token-admin ALPES_PULSAR_TOKEN "$PULSAR_ADMIN_ROLE"
  rm -rf "$TOKENS_DIR"
}

# --- Pulsar -----------------------------------------------------------------------------------
install_pulsar() {
  run helm repo add apache "$PULSAR_CHART_REPO" --force-update
  run helm repo update apache
  run helm upgrade --install "$PULSAR_RELEASE" apache/pulsar --version "$PULSAR_CHART_VERSION" \
    --namespace "$PULSAR_NAMESPACE" --create-namespace \
    --values "$ROOT/k8s/pulsar/values-gke-small.yaml" --timeout 20m
  if [[ "$KEY_REPLACED" == 1 ]]; then
    # Same pod specs, new key and tokens in the secrets: Pulsar reads them at start only.
    run kubectl --namespace "$PULSAR_NAMESPACE" rollout restart "statefulset/$(pulsar_sts broker)" \
      "statefulset/$(pulsar_sts proxy)" "statefulset/$(pulsar_sts toolset)"
  fi
  local component
  for component in "${PULSAR_COMPONENTS[@]}"; do
    run kubectl --namespace "$PULSAR_NAMESPACE" rollout status "statefulset/$(pulsar_sts "$component")" --timeout="$TIMEOUT"
  done
  # Only the alpes pods and Pulsar's own may connect to the proxy and broker.
  run kubectl --namespace "$PULSAR_NAMESPACE" apply -f "$ROOT/k8s/pulsar/networkpolicy.yaml"
  # The toolset acts as alpes-admin: a token the broker refuses fails here, not in the Job.
  run kubectl --namespace "$PULSAR_NAMESPACE" exec "$(pulsar_sts toolset)-0" -- bin/pulsar-admin tenants list
}

# --- the alpes manifests ----------------------------------------------------------------------
# The secrets an operator creates (k8s/README.md, "Secrets"): the services' store URLs and API
# token, and with the in-cluster stores their root credentials.
check_secrets() {
  local secrets=(alpes-mongo alpes-postgres alpes-api-token)
  if overlay_has_stores; then secrets+=(alpes-mongo-root alpes-postgres-superuser); fi
  if ! run kubectl --namespace "$NAMESPACE" get secret "${secrets[@]}"; then
    die "namespace $NAMESPACE or its secrets are missing: see k8s/README.md, \"Secrets\""
  fi
  [[ "$DRY_RUN" == 1 ]] || check_store_users
}

# url_user SECRET KEY: the user name in the URL under KEY of SECRET (never printed whole).
url_user() {
  kubectl --namespace "$NAMESPACE" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d |
    sed -nE 's|^[a-z+]+://([^:@/]+)(:[^@/]*)?@.*|\1|p'
}

# The services connect as the stores' application users, never as a superuser.
check_store_users() {
  local mongo_user pg_user
  mongo_user="$(url_user alpes-mongo ALPES_MONGO_URL)"
  pg_user="$(url_user alpes-postgres ALPES_POSTGRES_URL)"
  if overlay_has_stores; then
    [[ "$mongo_user" == "$STORE_APP_USER" ]] ||
      die "ALPES_MONGO_URL (secret alpes-mongo) must connect as $STORE_APP_USER, not '$mongo_user': k8s/README.md, \"Secrets\""
    [[ "$pg_user" == "$STORE_APP_USER" ]] ||
      die "ALPES_POSTGRES_URL (secret alpes-postgres) must connect as $STORE_APP_USER, not '$pg_user': k8s/README.md, \"Secrets\""
  fi
  local user
  for user in "$mongo_user" "$pg_user"; do
    case "$user" in
      "" | root | admin | postgres | cloudsqlsuperuser)
        die "a store URL connects as '${user:-nobody}': use a least-privilege user (k8s/README.md, \"Secrets\")" ;;
    esac
  done
}

# The stores' application users, from the secrets: made by the images' init scripts on an empty
# volume; run again on each deploy so that a changed password applies and an older volume gets
# them. The root password stays inside the pod (expanded there, from its environment).
ensure_store_users() {
  # shellcheck disable=SC2016 # expanded by the pod's shell
  run kubectl --namespace "$NAMESPACE" exec statefulset/mongo -c mongo -- sh -c \
    'exec mongosh --quiet --host 127.0.0.1 --username "$MONGO_INITDB_ROOT_USERNAME" --password "$MONGO_INITDB_ROOT_PASSWORD" --authenticationDatabase admin /docker-entrypoint-initdb.d/10-alpes-app-user.js'
  run kubectl --namespace "$NAMESPACE" exec statefulset/postgres -c postgres -- \
    /docker-entrypoint-initdb.d/10-alpes-app-role.sh
}

# The overlay with this deploy's registry, tag and project filled in, in a temporary directory
# next to k8s/overlays/gke (kustomize takes only relative paths to other kustomizations).
write_overlay() {
  OVERLAY_DIR="$(mktemp -d "$ROOT/k8s/overlays/.deploy.XXXXXX")"
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
    ensure_store_users
  fi
  run kubectl --namespace "$NAMESPACE" wait --for=condition=complete job/alpes-bootstrap --timeout="$TIMEOUT"
  local service
  for service in "${SERVICES[@]}"; do
    # Scaled to 0 by scripts/gke-stop.sh? `apply` leaves replicas alone; wake it up.
    if [[ "$DRY_RUN" != 1 ]] &&
      [[ "$(kubectl --namespace "$NAMESPACE" get "deployment/$service" -o 'jsonpath={.spec.replicas}')" == 0 ]]; then
      run kubectl --namespace "$NAMESPACE" scale "deployment/$service" --replicas=1
    fi
    # A replaced Pulsar key: the token in the environment is read at start only.
    if [[ "$KEY_REPLACED" == 1 ]]; then
      run kubectl --namespace "$NAMESPACE" rollout restart "deployment/$service"
    fi
    run kubectl --namespace "$NAMESPACE" rollout status "deployment/$service" --timeout="$TIMEOUT"
  done
}

# --- smoke check ------------------------------------------------------------------------------
smoke() {
  local url="http://127.0.0.1:$SMOKE_PORT/sagas/stats"
  printf '+ %s &\n' "kubectl --namespace $NAMESPACE port-forward service/marketing $SMOKE_PORT:8084"
  echo "+ kubectl --namespace $NAMESPACE get secret alpes-api-token -o 'jsonpath={.data.ALPES_API_TOKEN}' | base64 -d"
  echo "+ curl -fsS -H @- $url    # stdin: Authorization: Bearer <token>"
  [[ "$DRY_RUN" == 1 ]] && return 0

  kubectl --namespace "$NAMESPACE" port-forward service/marketing "$SMOKE_PORT:8084" >/dev/null 2>&1 &
  PF_PID=$!
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
# Before the build: a missing secret fails in seconds, not after it.
check_secrets
if [[ "$DO_BUILD" == 1 ]]; then build_images; else log "--skip-build: using $REGISTRY/*:$TAG"; fi
# Also with --skip-pulsar: the services' token secrets must exist before the apply.
ensure_pulsar_tokens
if [[ "$DO_PULSAR" == 1 ]]; then install_pulsar; else log "--skip-pulsar: Pulsar release left as it is"; fi
apply_manifests
if [[ "$DO_SMOKE" == 1 ]]; then smoke; fi
if [[ "$DRY_RUN" == 1 ]]; then
  log "dry run done: nothing was built, installed or applied"
else
  log "deployed $REGISTRY/*:$TAG to $CLUSTER/$NAMESPACE"
fi
