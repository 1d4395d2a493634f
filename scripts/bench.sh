#!/usr/bin/env bash
# Measures the engine against DynamoDB Local into the embedded SQLite sink:
#   1. throughput: N changes already in the stream -> `run --exit-when-caught-up`
#      (changes/s, CPU seconds, peak RSS, via /usr/bin/time -v);
#   2. latency: the engine follows the table while writes arrive at a steady
#      rate; each write's time until its row is visible in SQLite.
#
#   scripts/bench.sh [ITEMS (default 50000)] [LATENCY_RATE/s (default 50)] [ITEMS_PER_WRITE (default 1)]
#
# ITEMS_PER_WRITE > 1 (up to 25) writes with BatchWriteItem: DynamoDB Local
# serves far more items per second that way than one PutItem at a time.
#
# METRICS=1 serves the metrics endpoint during both runs (the recorder on
# the hot path), for comparing its cost with METRICS=0 (the default).
#
# Release build; CARGO_TARGET_DIR defaults to /var/tmp/dynamo-cdc-target.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT

items=${1:-50000}
rate=${2:-50}
per_write=${3:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
step() { printf '==> %s\n' "$*"; }

step "building (release)"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example bench_local
bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
driver="$CARGO_TARGET_DIR/release/examples/bench_local"

ensure_dynamodb_local
work=$(mktemp -d /tmp/dynamo-cdc-bench.XXXXXX)
port=$(free_port)
step "DynamoDB Local on 127.0.0.1:$port"
start_dynamodb_local "$port" "$work/dynamodb-local.log"
endpoint="http://127.0.0.1:$port"

write_config() { # name table
    cat > "$work/$1.toml" <<TOML
state_dir = "$work/$1-state"
[aws]
region = "us-east-1"
endpoint_url = "$endpoint"
[[tables]]
name = "$2"
[[sinks]]
type = "sqlite"
path = "$work/$1.db"
TOML
    if [ "${METRICS:-0}" = 1 ]; then
        printf '[metrics]\nlisten = "127.0.0.1:%s"\n' "$(free_port)" >> "$work/$1.toml"
    fi
}

step "throughput: loading $items changes into the stream"
"$driver" --endpoint "$endpoint" --table bench_tp create
"$driver" --endpoint "$endpoint" --table bench_tp load --items "$items"
write_config tp bench_tp
step "throughput: dynamo-cdc run --exit-when-caught-up"
/usr/bin/time -v "$bin" run --config "$work/tp.toml" --exit-when-caught-up 2> "$work/tp.log" || { tail -20 "$work/tp.log"; exit 1; }
wall=$(grep 'Elapsed (wall clock)' "$work/tp.log" | awk '{print $NF}')
user=$(grep 'User time' "$work/tp.log" | awk '{print $NF}')
sys=$(grep 'System time' "$work/tp.log" | awk '{print $NF}')
rss=$(grep 'Maximum resident set size' "$work/tp.log" | awk '{print $NF}')
rows=$(sqlite3 "$work/tp.db" 'SELECT count(*) FROM bench_tp_live')
python3 - "$items" "$wall" "$user" "$sys" "$rss" "$rows" <<'PY'
import sys
items, wall, user, sys_t, rss, rows = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cpu = float(user) + float(sys_t)
print(f"throughput: {int(items)} changes in {seconds:.2f} s = {int(items)/seconds:,.0f} changes/s; "
      f"CPU {cpu:.2f} s ({cpu/int(items)*1e6:.1f} CPU-s per million changes); peak RSS {int(rss)/1024:.1f} MiB; "
      f"{rows} rows in SQLite")
PY

step "latency: $rate writes/s while the engine follows the table"
"$driver" --endpoint "$endpoint" --table bench_lat create
write_config lat bench_lat
"$bin" run --config "$work/lat.toml" 2> "$work/lat.log" &
engine=$!
# Five seconds of writes (at least 300).
samples=$(( rate * 5 > 300 ? rate * 5 : 300 ))
"$driver" --endpoint "$endpoint" --table bench_lat latency --replica "$work/lat.db" --samples "$samples" --rate "$rate" --batch "$per_write"
kill -TERM "$engine"
wait "$engine" || true
echo "work dir: $work"
