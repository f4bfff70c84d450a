#!/usr/bin/env bash
# alpes-healthcheck [PATH] — exits 0 when GET http://127.0.0.1:<port><PATH> answers 200.
#
# Installed into the runtime image as /usr/local/bin/alpes-healthcheck for docker-compose
# healthchecks, so the image needs no curl: bash's /dev/tcp speaks the one request. The port
# comes from ALPES_HTTP_ADDR (the address the service listens on); PATH defaults to /readyz.
# Kubernetes does not use it (its probes are httpGet).
set -euo pipefail

path="${1:-/readyz}"
addr="${ALPES_HTTP_ADDR:?ALPES_HTTP_ADDR is not set}"
port="${addr##*:}"

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
status=""
IFS= read -r -t 5 status <&3 || true
# Drain the rest (the server closes after the body) so it never writes into a reset socket.
while IFS= read -r -t 2 _ <&3; do :; done
exec 3<&- 3>&-
status="${status%$'\r'}"
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
esac
printf 'alpes-healthcheck: GET %s -> %s\n' "$path" "${status:-no answer}" >&2
exit 1
