#!/usr/bin/env bash
# Static validation of everything that deploys alpes: no Docker engine, cluster or cloud account
# needed. One line per check; exits 1 when any fails.
#
#   scripts/validate-deploy.sh
#
# Checks: shellcheck on every scripts/**/*.sh; hadolint on the Dockerfile; docker-compose.yml
# against the Compose Specification schema and for consistency (dependencies, volumes, build
# targets); the Cloud Build config against its schema; k8s/base, k8s/overlays/gke and the overlay
# scripts/deploy-gke.sh generates rendered with kustomize and validated offline against the
# Kubernetes schemas (strict) of K8S_VERSIONS; security/operability policy on them; every ALPES_*
# variable in compose and the manifests read by its binary (from the Rust sources); the Pulsar
# Helm values; authentication and least privilege (Pulsar token auth and authorization on, its
# NetworkPolicies, the services' tokens from Secrets, no store superuser credentials in the
# services, non-root stores with least-privilege users, no inline secret); the --dry-run of
# deploy-gke.sh, gke-start.sh and gke-stop.sh without gcloud, kubectl, helm or docker on PATH.
#
# Installs what it needs once, into ${ALPES_CACHE:-~/.cache/alpes}: a Python venv (deploy-venv,
# from scripts/deploy/requirements.txt) and kustomize (go install from the Go module proxy; when
# Go is missing, `kubectl kustomize` from PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ALPES_CACHE:-$HOME/.cache/alpes}"
VENV="$CACHE/deploy-venv"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
KUSTOMIZE_BIN="$CACHE/tools/kustomize-$KUSTOMIZE_VERSION/kustomize"
read -r -a K8S_VERSIONS <<<"${K8S_VERSIONS:-1.30.0 1.35.0}"

cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/alpes-validate.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log() { printf '[validate-deploy] %s\n' "$*" >&2; }
die() {
  printf '[validate-deploy] FAILED: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# --- tools ------------------------------------------------------------------------------------
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

setup_venv() {
  local stamp="$VENV/.alpes-requirements" want
  want="$(cat scripts/deploy/requirements.txt; python3 --version 2>&1)"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is missing (3.11 or newer)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 is older than 3.11"
  log "creating $VENV (first run, or scripts/deploy/requirements.txt changed)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian splits venv out of python3.
    log "python3 -m venv failed: installing python3-venv with apt-get"
    if ! { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq python3-venv >/dev/null; }; then
      die "cannot create a venv: install python3-venv"
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a venv in $VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/deploy/requirements.txt ||
    die "pip install -r scripts/deploy/requirements.txt failed"
  printf '%s' "$want" >"$stamp"
}

# KUSTOMIZE: the command that renders a kustomization directory.
KUSTOMIZE=()
setup_kustomize() {
  if [[ ! -x "$KUSTOMIZE_BIN" ]] && command -v go >/dev/null 2>&1; then
    log "building kustomize $KUSTOMIZE_VERSION (first run): go install from the Go module proxy"
    mkdir -p "$(dirname "$KUSTOMIZE_BIN")"
    GOBIN="$(dirname "$KUSTOMIZE_BIN")" GOFLAGS=-mod=mod \
      go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >"$WORK/go-install.log" 2>&1 ||
      { cat "$WORK/go-install.log" >&2; die "go install kustomize failed"; }
  fi
  if [[ -x "$KUSTOMIZE_BIN" ]]; then
    KUSTOMIZE=("$KUSTOMIZE_BIN" build)
  elif command -v kubectl >/dev/null 2>&1; then
    log "no Go: rendering with kubectl kustomize ($(command -v kubectl))"
    KUSTOMIZE=(kubectl kustomize)
  else
    die "neither Go (to build kustomize) nor kubectl is installed"
  fi
}

# --- checks -----------------------------------------------------------------------------------
PASSED=0
FAILED=0
# check NAME CMD...: runs CMD, prints one line, and its output when it fails.
check() {
  local name="$1" start status=0
  shift
  start="$(now)"
  "$@" >"$WORK/check.log" 2>&1 || status=$?
  if [[ "$status" == 0 ]]; then
    PASSED=$((PASSED + 1))
    printf 'ok    %-66s %s\n' "$name" "$(elapsed "$start")"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %-66s %s\n' "$name" "$(elapsed "$start")"
    sed 's/^/        /' "$WORK/check.log"
  fi
}

shell_scripts() { find scripts -name '*.sh' -type f | LC_ALL=C sort; }

check_shellcheck() {
  local scripts=()
  mapfile -t scripts < <(shell_scripts)
  "$VENV/bin/shellcheck" --external-sources "${scripts[@]}"
}

render() { # render DIR OUT
  "${KUSTOMIZE[@]}" "$1" >"$2"
}

render_generated() { # the overlay scripts/deploy-gke.sh writes, with images and project filled in
  local out="$1"
  if [[ "${KUSTOMIZE[0]}" == kubectl ]]; then
    scripts/deploy-gke.sh --render --project demo-project --region europe-west1 --tag v0.0.0-ci >"$out"
  else
    KUSTOMIZE="$KUSTOMIZE_BIN" scripts/deploy-gke.sh --render --project demo-project --region europe-west1 \
      --tag v0.0.0-ci >"$out"
  fi
  if grep -nE 'REGION-docker|/PROJECT/|@PROJECT\.' "$out"; then
    echo "placeholders left in the generated overlay's output"
    return 1
  fi
  grep -q 'image: europe-west1-docker.pkg.dev/demo-project/alpes/tracking:v0.0.0-ci' "$out" ||
    { echo "the generated overlay did not set the tracking image"; return 1; }
  local leftovers
  leftovers="$(find k8s/overlays -maxdepth 1 -name '.deploy.*')"
  [[ -z "$leftovers" ]] || { echo "left behind: $leftovers"; return 1; }
}

# The stores' init scripts (shell, in ConfigMaps of the rendered overlay) through shellcheck.
check_init_scripts() {
  local dir="$WORK/init-scripts"
  mkdir -p "$dir"
  "$PY" - "$WORK/k8s-overlays-gke.yaml" "$dir" <<'PY' || return 1
import sys
from pathlib import Path
import yaml
count = 0
for doc in yaml.safe_load_all(Path(sys.argv[1]).read_text()):
    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
        for key, text in (doc.get("data") or {}).items():
            if key.endswith(".sh"):
                (Path(sys.argv[2]) / f"{doc['metadata']['name']}-{key}").write_text(text)
                count += 1
if not count:
    sys.exit("no shell init script in the rendered overlay")
PY
  "$VENV/bin/shellcheck" "$dir"/*.sh
}

k8s_validate() { # k8s_validate VERSION FILE...
  local version="$1"
  shift
  "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$@"
}

# A PATH with the basic tools only: no gcloud, kubectl, helm, docker, curl.
SANDBOX="$WORK/sandbox-bin"
make_sandbox() {
  mkdir -p "$SANDBOX"
  # Never gcloud, kubectl, helm, docker or curl: a dry run must not need them.
  local tool path
  for tool in bash env cat sed grep awk dirname basename mktemp rm mkdir printf date seq sleep \
    head tail tr git id find sort; do
    path="$(command -v "$tool" 2>/dev/null)" && ln -sf "$path" "$SANDBOX/$tool"
  done
}

dry_run() { # dry_run SCRIPT OUT ARGS...
  local script="$1" out="$2"
  shift 2
  if ! env -i HOME="$HOME" PATH="$SANDBOX" TMPDIR="$WORK" bash "$script" --dry-run "$@" >"$out" 2>"$out.err"; then
    cat "$out.err" "$out"
    echo "$script --dry-run $* exited non-zero"
    return 1
  fi
  if grep -q "command not found" "$out.err"; then
    cat "$out.err"
    echo "$script --dry-run tried to run a tool that is not there"
    return 1
  fi
}

# expect FILE PATTERN...: every PATTERN (extended regexp) matches a line of FILE, in this order.
expect() {
  local file="$1" last=0 line pattern
  shift
  for pattern in "$@"; do
    line="$(grep -nE -- "$pattern" "$file" | awk -F: -v after="$last" '$1 > after { print $1; exit }')"
    if [[ -z "$line" ]]; then
      echo "expected, after line $last of the dry run: $pattern"
      echo "--- dry run output:"
      cat "$file"
      return 1
    fi
    last="$line"
  done
}

check_deploy_dry_run() {
  local out="$WORK/deploy.out"
  dry_run scripts/deploy-gke.sh "$out" --project demo-project --region europe-west1 --cluster alpes --tag v1 || return 1
  # Secrets checked first; Pulsar's signing key and every role's token before the chart and the
  # services need them; the NetworkPolicies once Pulsar runs; the stores' users after their rollout.
  expect "$out" \
    '^\+ gcloud container clusters get-credentials alpes --location europe-west1 --project demo-project$' \
    '^\+ kubectl --namespace alpes get secret alpes-mongo alpes-postgres alpes-api-token alpes-mongo-root alpes-postgres-superuser$' \
    '^\+ gcloud builds submit .*--config .*scripts/deploy/cloudbuild.yaml' \
    '^\+ kubectl --namespace pulsar create secret generic pulsar-token-symmetric-key --from-file=SECRETKEY=' \
    '^\+ kubectl --namespace pulsar create secret generic pulsar-token-broker-admin --from-file=TOKEN=' \
    '^\+ kubectl --namespace pulsar create secret generic pulsar-token-proxy-admin --from-file=TOKEN=' \
    '^\+ kubectl --namespace pulsar create secret generic pulsar-token-alpes-admin --from-file=TOKEN=' \
    '^\+ kubectl --namespace alpes create secret generic alpes-pulsar-token-tracking --from-file=ALPES_PULSAR_TOKEN=' \
    '^\+ kubectl --namespace alpes create secret generic alpes-pulsar-token-marketing --from-file=ALPES_PULSAR_TOKEN=' \
    '^\+ kubectl --namespace alpes create secret generic alpes-pulsar-token-admin --from-file=ALPES_PULSAR_TOKEN=' \
    '^\+ helm upgrade --install pulsar apache/pulsar .*--values .*k8s/pulsar/values-gke-small.yaml' \
    '^\+ kubectl --namespace pulsar rollout status statefulset/pulsar-broker' \
    '^\+ kubectl --namespace pulsar rollout status statefulset/pulsar-proxy' \
    '^\+ kubectl --namespace pulsar apply -f .*k8s/pulsar/networkpolicy.yaml$' \
    '^\+ kubectl --namespace pulsar exec pulsar-toolset-0 -- bin/pulsar-admin tenants list$' \
    '^\+ kubectl --namespace alpes delete job alpes-bootstrap' \
    '^\+ kubectl apply -k ' \
    '^\+ kubectl --namespace alpes rollout status statefulset/mongo' \
    '^\+ kubectl --namespace alpes exec statefulset/mongo -c mongo -- .*10-alpes-app-user.js' \
    '^\+ kubectl --namespace alpes exec statefulset/postgres -c postgres -- .*10-alpes-app-role.sh$' \
    '^\+ kubectl --namespace alpes wait --for=condition=complete job/alpes-bootstrap' \
    '^\+ kubectl --namespace alpes rollout status deployment/tracking' \
    '^\+ kubectl --namespace alpes rollout status deployment/attribution' \
    '^\+ kubectl --namespace alpes rollout status deployment/commission' \
    '^\+ kubectl --namespace alpes rollout status deployment/marketing' \
    'port-forward service/marketing' \
    '^\+ curl .*/sagas/stats' || return 1
  # With the local Docker builder instead of Cloud Build: build then push each image.
  dry_run scripts/deploy-gke.sh "$out" --project demo-project --builder docker --tag v1 --skip-pulsar --skip-smoke || return 1
  expect "$out" \
    '^\+ env DOCKER_BUILDKIT=1 docker build --target tracking --tag europe-west1-docker.pkg.dev/demo-project/alpes/tracking:v1' \
    '^\+ env DOCKER_BUILDKIT=1 docker build --target cli ' \
    '^\+ docker push europe-west1-docker.pkg.dev/demo-project/alpes/tracking:v1' \
    '^\+ kubectl apply -k ' || return 1
  if grep -q '^+ helm' "$out"; then echo "--skip-pulsar still ran helm"; return 1; fi
  # The services' Pulsar tokens are needed by the apply, also when the release is left alone.
  grep -q '^+ kubectl --namespace alpes create secret generic alpes-pulsar-token-tracking ' "$out" ||
    { echo "--skip-pulsar did not make the services' Pulsar tokens"; return 1; }
  # No credential of any kind on a command line the dry run prints.
  if grep -nE 'eyJ[A-Za-z0-9_-]{10,}|--from-literal=[A-Z_]*(TOKEN|PASSWORD|KEY)' "$out"; then
    echo "a credential on a command line"
    return 1
  fi
}

check_stop_dry_run() {
  local out="$WORK/stop.out"
  dry_run scripts/gke-stop.sh "$out" --project demo-project --node-pool default-pool || return 1
  # Services first, then the stores, then Pulsar from the proxy down to ZooKeeper, then nodes.
  expect "$out" \
    '^\+ kubectl --namespace alpes scale deployment/tracking --replicas=0$' \
    '^\+ kubectl --namespace alpes scale deployment/marketing --replicas=0$' \
    '^\+ kubectl --namespace alpes wait --for=delete pod -l app.kubernetes.io/component=service' \
    '^\+ kubectl --namespace alpes scale statefulset/mongo --replicas=0$' \
    '^\+ kubectl --namespace alpes scale statefulset/postgres --replicas=0$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-proxy --replicas=0$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-broker --replicas=0$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-bookie --replicas=0$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-zookeeper --replicas=0$' \
    '^\+ gcloud container clusters resize alpes --node-pool default-pool --num-nodes 0' || return 1
  dry_run scripts/gke-stop.sh "$out" --project demo-project --services-only || return 1
  if grep -qE 'statefulset|resize' "$out"; then echo "--services-only touched more than the services"; return 1; fi
}

check_start_dry_run() {
  local out="$WORK/start.out"
  dry_run scripts/gke-start.sh "$out" --project demo-project --node-pool default-pool --nodes 2 || return 1
  # Nodes, then Pulsar from ZooKeeper up, then the stores, then the services.
  expect "$out" \
    '^\+ gcloud container clusters resize alpes --node-pool default-pool --num-nodes 2' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-zookeeper --replicas=1$' \
    '^\+ kubectl --namespace pulsar rollout status statefulset/pulsar-zookeeper' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-bookie --replicas=1$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-broker --replicas=1$' \
    '^\+ kubectl --namespace pulsar scale statefulset/pulsar-proxy --replicas=1$' \
    '^\+ kubectl --namespace pulsar rollout status statefulset/pulsar-proxy' \
    '^\+ kubectl --namespace alpes scale statefulset/mongo --replicas=1$' \
    '^\+ kubectl --namespace alpes rollout status statefulset/postgres' \
    '^\+ kubectl --namespace alpes scale deployment/tracking --replicas=1$' \
    '^\+ kubectl --namespace alpes rollout status deployment/tracking' || return 1
}

check_help() {
  local script
  for script in scripts/deploy-gke.sh scripts/gke-start.sh scripts/gke-stop.sh; do
    env -i HOME="$HOME" PATH="$SANDBOX" bash "$script" --help | grep -q -- '--dry-run' ||
      { echo "$script --help does not document --dry-run"; return 1; }
    if env -i HOME="$HOME" PATH="$SANDBOX" bash "$script" --no-such-flag >/dev/null 2>&1; then
      echo "$script accepted an unknown flag"
      return 1
    fi
  done
}

# --- run --------------------------------------------------------------------------------------
START="$(now)"
setup_venv
setup_kustomize
make_sandbox
PY="$VENV/bin/python"
CHECK="scripts/deploy/check_deploy.py"
log "tools ready in $(elapsed "$START") (venv $VENV, kustomize: ${KUSTOMIZE[*]})"

check "shellcheck scripts/**/*.sh ($(shell_scripts | wc -l) files)" check_shellcheck
check "hadolint Dockerfile" "$VENV/bin/hadolint" Dockerfile
check "docker-compose.yml: Compose Specification schema" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
check "docker-compose.yml: dependencies, volumes, build targets" \
  "$PY" "$CHECK" compose docker-compose.yml --dockerfile Dockerfile
check "scripts/deploy/cloudbuild.yaml: Cloud Build schema" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.cloudbuild scripts/deploy/cloudbuild.yaml
check "kustomize k8s/base" render k8s/base "$WORK/k8s-base.yaml"
check "kustomize k8s/overlays/gke" render k8s/overlays/gke "$WORK/k8s-overlays-gke.yaml"
check "kustomize the overlay deploy-gke.sh generates" render_generated "$WORK/k8s-deploy-gke.yaml"
MANIFESTS=("$WORK/k8s-base.yaml" "$WORK/k8s-overlays-gke.yaml" "$WORK/k8s-deploy-gke.yaml")
# What the stores component renders into (the overlays; the base has no stores).
OVERLAYS=("$WORK/k8s-overlays-gke.yaml" "$WORK/k8s-deploy-gke.yaml")
PULSAR_NETPOL=k8s/pulsar/networkpolicy.yaml
PULSAR_VALUES=k8s/pulsar/values-gke-small.yaml
for version in "${K8S_VERSIONS[@]}"; do
  check "kubernetes-validate --strict, Kubernetes $version" k8s_validate "$version" "${MANIFESTS[@]}" "$PULSAR_NETPOL"
done
check "manifests policy: non-root, read-only, resources, probes, PDB, HPA" \
  "$PY" "$CHECK" policy "${MANIFESTS[@]}"
check "ALPES_* variables (compose, manifests) read by their binary" \
  "$PY" "$CHECK" env --compose docker-compose.yml --manifests "${MANIFESTS[@]}"
check "k8s/pulsar/values-gke-small.yaml: settings alpes relies on" \
  "$PY" "$CHECK" pulsar-values "$PULSAR_VALUES"
check "Pulsar values: token authentication, authorization, no anonymous" \
  "$PY" "$CHECK" pulsar-auth "$PULSAR_VALUES"
check "Pulsar NetworkPolicy: proxy/broker only from alpes and Pulsar pods" \
  "$PY" "$CHECK" pulsar-netpol "$PULSAR_NETPOL"
check "services: ALPES_API_TOKEN, own ALPES_PULSAR_TOKEN by secretKeyRef" \
  "$PY" "$CHECK" service-tokens --compose docker-compose.yml "${MANIFESTS[@]}"
check "services: no MongoDB root / Postgres superuser credentials" \
  "$PY" "$CHECK" store-credentials "${MANIFESTS[@]}"
check "MongoDB/Postgres: non-root; app users least-privilege, not root" \
  "$PY" "$CHECK" stores "${OVERLAYS[@]}"
check "no plaintext secret in manifests, Pulsar values (Secret refs only)" \
  "$PY" "$CHECK" secrets "${MANIFESTS[@]}" "$PULSAR_VALUES" "$PULSAR_NETPOL"
check "shellcheck the stores' init scripts (ConfigMaps)" check_init_scripts
check "services/*/openapi.json (4): OpenAPI 3.1, examples, token scopes" \
  "$VENV/bin/python" scripts/deploy/check_openapi.py
check "deploy-gke.sh --dry-run (no gcloud/kubectl/helm/docker)" check_deploy_dry_run
check "gke-stop.sh --dry-run: services, stores, then Pulsar" check_stop_dry_run
check "gke-start.sh --dry-run: Pulsar, stores, then services" check_start_dry_run
check "--help and unknown flags of the three scripts" check_help

printf 'validate-deploy: %d passed, %d failed\n' "$PASSED" "$FAILED"
log "done in $(elapsed "$START")"
[[ "$FAILED" == 0 ]]
