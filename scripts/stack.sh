#!/usr/bin/env bash
# Local service stack for development and integration tests, loopback only:
#   - Apache Pulsar 4.0.8 standalone (Java broker, jars resolved by Maven from scripts/pulsar/pom.xml)
#   - FerretDB v1.24.2 (MongoDB wire protocol) with its SQLite backend
#   - PostgreSQL 15 (Debian package), a private cluster
#
# Usage: scripts/stack.sh up | down | status | env | restart-pulsar | restart-ferretdb | restart-postgres
#   restart-pulsar: SIGKILL the broker this stack started, start it again and wait until it is
#   ready (fault-injection tests use it: it must only ever hit this stack's own broker).
#   restart-ferretdb: the same for FerretDB; restart-postgres: an immediate stop (no checkpoint:
#   crash recovery at the next start, as after a crash) and a start (scripts/chaos.sh uses both).
#
# State (data, pid files, logs) lives in <repo>/.stack/ (or ALPES_STACK_DIR: a second stack beside
# the first, with its own ports, as the fault tests of scripts/test.sh run); downloads and builds are cached in
# ${ALPES_CACHE:-$HOME/.cache/alpes} (and Maven's ~/.m2, Go's module cache).
# Port overrides: ALPES_PULSAR_PORT (6650), ALPES_PULSAR_ADMIN_PORT (8080),
# ALPES_PULSAR_BOOKIE_PORT (3181), ALPES_MONGO_PORT (27017), ALPES_FERRETDB_DEBUG_PORT (8088),
# ALPES_POSTGRES_PORT (5433). Pulsar start timeout: ALPES_PULSAR_START_TIMEOUT (180 s).
#
# Pulsar authentication: ALPES_PULSAR_AUTH=token on `up` starts the broker with JWT token
# authentication and authorization (default: none, an open broker). The HS256 secret key and one
# token per role (alpes-admin, the superuser; alpes-tracking, alpes-attribution,
# alpes-commission, alpes-marketing) are made once and kept in <stack dir>/pulsar-auth/ (mode
# 600); `env` prints the admin token and that directory. A running stack remembers the setting:
# status, env, restart-pulsar and down need no ALPES_PULSAR_AUTH. Permissions per role are
# granted by `alpes bootstrap` (the plan in crates/bus/src/permissions.rs), not by this script.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
STACK="${ALPES_STACK_DIR:-$REPO/.stack}"
LOGS="$STACK/logs"
CACHE="${ALPES_CACHE:-$HOME/.cache/alpes}"

HOST=127.0.0.1
PULSAR_VERSION=4.0.8
FERRETDB_VERSION=v1.24.2
PG_MAJOR=15

PULSAR_PORT="${ALPES_PULSAR_PORT:-6650}"
PULSAR_ADMIN_PORT="${ALPES_PULSAR_ADMIN_PORT:-8080}"
PULSAR_BOOKIE_PORT="${ALPES_PULSAR_BOOKIE_PORT:-3181}"
PULSAR_START_TIMEOUT="${ALPES_PULSAR_START_TIMEOUT:-180}"
MONGO_PORT="${ALPES_MONGO_PORT:-27017}"
FERRETDB_DEBUG_PORT="${ALPES_FERRETDB_DEBUG_PORT:-8088}"
PG_PORT="${ALPES_POSTGRES_PORT:-5433}"

JAVA_HOME_17=/usr/lib/jvm/java-17-openjdk-amd64
PG_BIN="${ALPES_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"

PULSAR_LIB="$CACHE/pulsar-$PULSAR_VERSION/lib"
PULSAR_POM="$SCRIPT_DIR/pulsar/pom.xml"
PULSAR_DIR="$STACK/pulsar"
PULSAR_PID="$PULSAR_DIR/pulsar.pid"
PULSAR_LOG="$LOGS/pulsar.log"
# Token authentication (ALPES_PULSAR_AUTH=token): keys and tokens, made once and kept; the mode
# of the running broker, remembered until `down`.
PULSAR_AUTH_DIR="$STACK/pulsar-auth"
PULSAR_AUTH_MODE_FILE="$PULSAR_DIR/auth-mode"
PULSAR_ADMIN_ROLE=alpes-admin
PULSAR_ROLES=("$PULSAR_ADMIN_ROLE" alpes-tracking alpes-attribution alpes-commission alpes-marketing)
PULSAR_AUTH=none # resolved by resolve_pulsar_auth: none or token

# "-alpes1": built with the patch below; a different directory so an unpatched cache is rebuilt.
FERRETDB_HOME="$CACHE/ferretdb-$FERRETDB_VERSION-alpes1"
FERRETDB_BIN="$FERRETDB_HOME/bin/ferretdb"
FERRETDB_DIR="$STACK/ferretdb"
FERRETDB_PID="$FERRETDB_DIR/ferretdb.pid"
FERRETDB_LOG="$LOGS/ferretdb.log"

PG_DIR="$STACK/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCK="$PG_DIR/run"
PG_LOG="$LOGS/postgres.log"

log() { printf '[stack] %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE]: report a failed step, show the end of its log, exit non-zero.
die() {
  local msg="$1" logfile="${2:-}"
  printf '[stack] FAILED: %s\n' "$msg" >&2
  if [[ -n "$logfile" ]]; then
    printf '[stack] read the log: %s\n' "$logfile" >&2
    if [[ -s "$logfile" ]]; then
      printf '[stack] --- last lines of %s ---\n' "$logfile" >&2
      tail -n 25 "$logfile" >&2 || true
      printf '[stack] ---\n' >&2
    fi
  fi
  exit 1
}

usage() {
  echo "usage: $0 up | down | status | env | restart-pulsar | restart-ferretdb | restart-postgres" >&2
  exit 2
}

# ---------------------------------------------------------------- helpers

tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# pid_alive PIDFILE MARKER: the pid in PIDFILE is a live process whose command line contains MARKER.
pid_alive() {
  local pidfile="$1" marker="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(head -n 1 "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # No `| grep -q` here nor below: with pipefail, a writer killed by SIGPIPE fails the test.
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$marker"* ]]
}

pid_of() { head -n 1 "$1"; }

# port_free PORT NAME: fail if something else already listens on PORT.
port_free() {
  if tcp_open "$HOST" "$1"; then
    die "$2: port $HOST:$1 is already in use by a process this script did not start (override with the ALPES_*_PORT variables)"
  fi
}

# stop_pid NAME PIDFILE MARKER TIMEOUT: SIGTERM the process, wait, SIGKILL as the last resort.
# wait_gone PID SECONDS: waits up to SECONDS for process PID to exit; fails if it has not.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  ! kill -0 "$1" 2>/dev/null
}

stop_pid() {
  local name="$1" pidfile="$2" marker="$3" wait_s="$4" pid
  if ! pid_alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid="$(pid_of "$pidfile")"
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$wait_s"; then
    log "$name: still running after ${wait_s}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "$name: process $pid did not exit"
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# start_detached PIDFILE LOGFILE WORKDIR CMD...: run CMD in its own session, pid written to PIDFILE.
start_detached() {
  local pidfile="$1" logfile="$2" workdir="$3"
  shift 3
  local prog="$1"
  rm -f "$pidfile"
  # The daemon must not inherit the lock (fd 9) nor the caller's stdin/stdout/stderr.
  (
    cd "$workdir"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&-
  ) &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.1
  done
  die "could not start $prog" "$logfile"
}

rotate_log() {
  if [[ -s "$1" ]]; then mv -f "$1" "$1.1"; fi
  : >"$1"
}

# ---------------------------------------------------------------- prerequisites

APT_UPDATED=0
apt_install() {
  [[ $EUID -eq 0 ]] || die "missing Debian packages ($*) and not root: install them with apt-get install -y $*"
  local aptlog="$LOGS/apt.log"
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update >>"$aptlog" 2>&1 || die "apt-get update" "$aptlog"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$aptlog" 2>&1 \
    || die "apt-get install $*" "$aptlog"
}

deb_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

ensure_prereqs() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v runuser >/dev/null || missing+=(util-linux)
  [[ -x "$JAVA_HOME_17/bin/java" ]] || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [[ -x "$PG_BIN/pg_ctl" ]] || missing+=("postgresql-$PG_MAJOR")
  command -v psql >/dev/null || missing+=("postgresql-client-$PG_MAJOR")
  # Needed to build the `pulsar` crate (protoc, OpenSSL headers).
  local p
  for p in protobuf-compiler libssl-dev pkg-config; do
    deb_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  command -v go >/dev/null \
    || die "Go is not installed (FerretDB $FERRETDB_VERSION needs Go >= 1.24; Debian 12's golang-go is too old)"
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    log "creating system user postgres"
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres \
      || die "useradd postgres"
  fi
}

# ---------------------------------------------------------------- Pulsar

ensure_pulsar_lib() {
  local stamp="$PULSAR_LIB/.pom.sha256" want
  want="$(sha256sum "$PULSAR_POM" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  local mlog="$LOGS/maven.log" tmp="$PULSAR_LIB.tmp"
  log "pulsar: resolving Pulsar $PULSAR_VERSION jars with Maven (first time: a few minutes)"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  JAVA_HOME="$JAVA_HOME_17" mvn -B -Dstyle.color=never -f "$PULSAR_POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mlog" 2>&1 \
    || die "pulsar: Maven could not resolve the broker's classpath from $PULSAR_POM" "$mlog"
  [[ -f "$tmp/pulsar-broker-$PULSAR_VERSION.jar" ]] || die "pulsar: pulsar-broker jar missing after Maven" "$mlog"
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$PULSAR_LIB"
  mv "$tmp" "$PULSAR_LIB"
}

# ---------------------------------------------------------------- Pulsar authentication

# Sets PULSAR_AUTH (none or token): ALPES_PULSAR_AUTH if given, else what the stack remembers
# (the mode it was brought up with), else none. Switching the mode of a running broker is
# refused: its clients hold tokens, or do not.
resolve_pulsar_auth() {
  local requested="" remembered=""
  case "${ALPES_PULSAR_AUTH:-}" in
    "") ;;
    token) requested=token ;;
    none | off) requested=none ;;
    *) die "ALPES_PULSAR_AUTH=${ALPES_PULSAR_AUTH}: expected token (or none, the default)" ;;
  esac
  if [[ -s "$PULSAR_AUTH_MODE_FILE" ]]; then remembered="$(cat "$PULSAR_AUTH_MODE_FILE")"; fi
  case "$remembered" in "" | none | token) ;; *) die "pulsar: unknown auth mode '$remembered' in $PULSAR_AUTH_MODE_FILE" ;; esac
  if [[ -n "$requested" && "$requested" != "${remembered:-none}" ]] \
    && pid_alive "$PULSAR_PID" PulsarStandaloneStarter; then
    die "pulsar: this stack's broker runs with ALPES_PULSAR_AUTH=${remembered:-none}; run '$0 down' before switching to $requested"
  fi
  PULSAR_AUTH="${requested:-${remembered:-none}}"
}

# Makes, once, the HS256 secret key (raw bytes, as the broker's tokenSecretKey=file:// reads
# it) and a JWT per role ({"alg":"HS256"}, {"sub":"<role>"}, no expiry), each in a file of mode
# 600; plus the admin's Authorization header for curl (-H @file: the token stays out of `ps`).
# Tokens are a function of the key: made again only when missing or signed with another key.
ensure_pulsar_tokens() {
  command -v python3 >/dev/null || die "pulsar: python3 is needed to make the auth tokens (apt-get install python3)"
  (umask 077 && mkdir -p "$PULSAR_AUTH_DIR")
  chmod 700 "$PULSAR_AUTH_DIR"
  local key="$PULSAR_AUTH_DIR/secret.key" role header
  if [[ ! -s "$key" ]]; then
    (umask 077 && head -c 32 /dev/urandom >"$key.tmp" && mv "$key.tmp" "$key") \
      || die "pulsar: could not make the signing key $key"
  fi
  for role in "${PULSAR_ROLES[@]}"; do
    header=()
    [[ "$role" == "$PULSAR_ADMIN_ROLE" ]] && header=("$PULSAR_AUTH_DIR/admin.header")
    python3 "$SCRIPT_DIR/pulsar/sign-token.py" "$key" "$role" "$PULSAR_AUTH_DIR/$role.token" "${header[@]}" \
      || die "pulsar: could not make the token of $role in $PULSAR_AUTH_DIR"
  done
}

# The broker's admin token, when the stack runs with token authentication.
pulsar_admin_token() { cat "$PULSAR_AUTH_DIR/$PULSAR_ADMIN_ROLE.token"; }

# curl ARGS...: curl of the broker's web port, as the admin role when authentication is on.
pulsar_curl() {
  if [[ "$PULSAR_AUTH" == token ]]; then
    curl -H "@$PULSAR_AUTH_DIR/admin.header" "$@"
  else
    curl "$@"
  fi
}

# The broker settings of token authentication, appended to the generated standalone.conf.
pulsar_auth_conf() {
  sed -e "s|@AUTH_DIR@|$PULSAR_AUTH_DIR|g" -e "s|@ADMIN_ROLE@|$PULSAR_ADMIN_ROLE|g" \
    "$SCRIPT_DIR/pulsar/auth-token.conf"
}

pulsar_ready() {
  local clusters lookup
  clusters="$(pulsar_curl -sf --max-time 3 "http://$HOST:$PULSAR_ADMIN_PORT/admin/v2/clusters" 2>/dev/null)" || return 1
  [[ "$clusters" == *'"standalone"'* ]] || return 1
  lookup="$(pulsar_curl -sf --max-time 5 \
    "http://$HOST:$PULSAR_ADMIN_PORT/lookup/v2/topic/persistent/public/default/stack-healthcheck" 2>/dev/null)" || return 1
  [[ "$lookup" == *"pulsar://"* ]] || return 1
  # Writes and reads the broker's heartbeat topic: the bookie stores again (after a kill -9 its
  # old registration must lapse first, and until then no new topic or subscription can be made).
  [[ "$(pulsar_curl -sf --max-time 10 "http://$HOST:$PULSAR_ADMIN_PORT/admin/v2/brokers/health" 2>/dev/null)" == "ok" ]] || return 1
  tcp_open "$HOST" "$PULSAR_PORT"
}

start_pulsar() {
  if pid_alive "$PULSAR_PID" PulsarStandaloneStarter; then
    log "pulsar: already running (pid $(pid_of "$PULSAR_PID"))"
    return 0
  fi
  rm -f "$PULSAR_PID"
  port_free "$PULSAR_PORT" pulsar
  port_free "$PULSAR_ADMIN_PORT" pulsar-admin
  port_free "$PULSAR_BOOKIE_PORT" pulsar-bookie
  mkdir -p "$PULSAR_DIR/conf" "$PULSAR_DIR/data" "$PULSAR_DIR/tmp"
  local auth_sed=()
  if [[ "$PULSAR_AUTH" == token ]]; then
    ensure_pulsar_tokens
    # auth-token.conf says these again; no key appears twice in the generated file.
    auth_sed=(-e '/^authenticationEnabled=/d' -e '/^authorizationEnabled=/d')
  fi
  {
    sed -e "s/^bindAddress=.*/bindAddress=$HOST/" \
      -e "s/^advertisedAddress=.*/advertisedAddress=$HOST/" \
      -e "s/^brokerServicePort=.*/brokerServicePort=$PULSAR_PORT/" \
      -e "s/^webServicePort=.*/webServicePort=$PULSAR_ADMIN_PORT/" \
      "${auth_sed[@]}" \
      "$SCRIPT_DIR/pulsar/standalone.conf"
    if [[ "$PULSAR_AUTH" == token ]]; then pulsar_auth_conf; fi
  } >"$PULSAR_DIR/conf/standalone.conf"
  echo "$PULSAR_AUTH" >"$PULSAR_AUTH_MODE_FILE"
  rotate_log "$PULSAR_LOG"
  log "pulsar: starting standalone on $HOST:$PULSAR_PORT (admin $HOST:$PULSAR_ADMIN_PORT, auth: $PULSAR_AUTH)"
  local jvm=(
    -Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
    -Djava.net.preferIPv4Stack=true
    -Djava.io.tmpdir="$PULSAR_DIR/tmp"
    -Djute.maxbuffer=10485760
    -Dio.netty.tryReflectionSetAccessible=true
    # --add-opens flags from Pulsar's bin/pulsar for Java 9+
    --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
    --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED
    -Dlog4j.configurationFile="$SCRIPT_DIR/pulsar/log4j2.xml"
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.is.webapp=false
    -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver
    -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver
    -cp "$PULSAR_LIB/*"
  )
  local args=(
    --config "$PULSAR_DIR/conf/standalone.conf"
    --no-functions-worker --no-stream-storage
    --advertised-address "$HOST"
    --metadata-dir "$PULSAR_DIR/data/metadata"
    --bookkeeper-dir "$PULSAR_DIR/data/bookkeeper"
    --bookkeeper-port "$PULSAR_BOOKIE_PORT"
    --zookeeper-dir "$PULSAR_DIR/data/zookeeper"
  )
  start_detached "$PULSAR_PID" "$PULSAR_LOG" "$PULSAR_DIR" \
    "$JAVA_HOME_17/bin/java" "${jvm[@]}" org.apache.pulsar.PulsarStandaloneStarter "${args[@]}"
}

wait_pulsar() {
  local start=$SECONDS
  until pulsar_ready; do
    pid_alive "$PULSAR_PID" PulsarStandaloneStarter || die "pulsar: the broker process exited during start-up" "$PULSAR_LOG"
    if ((SECONDS - start >= PULSAR_START_TIMEOUT)); then
      die "pulsar: admin API / topic lookup not ready after ${PULSAR_START_TIMEOUT}s (process $(pid_of "$PULSAR_PID") left running; run '$0 down')" "$PULSAR_LOG"
    fi
    sleep 1
  done
  log "pulsar: ready (pid $(pid_of "$PULSAR_PID"))"
}

# ---------------------------------------------------------------- FerretDB

ensure_ferretdb_bin() {
  if [[ -x "$FERRETDB_BIN" && "$("$FERRETDB_BIN" --version 2>/dev/null)" == *"version: $FERRETDB_VERSION"* ]]; then
    return 0
  fi
  local blog="$LOGS/ferretdb-build.log" moddir src="$FERRETDB_HOME/src"
  log "ferretdb: building $FERRETDB_VERSION with Go (first time: a few minutes)"
  : >"$blog"
  # `go install ...@v1.24.2` builds a binary that panics at start: the module zip lacks the generated
  # build/version/version.txt. So: fetch the module, add that file, build from the copy.
  moddir="$(cd /tmp && GOWORK=off GOFLAGS='' GOTOOLCHAIN=local \
    go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" 2>>"$blog" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" \
    || die "ferretdb: go mod download failed" "$blog"
  [[ -n "$moddir" && -d "$moddir" ]] || die "ferretdb: go mod download gave no module directory" "$blog"
  rm -rf "$src"
  mkdir -p "$FERRETDB_HOME/bin"
  cp -r "$moddir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  echo "alpes-stack" >"$src/build/version/package.txt"
  # FerretDB 1.24's SQLite backend pushes `_id` equality down as `_ferretdb_sjson->'$._id' = ?`,
  # but creates the unique `_id` index on `_ferretdb_sjson->"_id"`; SQLite matches index
  # expressions literally, so every `_id` lookup scanned the whole collection (80 ms for a miss
  # on 2,000 commits, growing without bound). `->'_id'` is the same value and uses the index.
  local idcol="$src/internal/backends/sqlite/metadata/metadata.go"
  sed -i "s|IDColumn = DefaultColumn + \"->'\\\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$idcol"
  grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$idcol" \
    || die "ferretdb: the _id index patch no longer applies to $idcol" "$blog"
  (cd "$src" && GOWORK=off GOFLAGS='' GOTOOLCHAIN=local \
    go build -buildvcs=false -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) >>"$blog" 2>&1 \
    || die "ferretdb: go build failed" "$blog"
  mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  "$FERRETDB_BIN" --version >>"$blog" 2>&1 || die "ferretdb: the built binary does not run" "$blog"
}

ferretdb_ready() {
  tcp_open "$HOST" "$MONGO_PORT" \
    && curl -sf --max-time 3 -o /dev/null "http://$HOST:$FERRETDB_DEBUG_PORT/debug/readyz"
}

start_ferretdb() {
  if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then
    log "ferretdb: already running (pid $(pid_of "$FERRETDB_PID"))"
  else
    rm -f "$FERRETDB_PID"
    port_free "$MONGO_PORT" ferretdb
    port_free "$FERRETDB_DEBUG_PORT" ferretdb-debug
    mkdir -p "$FERRETDB_DIR/sqlite"
    rotate_log "$FERRETDB_LOG"
    log "ferretdb: starting on $HOST:$MONGO_PORT (SQLite in $FERRETDB_DIR/sqlite)"
    # Durable against a process crash, as the broker is (journalSyncData=false): SQLite's WAL
    # is synced at checkpoints, not at every commit (synchronous=normal), which a machine crash
    # may roll back. Go's collector runs at a quarter of its default pace (GOGC=400): the heap
    # is small, and collecting it was a tenth of FerretDB's CPU under load.
    GOGC=400 start_detached "$FERRETDB_PID" "$FERRETDB_LOG" "$FERRETDB_DIR" "$FERRETDB_BIN" \
      --handler=sqlite --sqlite-url="file:$FERRETDB_DIR/sqlite/?_pragma=synchronous(normal)" \
      --listen-addr="$HOST:$MONGO_PORT" --debug-addr="$HOST:$FERRETDB_DEBUG_PORT" \
      --state-dir="$FERRETDB_DIR" --telemetry=disable --log-level=info
  fi
  local i
  for ((i = 0; i < 300; i++)); do
    if ferretdb_ready; then
      log "ferretdb: ready (pid $(pid_of "$FERRETDB_PID"))"
      return 0
    fi
    pid_alive "$FERRETDB_PID" "$FERRETDB_BIN" || die "ferretdb: the process exited during start-up" "$FERRETDB_LOG"
    sleep 0.1
  done
  die "ferretdb: not ready after 30s" "$FERRETDB_LOG"
}

# ---------------------------------------------------------------- Postgres

# as_pg CMD...: run CMD as the postgres system user (postgres refuses to run as root).
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -d postgres -U postgres -t 2; }

pg_running() {
  [[ -f "$PG_DATA/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

psql_admin() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres "$@"
}

start_postgres() {
  mkdir -p "$PG_DIR" "$PG_SOCK"
  touch "$PG_LOG"
  if [[ $EUID -eq 0 ]]; then
    chown postgres:postgres "$PG_DIR" "$PG_SOCK" "$PG_LOG"
    runuser -u postgres -- test -x "$PG_DIR" \
      || die "postgres: the postgres user cannot reach $PG_DIR (a parent directory is not world-searchable)"
  fi
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb $PG_DATA"
    rm -rf "$PG_DATA"
    (cd "$PG_DIR" && as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8) \
      >>"$PG_LOG" 2>&1 || die "postgres: initdb failed" "$PG_LOG"
    echo "include_if_exists = 'stack.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Written on every start so that port overrides apply.
  as_pg tee "$PG_DATA/stack.conf" >/dev/null <<EOF
# written by scripts/stack.sh
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
EOF
  if pg_running; then
    log "postgres: already running (pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
  else
    port_free "$PG_PORT" postgres
    log "postgres: starting on $HOST:$PG_PORT"
    # shellcheck disable=SC2094 # pg_ctl and the server both append to the same log
    (cd "$PG_DIR" && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start) </dev/null >/dev/null 2>>"$PG_LOG" 9>&- \
      || die "postgres: pg_ctl start failed" "$PG_LOG"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    pg_ready && break
    sleep 0.5
  done
  pg_ready || die "postgres: pg_isready fails on $HOST:$PG_PORT" "$PG_LOG"
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'alpes'")" != 1 ]]; then
    psql_admin -c "CREATE ROLE alpes LOGIN CREATEDB" 2>>"$PG_LOG" || die "postgres: CREATE ROLE alpes" "$PG_LOG"
  fi
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'alpes'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE alpes OWNER alpes" 2>>"$PG_LOG" || die "postgres: CREATE DATABASE alpes" "$PG_LOG"
  fi
  log "postgres: ready (pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
}

stop_postgres() {
  if pg_running; then
    log "postgres: stopping"
    (cd "$PG_DIR" && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop) >/dev/null 2>>"$PG_LOG" \
      || die "postgres: pg_ctl stop failed" "$PG_LOG"
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------- commands

with_lock() {
  mkdir -p "$LOGS"
  exec 9>"$STACK/.lock"
  flock -w 600 9 || die "another stack.sh is running (lock $STACK/.lock)"
}

cmd_up() {
  with_lock
  ensure_prereqs
  # Pulsar takes longest: launch it first, bring up the others while it boots, then wait for it.
  # First run: Maven (network-bound) and the Go build (CPU-bound) run side by side.
  local mvn_job=""
  if ! pid_alive "$PULSAR_PID" PulsarStandaloneStarter; then
    ensure_pulsar_lib &
    mvn_job=$!
  fi
  if ! pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then ensure_ferretdb_bin; fi
  if [[ -n "$mvn_job" ]]; then wait "$mvn_job" || exit 1; fi
  start_pulsar
  start_postgres
  start_ferretdb
  wait_pulsar
  log "all up; '$0 env' prints the connection variables"
}

cmd_down() {
  with_lock
  stop_pid ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" 20
  stop_pid pulsar "$PULSAR_PID" PulsarStandaloneStarter 60
  # The auth mode is forgotten with the broker (the next `up` takes ALPES_PULSAR_AUTH again);
  # the key and tokens stay, so clients configured with them keep working after the next `up`.
  rm -f "$PULSAR_AUTH_MODE_FILE"
  if [[ -d "$PG_DATA" ]]; then stop_postgres; else log "postgres: not running"; fi
}

# A crash, not a shutdown: kill -9 the broker of this stack (only the pid in its pid file), then
# start it again on the same data and wait for it. ALPES_RESTART_SIGNAL=TERM makes it a
# graceful restart instead.
cmd_restart_pulsar() {
  with_lock
  pid_alive "$PULSAR_PID" PulsarStandaloneStarter || die "pulsar: not running (start the stack with '$0 up')"
  local pid i signal="${ALPES_RESTART_SIGNAL:-KILL}"
  [[ "$signal" == KILL || "$signal" == TERM ]] || die "ALPES_RESTART_SIGNAL=$signal: expected KILL or TERM"
  pid="$(pid_of "$PULSAR_PID")"
  log "pulsar: stopping the broker (kill -$signal $pid)"
  kill "-$signal" "$pid" 2>/dev/null || true
  if [[ "$signal" == TERM ]] && ! wait_gone "$pid" 60; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait_gone "$pid" 20 || die "pulsar: process $pid did not exit after SIGKILL"
  # The broker's ports are released with the process; wait for the kernel to let them go.
  for ((i = 0; i < 50; i++)); do
    tcp_open "$HOST" "$PULSAR_PORT" || tcp_open "$HOST" "$PULSAR_ADMIN_PORT" || break
    sleep 0.2
  done
  rm -f "$PULSAR_PID"
  start_pulsar
  wait_pulsar
}

# A crash of FerretDB: kill -9, then start again on the same data.
cmd_restart_ferretdb() {
  with_lock
  pid_alive "$FERRETDB_PID" "$FERRETDB_BIN" || die "ferretdb: not running (start the stack with '$0 up')"
  local pid
  pid="$(pid_of "$FERRETDB_PID")"
  log "ferretdb: killing it (kill -9 $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 20 || die "ferretdb: process $pid did not exit after SIGKILL"
  rm -f "$FERRETDB_PID"
  start_ferretdb
}

# Postgres stopped without a checkpoint (`-m immediate`: what a crash leaves, recovered from
# the WAL at the next start), then started again.
cmd_restart_postgres() {
  with_lock
  pg_running || die "postgres: not running (start the stack with '$0 up')"
  log "postgres: immediate stop"
  (cd "$PG_DIR" && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 60 stop) >/dev/null 2>>"$PG_LOG" \
    || die "postgres: pg_ctl stop failed" "$PG_LOG"
  start_postgres
}

cmd_status() {
  local down=0
  if pid_alive "$PULSAR_PID" PulsarStandaloneStarter && pulsar_ready; then
    echo "pulsar:   up   (pid $(pid_of "$PULSAR_PID"), pulsar://$HOST:$PULSAR_PORT, admin http://$HOST:$PULSAR_ADMIN_PORT, auth: $PULSAR_AUTH)"
  elif pid_alive "$PULSAR_PID" PulsarStandaloneStarter; then
    echo "pulsar:   down (pid $(pid_of "$PULSAR_PID") running but not ready; log $PULSAR_LOG)"
    down=1
  else
    echo "pulsar:   down"
    down=1
  fi
  if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN" && ferretdb_ready; then
    echo "ferretdb: up   (pid $(pid_of "$FERRETDB_PID"), mongodb://$HOST:$MONGO_PORT)"
  else
    echo "ferretdb: down"
    down=1
  fi
  if [[ -d "$PG_DATA" ]] && pg_running && pg_ready; then
    echo "postgres: up   (pid $(head -n 1 "$PG_DATA/postmaster.pid"), postgres://alpes@$HOST:$PG_PORT/alpes)"
  else
    echo "postgres: down"
    down=1
  fi
  return "$down"
}

cmd_env() {
  echo "export ALPES_PULSAR_URL=pulsar://$HOST:$PULSAR_PORT"
  echo "export ALPES_PULSAR_ADMIN_URL=http://$HOST:$PULSAR_ADMIN_PORT"
  echo "export ALPES_MONGO_URL=mongodb://$HOST:$MONGO_PORT"
  echo "export ALPES_POSTGRES_URL=postgres://alpes@$HOST:$PG_PORT/alpes"
  # Where this stack is, and FerretDB's metrics: what `alpes bench` reads CPU and store
  # operations from.
  echo "export ALPES_STACK_DIR=$STACK"
  echo "export ALPES_FERRETDB_METRICS_URL=http://$HOST:$FERRETDB_DEBUG_PORT/debug/metrics"
  if [[ "$PULSAR_AUTH" == token ]]; then
    [[ -s "$PULSAR_AUTH_DIR/$PULSAR_ADMIN_ROLE.token" ]] \
      || die "pulsar: no tokens in $PULSAR_AUTH_DIR (run '$0 up' with ALPES_PULSAR_AUTH=token)"
    # The admin (superuser) token, and where each role's token is: <dir>/<role>.token.
    echo "export ALPES_PULSAR_AUTH=token"
    echo "export ALPES_PULSAR_TOKEN=$(pulsar_admin_token)"
    echo "export ALPES_PULSAR_TOKEN_DIR=$PULSAR_AUTH_DIR"
  fi
  # The bearer token of marketing's saga endpoints: random, made once per checkout.
  local token_file="$STACK/api-token"
  if [[ ! -s "$token_file" ]]; then
    mkdir -p "$STACK"
    (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$token_file")
  fi
  echo "export ALPES_API_TOKEN=$(cat "$token_file")"
}

[[ $# -eq 1 ]] || usage
case "$1" in
  # `down` stops whatever runs, whatever ALPES_PULSAR_AUTH says.
  down) ALPES_PULSAR_AUTH="" resolve_pulsar_auth ;;
  up | status | env | restart-pulsar | restart-ferretdb | restart-postgres) resolve_pulsar_auth ;;
esac
case "$1" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  restart-pulsar) cmd_restart_pulsar ;;
  restart-ferretdb) cmd_restart_ferretdb ;;
  restart-postgres) cmd_restart_postgres ;;
  *) usage ;;
esac
