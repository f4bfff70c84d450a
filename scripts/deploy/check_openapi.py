#!/usr/bin/env python3
"""Checks the services' OpenAPI documents before they ship.

Each service serves a hand-written document verbatim (`services/<service>/openapi.json`,
embedded with include_str!), so nothing at build time notices a broken one. For each document
this checks:

1. the document against the OpenAPI 3.1 specification (openapi-spec-validator);
2. every example against its schema: `example` and `examples` of every schema and subschema
   under `components.schemas`, and of every parameter, header and media type (request and
   response bodies), so the examples clients copy are true;
3. the authentication contract: the public operations (the probes `GET /healthz`, `/readyz`,
   `/metrics`, `/openapi.json`, and `POST /interactions`) declare `security: []` and no 401 or
   403; every other operation declares `security` with the `bearer` scheme (an http bearer
   scheme) naming its scopes, among those the scheme's description documents (`read`,
   `operate`, `ingest`), and answers 401 (with a `WWW-Authenticate` header) and 403, each with
   the `Error` schema as its JSON body; every scheme a requirement names is declared; a
   scheme taking the token from the query serves only `GET /sagas/{id}/view`.

Checks all four documents by default, or each PATH given. Prints one line per valid document
and each reason otherwise; exits 0 when every document passes, 1 when one breaks a check, 2
when one cannot be read or parsed, or the validator is not installed.

    python3 -m venv ~/.cache/alpes/deploy-venv   # once
    ~/.cache/alpes/deploy-venv/bin/pip install openapi-spec-validator
    ~/.cache/alpes/deploy-venv/bin/python scripts/deploy/check_openapi.py [PATH...]
"""

import json
import sys
from pathlib import Path

try:
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import OpenAPIV31SpecValidator
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012
except ImportError as missing:
    print(
        f"check_openapi: {missing}; install the validator into the venv running this script:\n"
        f"  {sys.executable} -m pip install openapi-spec-validator",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("tracking", "attribution", "commission", "marketing")
DEFAULTS = [ROOT / "services" / service / "openapi.json" for service in SERVICES]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# (method, path) of the operations anyone may call: the probes and tracking's intake.
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/interactions"),
}
# The operations that also take the token as a query parameter (a browser opening a link).
QUERY_TOKEN = {("get", "/sagas/{id}/view")}
BEARER = "bearer"
SCOPES = ("read", "operate", "ingest")
ERROR_SCHEMA = "#/components/schemas/Error"

# Keywords whose value is a subschema, a list of them, or a map of them (JSON Schema 2020-12).
ONE_SCHEMA = (
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def location(path) -> str:
    """`paths['/sagas'].get.responses`: readable, and unambiguous for keys holding `/`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(document)"


def pointer(path) -> str:
    """The JSON pointer fragment of `path`: `#/paths/~1sagas/get`."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in path)
    return "#/" + "/".join(escaped) if path else "#"


def resolve(document: dict, node, path):
    """`node` with its local `$ref`s followed: (the target, the target's path)."""
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            return node, path
        seen.add(ref)
        path = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
        node = document
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return None, path
    return node, path


def spec_errors(document: dict) -> list[str]:
    if not str(document.get("openapi", "")).startswith("3.1"):
        return [f"openapi: expected 3.1.x, found {document.get('openapi')!r}"]
    try:
        errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    except Unresolvable as e:
        # The validator stops at the first `$ref` that points nowhere.
        return [f"unresolvable $ref: {e.ref}"]
    return [f"{location(e.path)}: {e.message}" for e in errors]


def schema_examples(schema, path):
    """(example, path of the schema, path of the example) for `schema` and its subschemas."""
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        yield schema["example"], path, [*path, "example"]
    if isinstance(schema.get("examples"), list):
        for i, example in enumerate(schema["examples"]):
            yield example, path, [*path, "examples", i]
    for keyword in ONE_SCHEMA:
        yield from schema_examples(schema.get(keyword), [*path, keyword])
    for keyword in SCHEMA_LISTS:
        if isinstance(schema.get(keyword), list):
            for i, sub in enumerate(schema[keyword]):
                yield from schema_examples(sub, [*path, keyword, i])
    for keyword in SCHEMA_MAPS:
        if isinstance(schema.get(keyword), dict):
            for name, sub in schema[keyword].items():
                yield from schema_examples(sub, [*path, keyword, name])


def with_schema_examples(document: dict):
    """(example, path of its schema, path of the example) of every parameter, header and media
    type of the document: their own `example` or `examples[*].value`, and those inside their
    schema when it is written there rather than in `components.schemas`."""

    def of(holder, path):
        if not isinstance(holder, dict) or not isinstance(holder.get("schema"), dict):
            return
        schema_path = [*path, "schema"]
        if "example" in holder:
            yield holder["example"], schema_path, [*path, "example"]
        if isinstance(holder.get("examples"), dict):
            for name, example in holder["examples"].items():
                example, at = resolve(document, example, [*path, "examples", name])
                if isinstance(example, dict) and "value" in example:
                    yield example["value"], schema_path, [*at, "value"]
        if "$ref" not in holder["schema"]:
            yield from schema_examples(holder["schema"], schema_path)

    def headers_and_content(holder, path):
        for name, header in (holder.get("headers") or {}).items():
            yield from of(header, [*path, "headers", name])
        for media, content in (holder.get("content") or {}).items():
            yield from of(content, [*path, "content", media])

    components = document.get("components", {})
    for kind in ("parameters", "headers"):
        for name, holder in components.get(kind, {}).items():
            yield from of(holder, ["components", kind, name])
    for kind in ("responses", "requestBodies"):
        for name, holder in components.get(kind, {}).items():
            yield from headers_and_content(holder, ["components", kind, name])
    for route, item in document.get("paths", {}).items():
        for i, parameter in enumerate(item.get("parameters", [])):
            yield from of(parameter, ["paths", route, "parameters", i])
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            at = ["paths", route, method]
            for i, parameter in enumerate(operation.get("parameters", [])):
                yield from of(parameter, [*at, "parameters", i])
            if isinstance(operation.get("requestBody"), dict):
                yield from headers_and_content(operation["requestBody"], [*at, "requestBody"])
            for status, response in (operation.get("responses") or {}).items():
                if isinstance(response, dict):
                    yield from headers_and_content(response, [*at, "responses", status])


def example_errors(document: dict, base: str) -> list[str]:
    """Every example must satisfy the schema it illustrates."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource(base, resource)
    found = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        found.extend(schema_examples(schema, ["components", "schemas", name]))
    found.extend(with_schema_examples(document))
    reasons = []
    for example, schema_path, example_path in found:
        ref = {"$ref": base + pointer(schema_path)}
        validator = Draft202012Validator(
            ref, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        try:
            errors = list(validator.iter_errors(example))
        except Unresolvable as e:
            reasons.append(f"{location(example_path)}: unresolvable $ref: {e.ref}")
            continue
        for e in errors:
            reasons.append(f"{location([*example_path, *e.path])}: {e.message}")
    return reasons


def error_body(document: dict, response, path) -> str | None:
    """Why `response` is not an error answered with the `Error` schema as JSON, if it is not."""
    response, _ = resolve(document, response, path)
    if not isinstance(response, dict):
        return "is not a response object"
    schema = (response.get("content") or {}).get("application/json", {}).get("schema")
    if not isinstance(schema, dict) or schema.get("$ref") != ERROR_SCHEMA:
        return f"does not answer application/json with the `{ERROR_SCHEMA}` schema"
    return None


def security_errors(document: dict) -> list[str]:
    """The authentication contract (see the module's documentation)."""
    reasons = []
    schemes = document.get("components", {}).get("securitySchemes", {})
    bearer = schemes.get(BEARER)
    if not (
        isinstance(bearer, dict)
        and bearer.get("type") == "http"
        and str(bearer.get("scheme", "")).lower() == "bearer"
    ):
        reasons.append(
            f"components.securitySchemes.{BEARER}: must be declared, of type http, "
            "scheme bearer"
        )
        bearer = {}
    documented = [s for s in SCOPES if f"`{s}`" in str(bearer.get("description", ""))]
    if "security" in document:
        reasons.append(
            "security: declare it per operation, not for the whole document, so that "
            "each operation names its own scopes"
        )

    for route, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            at = ["paths", route, method]
            security = operation.get("security")
            responses = operation.get("responses") or {}
            if (method, route) in PUBLIC:
                if security != []:
                    reasons.append(f"{location([*at, 'security'])}: a public operation "
                                   "must declare `security: []`")
                for status in ("401", "403"):
                    if status in responses:
                        reasons.append(f"{location([*at, 'responses', status])}: a public "
                                       "operation answers no authentication error")
                continue

            if not isinstance(security, list) or not security:
                reasons.append(f"{location([*at, 'security'])}: missing; every operation "
                               f"but the public ones requires the `{BEARER}` scheme")
            else:
                named_bearer = False
                for i, requirement in enumerate(security):
                    if not isinstance(requirement, dict) or not requirement:
                        reasons.append(f"{location([*at, 'security', i])}: an empty "
                                       "requirement would make the operation public")
                        continue
                    for scheme, scopes in requirement.items():
                        where = location([*at, "security", i, scheme])
                        named_bearer = named_bearer or scheme == BEARER
                        if scheme not in schemes:
                            reasons.append(f"{where}: no such security scheme in "
                                           "components.securitySchemes")
                        elif (
                            schemes[scheme].get("type") == "apiKey"
                            and schemes[scheme].get("in") == "query"
                            and (method, route) not in QUERY_TOKEN
                        ):
                            reasons.append(f"{where}: a token in the query is refused here "
                                           "(only the HTML view takes one)")
                        if not isinstance(scopes, list) or not scopes:
                            reasons.append(f"{where}: must name the scope(s) it needs, "
                                           f"among {', '.join(SCOPES)}")
                            continue
                        for scope in scopes:
                            if scope not in SCOPES:
                                reasons.append(f"{where}: unknown scope {scope!r}; the "
                                               f"scopes are {', '.join(SCOPES)}")
                            elif scheme == BEARER and scope not in documented:
                                reasons.append(f"{where}: scope {scope!r} is not described "
                                               f"in components.securitySchemes.{BEARER}"
                                               ".description")
                if not named_bearer:
                    reasons.append(f"{location([*at, 'security'])}: must accept the "
                                   f"`{BEARER}` scheme")

            for status in ("401", "403"):
                where = [*at, "responses", status]
                if status not in responses:
                    reasons.append(f"{location(where)}: missing; an operation that needs a "
                                   "token answers 401 (no or unknown token) and 403 (a "
                                   "token without the scope)")
                    continue
                problem = error_body(document, responses[status], where)
                if problem:
                    reasons.append(f"{location(where)}: {problem}")
                elif status == "401":
                    response, _ = resolve(document, responses[status], where)
                    names = {name.lower() for name in response.get("headers") or {}}
                    if "www-authenticate" not in names:
                        reasons.append(f"{location(where)}: must declare the "
                                       "`WWW-Authenticate` header")
    return reasons


def check(path: Path) -> int:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"{path}: cannot read the document: {e}", file=sys.stderr)
        return 2
    if not isinstance(document, dict):
        print(f"{path}: the document is not a JSON object", file=sys.stderr)
        return 2
    reasons = spec_errors(document)
    if not reasons:
        base = path.resolve().as_uri()
        reasons = example_errors(document, base) + security_errors(document)
    for reason in reasons:
        print(f"{path}: {reason}", file=sys.stderr)
    if reasons:
        return 1
    operations = [
        (method, route)
        for route, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]
    public = sum(1 for operation in operations if operation in PUBLIC)
    print(
        f"{path}: valid OpenAPI {document['openapi']}, {len(operations)} operations "
        f"({public} public, {len(operations) - public} behind the bearer token)"
    )
    return 0


def main() -> int:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(__doc__.strip())
        return 0
    paths = [Path(arg) for arg in sys.argv[1:]] or DEFAULTS
    return max(check(path) for path in paths)


if __name__ == "__main__":
    sys.exit(main())
