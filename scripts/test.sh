#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run).
#
#   scripts/test.sh [extra args for cargo nextest run / cargo test]
#
# Lints (fmt, clippy), builds the book (mdbook, with an offline link check;
# both tools are installed into the cache on first use), builds, starts the test servers (DynamoDB Local,
# kinesalite, ClickHouse, PostgreSQL, moto, osmem-server, tansu) on free ports
# and runs the whole test suite against them (PyFlink, installed into a venv
# of its own, runs inside the tests). Servers are stopped on exit.
# Missing build dependencies of the rdkafka crate (C toolchain, make, perl,
# pkg-config, OpenSSL and zlib headers) are apt-installed first.
#
# The tests find the servers through:
#   DYNAMO_CDC_TEST_DYNAMODB_ENDPOINT  http://127.0.0.1:PORT (DynamoDB + Streams)
#   DYNAMO_CDC_TEST_KINESIS_ENDPOINT   http://127.0.0.1:PORT (kinesalite: Kinesis Data Streams)
#   DYNAMO_CDC_TEST_CLICKHOUSE_URL     http://127.0.0.1:PORT (ClickHouse HTTP)
#   DYNAMO_CDC_TEST_CHDB_PYTHON        a python with chdb
#   DYNAMO_CDC_TEST_POSTGRES_URL       libpq connection string
#   DYNAMO_CDC_TEST_MOTO_URL           http://127.0.0.1:PORT (moto: S3, SQS)
#   DYNAMO_CDC_TEST_OPENSEARCH_URL     http://127.0.0.1:PORT (osmem-server: OpenSearch API, in memory)
#   DYNAMO_CDC_TEST_KAFKA_BROKERS      127.0.0.1:PORT (tansu: Kafka protocol, in memory)
#   DYNAMO_CDC_TEST_TANSU              the tansu binary (tests that start their own broker)
#   DYNAMO_CDC_TEST_KAFKA_PYTHON       a python with confluent-kafka and kafka-python (tests/kafka_*.py)
#   DYNAMO_CDC_TEST_PYFLINK_PYTHON     a python with PyFlink (runs tests/flink_debezium.py)
#   DYNAMO_CDC_TEST_PROMETHEUS         the prometheus binary (tests start it with their own config)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION  (local / local / us-east-1)
#   DYNAMO_CDC_BIN                     a copy of the debug dynamo-cdc binary built with the tests
#
# CARGO_TARGET_DIR defaults to /var/tmp/dynamo-cdc-target.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
# shellcheck source=SCRIPTDIR/lib/target_space.sh
source scripts/lib/target_space.sh
# shellcheck source=SCRIPTDIR/lib/docs.sh
source scripts/lib/docs.sh
test_bin_dir=""
cleanup() {
    stop_servers
    if [ -n "$test_bin_dir" ]; then rm -rf "$test_bin_dir"; fi
}
trap cleanup EXIT

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"

section() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

section "servers: DynamoDB Local, kinesalite, ClickHouse, chdb, moto, osmem-server, tansu, PyFlink, PostgreSQL, Prometheus (installed on first use)"
ensure_dynamodb_local
echo "DynamoDB Local: $(dcdc_dynamodb_local_dir)"
ensure_kinesalite
echo "kinesalite: $(dcdc_kinesalite_dir)"
ensure_clickhouse
echo "ClickHouse: $(dpkg-query -W -f '${Version}' clickhouse-server 2>/dev/null)"
chdb_python=$(ensure_chdb)
echo "chdb: $chdb_python"
ensure_moto >/dev/null
echo "moto: installed"
echo "osmem-server: $(ensure_osmem)"
DYNAMO_CDC_TEST_TANSU=$(ensure_tansu)
export DYNAMO_CDC_TEST_TANSU
echo "tansu: $DYNAMO_CDC_TEST_TANSU"
kafka_python=$(ensure_confluent_kafka)
echo "confluent-kafka, kafka-python: $kafka_python"
DYNAMO_CDC_TEST_PYFLINK_PYTHON=$(ensure_pyflink)
export DYNAMO_CDC_TEST_PYFLINK_PYTHON
echo "PyFlink: $DYNAMO_CDC_TEST_PYFLINK_PYTHON"
echo "PostgreSQL: $(ensure_postgres)"
DYNAMO_CDC_TEST_PROMETHEUS=$(ensure_prometheus)
export DYNAMO_CDC_TEST_PROMETHEUS
echo "Prometheus: $DYNAMO_CDC_TEST_PROMETHEUS"

section "target directory"
prune_target_dir "$CARGO_TARGET_DIR"

section "build dependencies (rdkafka: C toolchain, make, perl, pkg-config, OpenSSL and zlib headers)"
ensure_build_deps

section "cargo fmt --check"
cargo fmt --check

section "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# The minimal set of the two local sinks, the quickstart's build (the sqlite
# sink alone) and the bare engine, so that a feature's cfg points cannot rot.
# The tests need every feature (the default).
for features in "sqlite,jsonl" sqlite ""; do
    section "cargo clippy --locked --no-default-features --features '$features' --lib --bins -- -D warnings"
    cargo clippy --locked --no-default-features --features "$features" --lib --bins -- -D warnings
done

section "the book: mdbook build docs, and lychee --offline over its links and anchors"
build_docs

runner=nextest
if ! cargo nextest --version >/dev/null 2>&1; then
    section "installing cargo-nextest"
    if ! cargo install cargo-nextest --locked; then
        echo "cargo-nextest could not be installed: falling back to cargo test"
        runner="test"
    fi
fi

# One build: the test build also builds the dynamo-cdc binary the tests run
# (with the dev-dependencies' features, e.g. tokio's test-util). A separate
# `cargo build` would compile tokio and everything above it a second time.
section "building the tests and the dynamo-cdc binary they run"
if [ "$runner" = nextest ]; then
    cargo nextest run --no-run --locked
else
    cargo test --no-run --locked
fi
built="$CARGO_TARGET_DIR/debug/dynamo-cdc"
if [ ! -x "$built" ]; then
    echo "error: no binary at $built after the test build" >&2
    exit 1
fi
# The tests run a copy of their own: another clone's build in a shared
# target directory may replace debug/dynamo-cdc while they run.
test_bin_dir="$CARGO_TARGET_DIR/test-bin/$$"
mkdir -p "$test_bin_dir"
cp "$built" "$test_bin_dir/dynamo-cdc"
export DYNAMO_CDC_BIN="$test_bin_dir/dynamo-cdc"
echo "engine binary: $DYNAMO_CDC_BIN"

logs="$CARGO_TARGET_DIR/test-servers"
mkdir -p "$logs"
port=$(free_port)
section "starting DynamoDB Local on 127.0.0.1:$port (log: $logs/dynamodb-local.log)"
start_dynamodb_local "$port" "$logs/dynamodb-local.log"

export DYNAMO_CDC_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"

kinesis_port=$(free_port)
section "starting kinesalite on 127.0.0.1:$kinesis_port (log: $logs/kinesalite.log)"
start_kinesalite "$kinesis_port" "$logs/kinesalite.log"
export DYNAMO_CDC_TEST_KINESIS_ENDPOINT="http://127.0.0.1:$kinesis_port"

ch_port=$(free_port)
section "starting ClickHouse on 127.0.0.1:$ch_port (dir: $logs/clickhouse)"
rm -rf "$logs/clickhouse"
start_clickhouse "$ch_port" "$logs/clickhouse"
export DYNAMO_CDC_TEST_CLICKHOUSE_URL="http://127.0.0.1:$ch_port"
export DYNAMO_CDC_TEST_CHDB_PYTHON="$chdb_python"

pg_port=$(free_port)
section "starting PostgreSQL on 127.0.0.1:$pg_port (dir: $logs/postgres)"
rm -rf "$logs/postgres"
start_postgres "$pg_port" "$logs/postgres"
export DYNAMO_CDC_TEST_POSTGRES_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"

moto_port=$(free_port)
section "starting moto (S3, SQS) on 127.0.0.1:$moto_port"
start_moto "$moto_port" "$logs/moto.log"
export DYNAMO_CDC_TEST_MOTO_URL="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_REGION=us-east-1
# Make sure no profile or real credential source overrides the ones above.
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE 2>/dev/null || true

osmem_port=$(free_port)
section "starting osmem-server (OpenSearch API) on 127.0.0.1:$osmem_port (log: $logs/osmem.log)"
start_osmem "$osmem_port" "$logs/osmem.log"
export DYNAMO_CDC_TEST_OPENSEARCH_URL="http://127.0.0.1:$osmem_port"

kafka_port=$(free_port)
section "starting tansu (Kafka protocol) on 127.0.0.1:$kafka_port (log: $logs/tansu.log)"
start_tansu "$kafka_port" "$logs/tansu.log"
export DYNAMO_CDC_TEST_KAFKA_BROKERS="127.0.0.1:$kafka_port"
export DYNAMO_CDC_TEST_KAFKA_PYTHON="$kafka_python"

rc=0
if [ "$runner" = nextest ]; then
    section "cargo nextest run --locked $*"
    cargo nextest run --locked "$@" || rc=$?
else
    section "cargo test --locked $*"
    cargo test --locked "$@" || rc=$?
fi

section "done in $((SECONDS - started)) s: tests exited with $rc"
exit "$rc"
