#!/usr/bin/env bash
# Failover time after SIGKILL, measured: two workers share TABLES DynamoDB
# Local tables (one stream shard each) through a lease table with the
# default lease settings; KILLS times, one of them is killed with SIGKILL at
# a random moment of its renew cycle, and the time until the other holds
# every lease (and until the dead worker's heartbeat item is gone) is read
# from the lease table, polled every 20 ms. A fresh worker then joins in the
# dead one's place and the fleet rebalances before the next kill.
#
#   bench/failover.sh [KILLS (default 10)] [TABLES (default 4)]
#   LEASE=10s CHECKS=1s bench/failover.sh   # lease_duration, handover_check_interval
#   DYNAMODB_ENDPOINT=http://127.0.0.1:8000 bench/failover.sh   # use a running DynamoDB Local
#   DYNAMO_CDC_BIN=path/to/dynamo-cdc bench/failover.sh          # measure this binary (no build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
kills=${1:-10}
tables=${2:-4}
lease=${LEASE:-10s}
checks=${CHECKS:-1s}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
work=$(mktemp -d /tmp/dynamo-cdc-bench-failover.XXXXXX)
# A copy: a build from another checkout into a shared target directory
# must not change the binary under a running measurement.
bin="$work/dynamo-cdc"
if [ -n "${DYNAMO_CDC_BIN:-}" ]; then
    cp "$DYNAMO_CDC_BIN" "$bin"
else
    cargo build --locked
    cp "$CARGO_TARGET_DIR/debug/dynamo-cdc" "$bin"
fi
cleanup() {
    stop_servers
    rm -rf "$work"
}
trap cleanup EXIT
py=$(ensure_python_venv)
endpoint=${DYNAMODB_ENDPOINT:-}
if [ -z "$endpoint" ]; then
    ddb_port=$(free_port)
    start_dynamodb_local "$ddb_port" "$work/dynamodb.log"
    endpoint="http://127.0.0.1:$ddb_port"
fi
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
echo "failover after SIGKILL: $kills kills, $tables shards, lease_duration $lease, handover_check_interval $checks" >&2
"$py" bench/failover.py --bin "$bin" --endpoint "$endpoint" --work "$work" \
    --kills "$kills" --tables "$tables" --lease "$lease" --checks "$checks"
