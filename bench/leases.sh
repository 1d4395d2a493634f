#!/usr/bin/env bash
# Lease-table requests, measured: TABLES DynamoDB Local tables (one stream
# shard each) shared by two workers, with every DynamoDB request passing
# through a counting proxy (bench/lease_proxy.py) that counts those touching
# the lease table, by operation. Reports requests per shard per minute over
# one minute at steady state, then over the minute after a third worker
# joins (a rebalance).
#
#   bench/leases.sh [TABLES (default 8)]
#   LEASE=30s CHECKS=0s bench/leases.sh   # lease_duration, handover_check_interval
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
tables=${1:-8}
lease=${LEASE:-10s}
checks=${CHECKS:-1s}
window=${WINDOW:-60}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --locked
bin="$CARGO_TARGET_DIR/debug/dynamo-cdc"
work=$(mktemp -d /tmp/dynamo-cdc-bench-leases.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    stop_servers
    rm -rf "$work"
}
trap cleanup EXIT
py=$(ensure_python_venv)
ddb_port=$(free_port)
start_dynamodb_local "$ddb_port" "$work/dynamodb.log"
proxy_port=$(free_port)
"$py" bench/lease_proxy.py "$proxy_port" "$ddb_port" bench_leases &
pids+=($!)
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
"$py" - "$ddb_port" "$tables" > "$work/tables.toml" <<'PY'
import sys, boto3
port, count = sys.argv[1], int(sys.argv[2])
ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
for i in range(count):
    name = f"bench_leases_{i}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.put_item(TableName=name, Item={"pk": {"S": "seed"}})
    print(f'[[tables]]\nname = "{name}"\n')
PY
cat > "$work/pipeline.toml" <<TOML
state_dir = "\${WORKER_STATE}"
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:$proxy_port"
[coordinator]
mode = "lease_table"
lease_table = "bench_leases"
worker_id = "\${WORKER_ID}"
lease_duration = "$lease"
handover_check_interval = "$checks"
[source]
discovery_interval = "60s"
$(cat "$work/tables.toml")
[[sinks]]
type = "jsonl"
dir = "$work/out-\${WORKER_ID}"
TOML
start_worker() {
    WORKER_ID=$1 WORKER_STATE="$work/state-$1" RUST_LOG=info \
        "$bin" run --config "$work/pipeline.toml" 2> "$work/$1.log" &
    pids+=($!)
}
counts() { curl -fsS "http://127.0.0.1:$proxy_port/counts"; }
reset() { curl -fsS -X POST "http://127.0.0.1:$proxy_port/reset" > /dev/null; }
report() {
    "$py" - "$1" "$2" "$tables" "$window" <<'PY'
import json, sys
label, counts, shards, window = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
writes = sum(v for k, v in counts.items() if k in ("UpdateItem", "PutItem", "DeleteItem"))
reads = sum(v for k, v in counts.items() if k in ("Scan", "GetItem", "BatchGetItem", "Query"))
per_min = 60.0 / window
print(f"{label}: {json.dumps(counts, sort_keys=True)}")
print(f"  writes {writes * per_min:.0f}/min ({writes * per_min / shards:.1f} per shard per minute), "
      f"reads {reads * per_min:.0f}/min ({reads * per_min / shards:.1f} per shard per minute)")
PY
}
start_worker worker-a
start_worker worker-b
echo "settling: two workers, $tables shards, lease $lease, handover checks every $checks" >&2
sleep 40
reset
sleep "$window"
steady=$(counts)
start_worker worker-c
reset
sleep "$window"
rebalance=$(counts)
echo "lease table requests over ${window}s (lease_duration $lease, handover_check_interval $checks, $tables shards):"
report "steady state, 2 workers" "$steady"
report "a third worker joins" "$rebalance"
grep -h "lease stolen\|lease taken" "$work"/worker-*.log | wc -l | xargs echo "  leases taken or stolen in total:"
