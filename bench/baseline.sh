#!/usr/bin/env bash
# The engine against the usual alternative on the same source and sink, in
# one run: N changes in a DynamoDB Local stream, replicated into SQLite by
#   1. dynamo-cdc run --exit-when-caught-up (release), and
#   2. bench/baseline_consumer.py (boto3 + TypeDeserializer + sqlite3, one
#      transaction per GetRecords page, like a Lambda function).
# Reports changes/s and CPU seconds per million changes of each, and the
# engine/baseline ratios.
#
#   bench/baseline.sh [CHANGES (default 50000)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
# shellcheck source=SCRIPTDIR/../scripts/lib/timing.sh
source scripts/lib/timing.sh
trap stop_servers EXIT
changes=${1:-50000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example bench_local
bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
driver="$CARGO_TARGET_DIR/release/examples/bench_local"
python=$(ensure_python_venv)
ensure_dynamodb_local
work=$(mktemp -d /tmp/dynamo-cdc-bench-baseline.XXXXXX)
port=$(free_port)
start_dynamodb_local "$port" "$work/dynamodb-local.log"
endpoint="http://127.0.0.1:$port"
"$driver" --endpoint "$endpoint" --table bench_base create
"$driver" --endpoint "$endpoint" --table bench_base load --items "$changes"
cat > "$work/engine.toml" <<TOML
state_dir = "$work/state"
[aws]
region = "us-east-1"
endpoint_url = "$endpoint"
[[tables]]
name = "bench_base"
[[sinks]]
type = "sqlite"
path = "$work/engine.db"
TOML

/usr/bin/time -v "$bin" run --config "$work/engine.toml" --exit-when-caught-up 2> "$work/engine.log" \
    || { tail -20 "$work/engine.log"; exit 1; }
/usr/bin/time -v "$python" bench/baseline_consumer.py --endpoint "$endpoint" --table bench_base \
    --db "$work/baseline.db" > "$work/baseline.out" 2> "$work/baseline.log" \
    || { tail -20 "$work/baseline.log"; exit 1; }
cat "$work/baseline.out"
read -r e_s e_cpu _ < <(time_v_stats "$work/engine.log")
read -r b_s b_cpu _ < <(time_v_stats "$work/baseline.log")
python3 - "$changes" "$e_s" "$e_cpu" "$b_s" "$b_cpu" <<'PY'
import sys
n, es, ec, bs, bc = (float(x) for x in sys.argv[1:])
print(f"engine:   {n/es:,.0f} changes/s, {ec/n*1e6:.1f} CPU-s per million changes")
print(f"baseline: {n/bs:,.0f} changes/s, {bc/n*1e6:.1f} CPU-s per million changes")
print(f"engine/baseline: {bs/es:.1f}x the throughput, {bc/ec:.1f}x less CPU per change")
PY
echo "work dir: $work"
