#!/usr/bin/env python3
"""Static checks of the alpes deployment files; scripts/validate-deploy.sh runs them.

  check_deploy.py env      --compose docker-compose.yml --manifests rendered.yaml...
  check_deploy.py compose  docker-compose.yml --dockerfile Dockerfile
  check_deploy.py policy   rendered.yaml...
  check_deploy.py pulsar-values k8s/pulsar/values-gke-small.yaml
  check_deploy.py secrets rendered.yaml... k8s/pulsar/*.yaml
  check_deploy.py service-tokens rendered.yaml... [--compose docker-compose.yml]
  check_deploy.py store-credentials rendered.yaml...
  check_deploy.py stores rendered-overlay.yaml...
  check_deploy.py pulsar-auth k8s/pulsar/values-gke-small.yaml
  check_deploy.py pulsar-netpol k8s/pulsar/networkpolicy.yaml

env:     every ALPES_* variable that docker-compose.yml or a rendered Kubernetes manifest gives a
         container must be one its binary reads. What a binary reads comes from the Rust sources
         (`env = "ALPES_..."` in clap attributes, `std::env::var("ALPES_...")`) of its crate and
         of the workspace crates it depends on (crates/runtime/src/config.rs for every service),
         so the check follows the code. A variable a binary requires (no default, not Option)
         must be set too. The binary of a container is the last part of its image name
         (alpes/tracking:dev -> tracking) or, in compose, its build target.
compose: what the JSON schema cannot see: depends_on targets exist and have healthchecks where
         `service_healthy` waits on them, named volumes are declared, build targets exist in
         the Dockerfile.
policy:  the rendered manifests keep the security and operability rules of k8s/README.md.
pulsar-values: the Helm values keep what alpes relies on (strict delayed delivery with a 100 ms
         tick, single-copy ledgers for one bookie, a proxy reachable in-cluster only on 6650/8080).
secrets: no Secret in the manifests, no inline credential (a setting named like a password or
         token not from a secretKeyRef, a URL with a password, a JWT) in manifests or values.
service-tokens: each service Deployment gets ALPES_API_TOKEN, ALPES_API_TOKENS (optional) and
         its own role's ALPES_PULSAR_TOKEN from secretKeyRef; only the bootstrap Job gets the
         Pulsar admin token; compose gives every service ALPES_API_TOKEN.
store-credentials: no alpes container reads a store's superuser credentials; store URLs come
         from the application users' secrets.
stores:  MongoDB and Postgres run non-root; their application users are least-privilege
         (MongoDB: readWrite on the services' databases; Postgres: NOSUPERUSER ... owner role).
pulsar-auth: Pulsar Helm values with token authentication and authorization on, only the
         broker, proxy and alpes-admin superusers, no anonymous role.
pulsar-netpol: NetworkPolicies of namespace pulsar: the proxy from the alpes pods (6650, 8080)
         and Pulsar's own, the broker and storage from Pulsar's own pods only.

Exit status 1 with one line per problem; 0 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Binary name -> package directory (relative to ROOT).
BINARIES = {
    "tracking": "services/tracking",
    "attribution": "services/attribution",
    "commission": "services/commission",
    "marketing": "services/marketing",
    "alpes": "crates/cli",
}
# Image/target names that differ from the binary's.
IMAGE_TO_BINARY = {"cli": "alpes"}
SERVICE_BINARIES = {"tracking", "attribution", "commission", "marketing"}

ENV_ATTR = re.compile(r'\benv\s*=\s*"(ALPES_[A-Z0-9_]+)"')
ENV_CALL = re.compile(r'env::var(?:_os)?\(\s*"(ALPES_[A-Z0-9_]+)"')
# A clap field: #[arg(...)] (doc comments and other attributes may follow) then `name: Type`.
ARG_FIELD = re.compile(
    r"#\[arg\((?P<attr>.*?)\)\]\s*(?:(?:///[^\n]*|#\[[^\n]*\])\s*)*(?:pub(?:\([^)]*\))?\s+)?\w+\s*:\s*(?P<ty>[^,\n]+)",
    re.S,
)


@dataclass
class Reads:
    known: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)


def workspace_paths() -> dict[str, Path]:
    """Workspace dependency name -> crate directory, from the root Cargo.toml."""
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    deps = manifest.get("workspace", {}).get("dependencies", {})
    return {
        name: (ROOT / spec["path"]).resolve()
        for name, spec in deps.items()
        if isinstance(spec, dict) and "path" in spec
    }


def crate_closure(crate: Path, ws: dict[str, Path]) -> list[Path]:
    """The crate and the workspace crates it depends on (normal dependencies, transitively)."""
    seen: list[Path] = []
    todo = [crate.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        manifest = tomllib.loads((current / "Cargo.toml").read_text())
        for name, spec in manifest.get("dependencies", {}).items():
            if not isinstance(spec, dict):
                continue
            if "path" in spec:
                todo.append((current / spec["path"]).resolve())
            elif spec.get("workspace") and name in ws:
                todo.append(ws[name])
    return seen


def reads_of(binary: str, ws: dict[str, Path]) -> Reads:
    reads = Reads()
    for crate in crate_closure(ROOT / BINARIES[binary], ws):
        for src in sorted((crate / "src").rglob("*.rs")):
            text = src.read_text()
            found = set(ENV_ATTR.findall(text)) | set(ENV_CALL.findall(text))
            if not found:
                continue
            reads.known |= found
            reads.sources.append(str(src.relative_to(ROOT)))
            for match in ARG_FIELD.finditer(text):
                attr, ty = match.group("attr"), match.group("ty").strip()
                names = ENV_ATTR.findall(attr)
                if not names:
                    continue
                has_default = re.search(r"\bdefault_values?(_t|_os_t|_ifs?)?\b", attr)
                optional = ty.startswith(("Option<", "Vec<", "bool")) or "required = false" in attr
                if not has_default and not optional:
                    reads.required |= set(names)
    return reads


def binary_of_image(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    last = last.split(":", 1)[0]
    return IMAGE_TO_BINARY.get(last, last)


def load_all(paths: list[str]) -> list[tuple[str, dict]]:
    docs = []
    for p in paths:
        for doc in yaml.safe_load_all(Path(p).read_text()):
            if isinstance(doc, dict):
                # Rendered files live in a temporary directory: name them by their file name.
                docs.append((Path(p).name, doc))
    return docs


def pod_spec(doc: dict) -> dict | None:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return None


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def check_vars(where: str, binary: str, given: set[str], reads: dict[str, Reads], problems: list[str]) -> None:
    alpes = {v for v in given if v.startswith("ALPES_")}
    if binary not in reads:
        for var in sorted(alpes):
            problems.append(f"{where}: sets {var}, but its image is no alpes binary")
        return
    r = reads[binary]
    for var in sorted(alpes - r.known):
        problems.append(
            f"{where}: sets {var}, which `{binary}` does not read "
            f"(it reads: {', '.join(sorted(r.known))})"
        )
    if binary in SERVICE_BINARIES:
        for var in sorted(r.required - given):
            problems.append(f"{where}: does not set {var}, which `{binary}` requires")


def cmd_env(args: argparse.Namespace) -> list[str]:
    ws = workspace_paths()
    reads = {b: reads_of(b, ws) for b in BINARIES}
    problems: list[str] = []
    checked = 0

    if args.compose:
        compose = yaml.safe_load(Path(args.compose).read_text())
        for name, svc in (compose.get("services") or {}).items():
            build = svc.get("build")
            target = build.get("target") if isinstance(build, dict) else None
            binary = IMAGE_TO_BINARY.get(target, target) if target else binary_of_image(svc.get("image", ""))
            env = svc.get("environment") or {}
            if isinstance(env, list):
                env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
            if svc.get("env_file"):
                problems.append(f"{args.compose}: service '{name}' uses env_file, which this check cannot see")
            check_vars(f"{args.compose}: service '{name}' ({binary})", binary, set(env), reads, problems)
            checked += 1

    docs = load_all(args.manifests or [])
    configmaps = {
        (d.get("metadata", {}).get("namespace"), d["metadata"]["name"]): (p, d)
        for p, d in docs
        if d.get("kind") == "ConfigMap"
    }
    used: set[tuple] = set()
    for path, doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        ns = doc.get("metadata", {}).get("namespace")
        for c in containers(spec):
            binary = binary_of_image(c.get("image", ""))
            given = {e["name"] for e in c.get("env") or []}
            where = f"{path}: {doc['kind']}/{doc['metadata']['name']} container '{c.get('name')}' ({binary})"
            for source in c.get("envFrom") or []:
                prefix = source.get("prefix", "")
                if "configMapRef" in source:
                    key = (ns, source["configMapRef"]["name"])
                    if key not in configmaps:
                        problems.append(f"{where}: envFrom ConfigMap {key[1]} is not in the manifests")
                        continue
                    used.add(key)
                    given |= {prefix + k for k in (configmaps[key][1].get("data") or {})}
                elif "secretRef" in source:
                    problems.append(
                        f"{where}: envFrom Secret {source['secretRef']['name']}: its keys cannot be "
                        "checked; use env[].valueFrom.secretKeyRef"
                    )
            check_vars(where, binary, given, reads, problems)
            checked += 1
    for key, (path, cm) in configmaps.items():
        alpes = sorted(k for k in (cm.get("data") or {}) if k.startswith("ALPES_"))
        if alpes and key not in used:
            problems.append(f"{path}: ConfigMap {key[1]} sets {', '.join(alpes)} but no container uses it")

    if not problems:
        summary = "; ".join(f"{b}: {len(r.known)} from {len(r.sources)} file(s)" for b, r in reads.items())
        print(f"env: {checked} container(s) checked against what the binaries read ({summary})")
    return problems


def dockerfile_stages(path: Path) -> set[str]:
    return set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", path.read_text()))


def cmd_compose(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    compose = yaml.safe_load(Path(args.file).read_text())
    services = compose.get("services") or {}
    volumes = set((compose.get("volumes") or {}).keys())
    stages = dockerfile_stages(Path(args.dockerfile)) if args.dockerfile else set()
    for name, svc in services.items():
        where = f"{args.file}: service '{name}'"
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, how in deps.items():
            if dep not in services:
                problems.append(f"{where}: depends on unknown service '{dep}'")
                continue
            condition = (how or {}).get("condition", "service_started")
            if condition == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"{where}: waits for '{dep}' to be healthy, but '{dep}' has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart") not in (None, "no"):
                problems.append(f"{where}: waits for '{dep}' to complete, but '{dep}' restarts")
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else (vol or {}).get("source", "")
            if source and not source.startswith((".", "/", "~", "$")) and source not in volumes:
                problems.append(f"{where}: volume '{source}' is not declared under volumes:")
        build = svc.get("build")
        if isinstance(build, dict) and build.get("target") and stages and build["target"] not in stages:
            problems.append(f"{where}: build target '{build['target']}' is no stage of {args.dockerfile}")
    if not problems:
        print(f"compose: {len(services)} service(s): dependencies, volumes and build targets consistent")
    return problems


def _get(d: dict | None, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def cmd_policy(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    docs = load_all(args.manifests)
    workloads = 0
    for path, doc in docs:
        kind, name = doc.get("kind"), _get(doc, "metadata", "name")
        if kind == "Secret":
            problems.append(f"{path}: Secret/{name} is in the manifests; secrets are never committed")
        spec = pod_spec(doc)
        if spec is None:
            continue
        workloads += 1
        psc = spec.get("securityContext") or {}
        for c in containers(spec):
            where = f"{path}: {kind}/{name} container '{c.get('name')}'"
            csc = c.get("securityContext") or {}
            image = c.get("image", "")
            binary = binary_of_image(image)

            def pod_or_container(key: str):
                return csc.get(key, psc.get(key))

            if pod_or_container("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if binary in BINARIES and pod_or_container("runAsUser") != 10001:
                problems.append(f"{where}: runAsUser is not 10001")
            if _get(csc, "seccompProfile", "type") != "RuntimeDefault" and _get(psc, "seccompProfile", "type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if "ALL" not in (_get(csc, "capabilities", "drop") or []):
                problems.append(f"{where}: capabilities do not drop ALL")
            for bound in ("requests", "limits"):
                res = _get(c, "resources", bound) or {}
                for r in ("cpu", "memory"):
                    if r not in res:
                        problems.append(f"{where}: no resources.{bound}.{r}")
            if image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image and binary not in BINARIES):
                problems.append(f"{where}: image '{image}' has no fixed tag")
            if kind == "Deployment" and binary in SERVICE_BINARIES:
                if _get(c, "livenessProbe", "httpGet", "path") != "/healthz":
                    problems.append(f"{where}: livenessProbe is not GET /healthz")
                if _get(c, "readinessProbe", "httpGet", "path") != "/readyz":
                    problems.append(f"{where}: readinessProbe is not GET /readyz")

    # Every service Deployment has its Service, PodDisruptionBudget, HPA and NetworkPolicy.
    by_kind: dict[str, list[dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)

    def selects(selector: dict | None, labels: dict) -> bool:
        if not selector:
            return False
        match = selector.get("matchLabels", selector)
        return bool(match) and all(labels.get(k) == v for k, v in match.items() if isinstance(v, str))

    for dep in by_kind.get("Deployment", []):
        name = dep["metadata"]["name"]
        labels = _get(dep, "spec", "template", "metadata", "labels") or {}
        wants = {
            "Service": lambda d: selects(_get(d, "spec", "selector"), labels),
            "PodDisruptionBudget": lambda d: selects(_get(d, "spec", "selector"), labels),
            "NetworkPolicy": lambda d: selects(_get(d, "spec", "podSelector"), labels),
            "HorizontalPodAutoscaler": lambda d: _get(d, "spec", "scaleTargetRef", "kind") == "Deployment"
            and _get(d, "spec", "scaleTargetRef", "name") == name,
        }
        for kind, test in wants.items():
            if not any(test(d) for d in by_kind.get(kind, [])):
                problems.append(f"Deployment/{name}: no {kind} for it")
        if dep["metadata"].get("namespace") is None and args.require_namespace:
            problems.append(f"Deployment/{name}: no namespace")
    if not problems:
        print(
            f"policy: {workloads} workload(s), {len(by_kind.get('Deployment', []))} Deployment(s): "
            "non-root, read-only, no capabilities, seccomp, resources, probes, Service/PDB/HPA/NetworkPolicy"
        )
    return problems


PULSAR_EXPECTED = {
    ("broker", "configData", "delayedDeliveryTickTimeMillis"): "100",
    ("broker", "configData", "delayedDeliveryDeliverAtTimeStrict"): "true",
    ("broker", "configData", "managedLedgerDefaultEnsembleSize"): "1",
    ("broker", "configData", "managedLedgerDefaultWriteQuorum"): "1",
    ("broker", "configData", "managedLedgerDefaultAckQuorum"): "1",
    ("broker", "replicaCount"): 1,
    ("bookkeeper", "replicaCount"): 1,
    ("zookeeper", "replicaCount"): 1,
    ("proxy", "replicaCount"): 1,
    ("proxy", "ports", "pulsar"): 6650,
    ("proxy", "ports", "http"): 8080,
    ("proxy", "service", "type"): "ClusterIP",
    ("components", "proxy"): True,
    ("components", "functions"): False,
}


def cmd_pulsar_values(args: argparse.Namespace) -> list[str]:
    values = yaml.safe_load(Path(args.file).read_text())
    problems = []
    for keys, want in PULSAR_EXPECTED.items():
        got = _get(values, *keys)
        if got != want:
            problems.append(f"{args.file}: {'.'.join(keys)} is {got!r}, alpes needs {want!r}")
    if not problems:
        print(f"pulsar-values: {len(PULSAR_EXPECTED)} settings alpes relies on are in place")
    return problems


# --- authentication, secrets and least privilege ------------------------------------------------

# Names of settings that hold a credential: their value comes from a Secret, never inline.
CREDENTIAL_NAME = re.compile(r"(?i)(passw(or)?d|secret|token|credential|api_?key|private_?key)")
# A credential written into a string: a URL with a password, a JWT.
URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")

# The stores' superuser credentials (k8s/components/in-cluster-stores): only the stores read them.
STORE_ROOT_SECRETS = {"alpes-mongo-root", "alpes-postgres-superuser"}
STORE_ROOT_KEYS = {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD", "POSTGRES_PASSWORD", "POSTGRES_USER"}
STORE_URLS = {"ALPES_MONGO_URL": "alpes-mongo", "ALPES_POSTGRES_URL": "alpes-postgres"}
ROOT_LIKE_USERS = {"", "root", "admin", "postgres", "mongodb", "cloudsqlsuperuser"}
# The roles a MongoDB init script grants: `role: "name"`.
MONGO_ROLE = re.compile(r"""\brole\s*:\s*["'](\w+)["']""")


def env_entries(c: dict) -> dict[str, dict]:
    return {e.get("name"): e for e in c.get("env") or []}


def secret_ref(entry: dict | None) -> dict | None:
    return _get(entry, "valueFrom", "secretKeyRef")


def walk_strings(node, path: str = ""):
    """Every string in a parsed YAML document, with where it is."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def cmd_secrets(args: argparse.Namespace) -> list[str]:
    """No credential in the manifests or Helm values: Secrets are referenced (secretKeyRef), never
    written, and no string holds a password-bearing URL or a JWT."""
    problems: list[str] = []
    docs = load_all(args.files)
    refs = 0
    for path, doc in docs:
        kind, name = doc.get("kind"), _get(doc, "metadata", "name")
        what = f"{path}: {kind}/{name}" if kind else path
        if kind == "Secret":
            problems.append(f"{what}: a Secret in the manifests; secrets are created in the cluster, never committed")
        for where, value in walk_strings(doc):
            if URL_WITH_PASSWORD.search(value):
                problems.append(f"{what}: {where} holds a URL with a password")
            if JWT.search(value):
                problems.append(f"{what}: {where} holds a JWT")
        if kind == "ConfigMap":
            for key in doc.get("data") or {}:
                if CREDENTIAL_NAME.search(key) and not key.endswith((".js", ".sh", ".sql")):
                    problems.append(f"{what}: key {key} looks like a credential; put it in a Secret")
        spec = pod_spec(doc)
        if spec is None:
            continue
        for c in containers(spec):
            for entry in c.get("env") or []:
                env_name = entry.get("name", "")
                if not CREDENTIAL_NAME.search(env_name):
                    continue
                if secret_ref(entry):
                    refs += 1
                else:
                    problems.append(
                        f"{what} container '{c.get('name')}': {env_name} is not from a secretKeyRef"
                    )
    if not problems:
        print(f"secrets: {len(docs)} document(s): no Secret, no inline credential; {refs} credential(s) from secretKeyRef")
    return problems


def cmd_service_tokens(args: argparse.Namespace) -> list[str]:
    """Every service gets the API tokens and its own role's Pulsar token from Secrets; the
    bootstrap Job alone gets the admin's; compose gives every service ALPES_API_TOKEN."""
    problems: list[str] = []
    seen: set[str] = set()
    for path, doc in load_all(args.manifests):
        spec = pod_spec(doc)
        if spec is None:
            continue
        kind, name = doc.get("kind"), _get(doc, "metadata", "name")
        for c in containers(spec):
            binary = binary_of_image(c.get("image", ""))
            where = f"{path}: {kind}/{name} container '{c.get('name')}'"
            env = env_entries(c)
            for entry in env.values():
                ref = secret_ref(entry) or {}
                if ref.get("name") == "alpes-pulsar-token-admin" and not (kind == "Job" and binary == "alpes"):
                    problems.append(f"{where}: holds the Pulsar admin token (only the bootstrap Job may)")
            if kind == "Job" and binary == "alpes":
                ref = secret_ref(env.get("ALPES_PULSAR_TOKEN"))
                if (ref or {}).get("name") != "alpes-pulsar-token-admin" or (ref or {}).get("key") != "ALPES_PULSAR_TOKEN":
                    problems.append(f"{where}: ALPES_PULSAR_TOKEN is not secretKeyRef alpes-pulsar-token-admin/ALPES_PULSAR_TOKEN")
            if kind != "Deployment" or binary not in SERVICE_BINARIES:
                continue
            seen.add(binary)
            wants = {
                "ALPES_API_TOKEN": ("alpes-api-token", False),
                "ALPES_API_TOKENS": ("alpes-api-tokens", True),
                "ALPES_PULSAR_TOKEN": (f"alpes-pulsar-token-{binary}", False),
            }
            for var, (secret, optional) in wants.items():
                ref = secret_ref(env.get(var))
                if ref is None:
                    problems.append(f"{where}: {var} is not from a secretKeyRef")
                    continue
                if ref.get("name") != secret or ref.get("key") != var:
                    problems.append(f"{where}: {var} comes from {ref.get('name')}/{ref.get('key')}, not {secret}/{var}")
                if bool(ref.get("optional", False)) != optional:
                    problems.append(f"{where}: {var} secretKeyRef must {'' if optional else 'not '}be optional")
    for missing in sorted(SERVICE_BINARIES - seen):
        problems.append(f"no Deployment of {missing} in the manifests")
    if args.compose:
        compose = yaml.safe_load(Path(args.compose).read_text())
        for name, svc in (compose.get("services") or {}).items():
            build = svc.get("build")
            target = build.get("target") if isinstance(build, dict) else None
            if target in SERVICE_BINARIES and "ALPES_API_TOKEN" not in (svc.get("environment") or {}):
                problems.append(f"{args.compose}: service '{name}' gets no ALPES_API_TOKEN")
    if not problems:
        print(
            f"service-tokens: {len(seen)} service(s) get ALPES_API_TOKEN, ALPES_API_TOKENS (optional) and their own "
            "ALPES_PULSAR_TOKEN from secrets; the admin token goes to the bootstrap Job only"
        )
    return problems


def cmd_store_credentials(args: argparse.Namespace) -> list[str]:
    """The services (and the bootstrap Job) never hold a store's superuser credentials: their store
    URLs come from the application users' secrets, and the root secrets reach the stores only."""
    problems: list[str] = []
    checked = 0
    for path, doc in load_all(args.manifests):
        spec = pod_spec(doc)
        if spec is None:
            continue
        kind, name = doc.get("kind"), _get(doc, "metadata", "name")
        is_store = _get(doc, "metadata", "labels", "app.kubernetes.io/component") == "store"
        for c in containers(spec):
            where = f"{path}: {kind}/{name} container '{c.get('name')}'"
            binary = binary_of_image(c.get("image", ""))
            env = env_entries(c)
            for entry in env.values():
                ref = secret_ref(entry) or {}
                if ref.get("name") in STORE_ROOT_SECRETS and not is_store:
                    problems.append(f"{where}: reads secret {ref['name']} (a store's superuser)")
            if binary not in BINARIES:
                continue
            checked += 1
            for var in sorted(STORE_ROOT_KEYS & set(env)):
                problems.append(f"{where}: sets {var}, a store superuser's credential")
            for var, secret in STORE_URLS.items():
                if var not in env:
                    continue
                ref = secret_ref(env[var])
                if ref is None or ref.get("name") != secret or ref.get("key") != var:
                    problems.append(f"{where}: {var} must come from secretKeyRef {secret}/{var} (the application user's)")
    if not problems:
        print(f"store-credentials: {checked} alpes container(s): store URLs from the application users' secrets, no superuser credential")
    return problems


def _plain(env: dict, var: str) -> str | None:
    entry = env.get(var)
    return entry.get("value") if entry and "valueFrom" not in entry else None


def cmd_stores(args: argparse.Namespace) -> list[str]:
    """MongoDB and Postgres run as non-root (the images' uid 999), and the users the services
    connect as are least-privilege: MongoDB's readWrite on the services' databases only,
    Postgres's the database owner without superuser, CREATEDB, CREATEROLE or replication."""
    problems: list[str] = []
    docs = load_all(args.manifests)
    configmaps = {_get(d, "metadata", "name"): d for _, d in docs if d.get("kind") == "ConfigMap"}
    databases = {
        v for _, d in docs if d.get("kind") == "ConfigMap"
        for k, v in (d.get("data") or {}).items() if re.fullmatch(r"ALPES_[A-Z]+_DATABASE", k)
    }
    stores = {}
    for path, doc in docs:
        if doc.get("kind") == "StatefulSet" and _get(doc, "metadata", "name") in ("mongo", "postgres"):
            stores.setdefault(doc["metadata"]["name"], (path, doc))
    for want in ("mongo", "postgres"):
        if want not in stores:
            problems.append(f"no StatefulSet {want} in {', '.join(args.manifests)}")
    for store, (path, doc) in stores.items():
        where = f"{path}: StatefulSet/{store}"
        spec = pod_spec(doc) or {}
        psc = spec.get("securityContext") or {}
        for c in containers(spec):
            csc = c.get("securityContext") or {}
            user = csc.get("runAsUser", psc.get("runAsUser"))
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                problems.append(f"{where} container '{c['name']}': runAsNonRoot is not true")
            if not isinstance(user, int) or user == 0:
                problems.append(f"{where} container '{c['name']}': runAsUser is {user!r}, not a non-root uid (999)")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where} container '{c['name']}': allowPrivilegeEscalation is not false")
        c = (spec.get("containers") or [{}])[0]
        env = env_entries(c)
        scripts = {}
        for mount in c.get("volumeMounts") or []:
            if mount.get("mountPath") != "/docker-entrypoint-initdb.d":
                continue
            for vol in spec.get("volumes") or []:
                cm = _get(vol, "configMap", "name")
                if vol.get("name") == mount.get("name") and cm in configmaps:
                    scripts.update(configmaps[cm].get("data") or {})
        if not scripts:
            problems.append(f"{where}: no init script from a ConfigMap in /docker-entrypoint-initdb.d (the application user)")
        text = "\n".join(scripts.values())
        if store == "mongo":
            app = _plain(env, "MONGO_APP_USERNAME")
            if app is None or app.lower() in ROOT_LIKE_USERS:
                problems.append(f"{where}: MONGO_APP_USERNAME is {app!r}: a named, non-root user, as a plain value")
            for var, secret in (("MONGO_INITDB_ROOT_USERNAME", "alpes-mongo-root"), ("MONGO_INITDB_ROOT_PASSWORD", "alpes-mongo-root"),
                                ("MONGO_APP_PASSWORD", "alpes-mongo")):
                if (secret_ref(env.get(var)) or {}).get("name") != secret:
                    problems.append(f"{where}: {var} is not from secret {secret}")
            granted = set(filter(None, (_plain(env, "MONGO_APP_DATABASES") or "").split(",")))
            if granted != databases:
                problems.append(
                    f"{where}: MONGO_APP_DATABASES grants {sorted(granted)}, the services use {sorted(databases)}"
                )
            roles = set(MONGO_ROLE.findall(text))
            if scripts and roles != {"readWrite"}:
                problems.append(f"{where}: the init script grants {sorted(roles)}; readWrite (per database) only")
        else:
            superuser, app = _plain(env, "POSTGRES_USER"), _plain(env, "POSTGRES_APP_USERNAME")
            if app is None or app.lower() in ROOT_LIKE_USERS or app == superuser:
                problems.append(f"{where}: POSTGRES_APP_USERNAME is {app!r}: a named role, not the superuser {superuser!r}")
            for var, secret in (("POSTGRES_PASSWORD", "alpes-postgres-superuser"), ("POSTGRES_APP_PASSWORD", "alpes-postgres")):
                if (secret_ref(env.get(var)) or {}).get("name") != secret:
                    problems.append(f"{where}: {var} is not from secret {secret}")
            alter = re.search(r"ALTER ROLE[^;]*;", text)
            needed = ("LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS")
            if scripts and (not alter or any(not re.search(rf"\b{w}\b", alter.group(0)) for w in needed)):
                problems.append(f"{where}: the init script's ALTER ROLE must say {' '.join(needed)}")
    if not problems:
        print(
            f"stores: {', '.join(sorted(stores))} run non-root; MongoDB user readWrite on {len(databases)} database(s) only, "
            "Postgres role without superuser"
        )
    return problems


PULSAR_SUPERUSERS = {"broker": "broker-admin", "proxy": "proxy-admin", "client": "alpes-admin"}
PULSAR_AUTH_EXPECTED = {
    ("auth", "authentication", "enabled"): True,
    ("auth", "authentication", "provider"): "jwt",
    ("auth", "authentication", "jwt", "enabled"): True,
    ("auth", "authentication", "jwt", "usingSecretKey"): True,
    ("auth", "authorization", "enabled"): True,
    ("auth", "useProxyRoles"): True,
}
# Broker/proxy settings that would undo the chart's authentication and authorization.
PULSAR_AUTH_KEYS = re.compile(
    r"^(PULSAR_PREFIX_)?(anonymousUserRole|authenticationEnabled|authorizationEnabled|superUserRoles|proxyRoles|"
    r"authenticationProviders|authorizationProvider|tokenSecretKey|tokenPublicKey)$"
)


def cmd_pulsar_auth(args: argparse.Namespace) -> list[str]:
    """Token authentication and authorization on, the superusers the broker, the proxy and
    alpes-admin only, and no configData that reopens it (an anonymous role, auth switched off)."""
    values = yaml.safe_load(Path(args.file).read_text())
    problems = []
    for keys, want in PULSAR_AUTH_EXPECTED.items():
        got = _get(values, *keys)
        if got != want:
            problems.append(f"{args.file}: {'.'.join(keys)} is {got!r}, must be {want!r}")
    superusers = {k: v for k, v in (_get(values, "auth", "superUsers") or {}).items() if v}
    if superusers != PULSAR_SUPERUSERS:
        problems.append(f"{args.file}: auth.superUsers is {superusers}, must be exactly {PULSAR_SUPERUSERS}")
    for component in ("broker", "proxy", "zookeeper", "bookkeeper", "toolset"):
        for key in _get(values, component, "configData") or {}:
            if PULSAR_AUTH_KEYS.match(key):
                problems.append(f"{args.file}: {component}.configData.{key} overrides the chart's authentication")
    if not problems:
        print("pulsar-auth: JWT (secret key) authentication and authorization on; superusers "
              f"{', '.join(PULSAR_SUPERUSERS.values())}; no anonymous role")
    return problems


def _selects(selector: dict | None, labels: dict) -> bool:
    """Whether a LabelSelector selects a pod with these labels (an empty selector selects all)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


PULSAR_POD_LABELS = {
    component: {"app": "pulsar", "release": "pulsar", "component": component}
    for component in ("proxy", "broker", "bookie", "zookeeper")
}


def cmd_pulsar_netpol(args: argparse.Namespace) -> list[str]:
    """NetworkPolicies of namespace pulsar: every component selected with Ingress; each allowed
    peer is a pod of the pulsar namespace or, for the proxy only, an alpes pod; the proxy lets
    the alpes pods in on 6650 and 8080."""
    problems: list[str] = []
    policies = [(p, d) for p, d in load_all([args.file]) if d.get("kind") == "NetworkPolicy"]
    for path, pol in policies:
        ns = _get(pol, "metadata", "namespace")
        if ns not in (None, "pulsar"):
            problems.append(f"{path}: NetworkPolicy/{pol['metadata']['name']} is for namespace {ns}, not pulsar")
    alpes_ports: set[int] = set()
    for component, labels in PULSAR_POD_LABELS.items():
        selecting = [
            (path, pol) for path, pol in policies
            if _selects(_get(pol, "spec", "podSelector"), labels) and "Ingress" in (_get(pol, "spec", "policyTypes") or [])
        ]
        if not selecting:
            problems.append(f"{args.file}: no NetworkPolicy with Ingress selects the {component} pods ({labels})")
        for path, pol in selecting:
            where = f"{path}: NetworkPolicy/{pol['metadata']['name']}"
            for rule in _get(pol, "spec", "ingress") or []:
                peers = rule.get("from")
                if not peers:
                    problems.append(f"{where}: an ingress rule without `from` lets every pod and address in")
                    continue
                for peer in peers:
                    if "ipBlock" in peer:
                        problems.append(f"{where}: an ipBlock peer ({peer['ipBlock'].get('cidr')})")
                        continue
                    ns_sel = peer.get("namespaceSelector")
                    if ns_sel is None:
                        continue  # pods of the pulsar namespace
                    if ns_sel.get("matchLabels") != {"kubernetes.io/metadata.name": "alpes"} or ns_sel.get("matchExpressions"):
                        problems.append(f"{where}: namespaceSelector {ns_sel} admits namespaces other than alpes")
                    elif component != "proxy":
                        problems.append(f"{where}: the {component} admits namespace alpes; the alpes pods go through the proxy")
                    else:
                        ports = {p.get("port") for p in rule.get("ports") or []}
                        if not rule.get("ports"):
                            problems.append(f"{where}: the alpes pods may reach every port of the proxy")
                        alpes_ports |= ports
    if {6650, 8080} - alpes_ports:
        problems.append(f"{args.file}: the proxy does not admit the alpes pods on 6650 and 8080 (admits {sorted(alpes_ports)})")
    if not problems:
        print(f"pulsar-netpol: {len(policies)} NetworkPolicies: proxy from alpes (6650, 8080) and namespace pulsar; "
              "broker, bookie, ZooKeeper from namespace pulsar only")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="ALPES_* variables given to containers vs. read by binaries")
    env.add_argument("--compose")
    env.add_argument("--manifests", nargs="*")
    compose = sub.add_parser("compose", help="docker-compose.yml consistency")
    compose.add_argument("file")
    compose.add_argument("--dockerfile")
    policy = sub.add_parser("policy", help="security/operability rules on rendered manifests")
    policy.add_argument("manifests", nargs="+")
    policy.add_argument("--require-namespace", action="store_true")
    pulsar = sub.add_parser("pulsar-values", help="Pulsar Helm values alpes relies on")
    pulsar.add_argument("file")
    secrets = sub.add_parser("secrets", help="no Secret and no inline credential in manifests or values")
    secrets.add_argument("files", nargs="+")
    tokens = sub.add_parser("service-tokens", help="API and Pulsar tokens of the services, from secrets")
    tokens.add_argument("manifests", nargs="+")
    tokens.add_argument("--compose")
    store_creds = sub.add_parser("store-credentials", help="no store superuser credential in the services")
    store_creds.add_argument("manifests", nargs="+")
    stores = sub.add_parser("stores", help="MongoDB/Postgres non-root, least-privilege application users")
    stores.add_argument("manifests", nargs="+")
    pulsar_auth = sub.add_parser("pulsar-auth", help="Pulsar Helm values: authentication and authorization")
    pulsar_auth.add_argument("file")
    pulsar_netpol = sub.add_parser("pulsar-netpol", help="NetworkPolicies of namespace pulsar")
    pulsar_netpol.add_argument("file")
    args = parser.parse_args()
    commands = {
        "env": cmd_env,
        "compose": cmd_compose,
        "policy": cmd_policy,
        "pulsar-values": cmd_pulsar_values,
        "secrets": cmd_secrets,
        "service-tokens": cmd_service_tokens,
        "store-credentials": cmd_store_credentials,
        "stores": cmd_stores,
        "pulsar-auth": cmd_pulsar_auth,
        "pulsar-netpol": cmd_pulsar_netpol,
    }
    problems = commands[args.command](args)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
