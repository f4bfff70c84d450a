#!/usr/bin/env python3
"""Signs a Pulsar token: an HS256 JWT {"sub": ROLE}, no expiry, with the raw secret key in
KEY_FILE (what the broker's tokenSecretKey=file:// reads, and `bin/pulsar tokens create
--secret-key` signs with). Used by scripts/stack.sh (local stack) and scripts/deploy-gke.sh.

    sign-token.py KEY_FILE ROLE OUT [HEADER_OUT]

Writes the token to OUT (mode 600; left untouched when it already holds this token) and, with
HEADER_OUT, an `Authorization: Bearer` header line for `curl -H @file` (the token stays out of
`ps`). The key and the token never appear on a command line.
"""

import base64
import hashlib
import hmac
import json
import os
import sys


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def part(obj) -> bytes:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def sign(key: bytes, role: str) -> bytes:
    signed = part({"alg": "HS256"}) + b"." + part({"sub": role})
    return signed + b"." + b64(hmac.new(key, signed, hashlib.sha256).digest())


def write(path: str, data: bytes) -> None:
    """Writes `data` to `path` with mode 600, atomically, unless it already holds it."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    key_path, role, out = argv[1:4]
    with open(key_path, "rb") as f:
        key = f.read()
    if len(key) < 32:
        print(f"{key_path}: an HS256 key needs at least 32 bytes", file=sys.stderr)
        return 1
    token = sign(key, role)
    write(out, token)
    if len(argv) == 5:
        write(argv[4], b"Authorization: Bearer " + token + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
