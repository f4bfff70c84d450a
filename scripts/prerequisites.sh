#!/usr/bin/env bash
# Installs the build prerequisites the Rust workspace needs on a fresh Debian machine:
# protoc (the `pulsar` crate generates its protocol code) and OpenSSL headers.
# Idempotent: installs only what is missing.
set -euo pipefail

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v cargo >/dev/null 2>&1 || {
  echo "error: cargo is not installed; install Rust with rustup first" >&2
  exit 1
}

if ((${#missing[@]})); then
  echo "installing ${missing[*]} (apt)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
