#!/usr/bin/env python3
"""Static checks of the alpes deployment files; scripts/validate-deploy.sh runs them.

  check_deploy.py env      --compose docker-compose.yml --manifests rendered.yaml...
  check_deploy.py compose  docker-compose.yml --dockerfile Dockerfile
  check_deploy.py policy   rendered.yaml...
  check_deploy.py pulsar-values k8s/pulsar/values-gke-small.yaml

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
    args = parser.parse_args()
    commands = {"env": cmd_env, "compose": cmd_compose, "policy": cmd_policy, "pulsar-values": cmd_pulsar_values}
    problems = commands[args.command](args)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
