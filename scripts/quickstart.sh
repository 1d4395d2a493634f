#!/usr/bin/env bash
# One command from a fresh machine to a working replica:
#   DynamoDB Local + a demo table with a stream + a mixed workload
#   -> dynamo-cdc run --exit-when-caught-up -> SQLite replica -> compared with the table.
#
# Environment (all optional):
#   CARGO_TARGET_DIR      cargo's target dir (default /var/tmp/dynamo-cdc-target)
#   DYNAMO_CDC_BIN        use this engine binary instead of building one
#   QUICKSTART_OPS        workload size (default 2000)
#   QUICKSTART_SEED       workload seed (default 1)
#   DYNAMO_CDC_CACHE      where DynamoDB Local and the Python venv are kept
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT

table=demo_orders
region=us-east-1
ops=${QUICKSTART_OPS:-2000}
seed=${QUICKSTART_SEED:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
# DynamoDB Local accepts any credentials.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"

step() { printf '==> %s\n' "$*"; }

step "checking DynamoDB Local, Java and the Python venv (installed on first use)"
ensure_dynamodb_local
py=$(ensure_python_venv)

# Build before starting the server: a build error then stops us before anything runs.
if [ -n "${DYNAMO_CDC_BIN:-}" ]; then
    bin=$DYNAMO_CDC_BIN
    step "using engine binary $bin"
else
    # Only the sqlite sink: the other sinks' and sources' dependencies (librdkafka,
    # Parquet, the S3, SQS and Kinesis SDKs, PostgreSQL) are not built. A full
    # build is `cargo build --release` (docs/src/getting-started/building.md, "Cargo features").
    features=(--no-default-features --features sqlite)
    step "building dynamo-cdc (cargo build --release --locked ${features[*]}; target dir $CARGO_TARGET_DIR)"
    # C code is still built (SQLite, mimalloc, LMDB, ring): a C toolchain (installed when missing,
    # with the headers a full build's librdkafka needs).
    ensure_build_deps
    build_start=$SECONDS
    cargo build --release --locked "${features[@]}"
    step "built in $((SECONDS - build_start)) s"
    bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
fi
if [ ! -x "$bin" ]; then
    echo "error: no engine binary at $bin" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dynamo-cdc-quickstart.XXXXXX")
port=$(free_port)
endpoint="http://127.0.0.1:$port"

step "starting DynamoDB Local on 127.0.0.1:$port (log: $work/dynamodb-local.log)"
start_dynamodb_local "$port" "$work/dynamodb-local.log"

demo() { "$py" scripts/demo.py "$1" --endpoint "$endpoint" --region "$region" --table "$table" "${@:2}"; }

step "creating table $table (stream: NEW_AND_OLD_IMAGES)"
demo create-table

step "writing a workload of $ops operations (seed $seed)"
demo workload --count "$ops" --seed "$seed"

config="$work/dynamo-cdc.toml"
cat >"$config" <<EOF
state_dir = "$work/state"

[aws]
region = "$region"
endpoint_url = "$endpoint"

[[tables]]
name = "$table"

[[sinks]]
type = "sqlite"
path = "$work/replica.db"
EOF

step "running dynamo-cdc until it has caught up with the stream"
start=$SECONDS
"$bin" run --config "$config" --exit-when-caught-up
step "dynamo-cdc caught up in $((SECONDS - start)) s"

step "comparing the SQLite replica with a Scan of the table"
rc=0
demo compare --sqlite "$work/replica.db" || rc=$?

echo
echo "config:   $config"
echo "replica:  $work/replica.db   (try: sqlite3 $work/replica.db 'SELECT pk, sk, _version FROM ${table}_live LIMIT 5')"
echo "state:    $work/state"
echo "(DynamoDB Local ran in memory and stops now; the replica stays.)"
if [ "$rc" -ne 0 ]; then
    echo "quickstart: the replica does NOT match the table" >&2
fi
exit "$rc"
