#!/usr/bin/env bash
# Kinesis source throughput: recorded records (examples/gen_records.rs) in
# the Kinesis streaming destination format, loaded into kinesalite (SHARDS
# shards), then read by the engine into SQLite (--exit-when-caught-up):
# records/s, CPU-s per million, peak RSS. The load is not timed.
#
#   bench/kinesis.sh [RECORDS (default 100000)] [SHARDS (default 4)]
#   BATCH=N bench/kinesis.sh ...   # source.kinesis_batch_size (default: the engine's)
#   MIN_BYTES=200 MAX_BYTES=600 bench/kinesis.sh ...   # item sizes (default gen_records')
#   PERF_PREFIX="perf record -g -o /tmp/kinesis.perf --" bench/kinesis.sh ...   # profile the engine run
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT
records=${1:-100000}
shards=${2:-4}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --example gen_records
cargo build --release --locked
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/dynamo-cdc-bench-kinesis.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
py=$(ensure_python_venv)
ensure_kinesalite
ddb_port=$(free_port)
start_dynamodb_local "$ddb_port" "$work/dynamodb.log"
kin_port=$(free_port)
start_kinesalite "$kin_port" "$work/kinesalite.log"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
"$py" - "$ddb_port" "$kin_port" "$shards" <<'PY'
import sys, time, boto3
ddb_port, kin_port, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])
kw = dict(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{ddb_port}", **kw)
ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                       {"AttributeName": "sk", "AttributeType": "N"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                            {"AttributeName": "sk", "KeyType": "RANGE"}])
kin = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{kin_port}", **kw)
kin.create_stream(StreamName="orders-cdc", ShardCount=shards)
while kin.describe_stream_summary(StreamName="orders-cdc")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
PY
sizes=()
[ -n "${MIN_BYTES:-}" ] && sizes+=(--min-bytes "$MIN_BYTES")
[ -n "${MAX_BYTES:-}" ] && sizes+=(--max-bytes "$MAX_BYTES")
"$bin/examples/gen_records" --records "$records" ${sizes[@]+"${sizes[@]}"} --out "$work/records.jsonl"
"$py" bench/kinesis_load.py "http://127.0.0.1:$kin_port" orders-cdc "$work/records.jsonl" orders
batch_line=
[ -n "${BATCH:-}" ] && batch_line="kinesis_batch_size = $BATCH"
cat > "$work/pipeline.toml" <<TOML
state_dir = "$work/state"
[source]
$batch_line
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:$ddb_port"
kinesis_endpoint_url = "http://127.0.0.1:$kin_port"
[[tables]]
name = "orders"
kinesis_stream = "orders-cdc"
[[sinks]]
type = "sqlite"
path = "$work/replica.db"
TOML
${PERF_PREFIX:-} /usr/bin/time -f '%e s elapsed, %U s user, %S s system, %M KB max RSS' \
    "$bin/dynamo-cdc" --log-level warn run --config "$work/pipeline.toml" --exit-when-caught-up \
    2> "$work/time.txt" || { cat "$work/time.txt"; exit 1; }
tail -n 1 "$work/time.txt"
"$py" - "$work/time.txt" "$records" <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()[-1]
records = int(sys.argv[2])
elapsed, user, system, rss = map(float, re.findall(r"([\d.]+) ", text)[:4])
print(f"kinesalite -> sqlite: {records / elapsed:,.0f} records/s, "
      f"{(user + system) / records * 1e6:.1f} CPU-s per million, {rss / 1024:.0f} MiB peak RSS")
PY
