#!/usr/bin/env python3
"""Checks the marketing service's OpenAPI document before it ships.

The document is hand-written and served verbatim (`services/marketing/openapi.json`, embedded
with include_str!), so nothing at build time notices a broken one. This validates it against
the OpenAPI 3.1 specification (openapi-spec-validator), then validates every schema's `example`
against that schema, so the examples clients copy are true. Exits 0 when both pass; otherwise
prints each reason and exits 1 (2 when the file cannot be read or parsed, or the validator is
not installed).

    python3 -m venv ~/.cache/alpes/deploy-venv   # once
    ~/.cache/alpes/deploy-venv/bin/pip install openapi-spec-validator
    ~/.cache/alpes/deploy-venv/bin/python scripts/deploy/check_openapi.py [PATH]
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

DEFAULT = Path(__file__).resolve().parents[2] / "services/marketing/openapi.json"
BASE = "urn:alpes:marketing:openapi"


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


def spec_errors(document: dict) -> list[str]:
    if not str(document.get("openapi", "")).startswith("3.1"):
        return [f"openapi: expected 3.1.x, found {document.get('openapi')!r}"]
    try:
        errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    except Unresolvable as e:
        # The validator stops at the first `$ref` that points nowhere.
        return [f"unresolvable $ref: {e.ref}"]
    return [f"{location(e.path)}: {e.message}" for e in errors]


def example_errors(document: dict) -> list[str]:
    """Every `components.schemas.X.example` must satisfy schema X."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource(BASE, resource)
    reasons = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if "example" not in schema:
            continue
        ref = {"$ref": f"{BASE}#/components/schemas/{name}"}
        validator = Draft202012Validator(ref, registry=registry)
        for e in validator.iter_errors(schema["example"]):
            at = location(["components", "schemas", name, "example", *e.path])
            reasons.append(f"{at}: {e.message}")
    return reasons


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"{path}: cannot read the document: {e}", file=sys.stderr)
        return 2
    if not isinstance(document, dict):
        print(f"{path}: the document is not a JSON object", file=sys.stderr)
        return 2
    reasons = spec_errors(document) or example_errors(document)
    for reason in reasons:
        print(f"{path}: {reason}", file=sys.stderr)
    if reasons:
        return 1
    operations = sum(
        1 for item in document["paths"].values() for method in item if method != "parameters"
    )
    print(f"{path}: valid OpenAPI {document['openapi']}, {operations} operations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
