#!/usr/bin/env bash
# Measures snapshots: N items in a DynamoDB Local table, then
# `dynamo-cdc snapshot` into a fresh SQLite replica with 1, 4 and 8 Scan
# segments. Reports items/s scanned and written, CPU seconds and peak RSS
# (via /usr/bin/time -v) for each.
#
#   [SEGMENTS="1 4 8"] scripts/bench-snapshot.sh [ITEMS (default 50000)]
#
# Release build; CARGO_TARGET_DIR defaults to /var/tmp/dynamo-cdc-target.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
# shellcheck source=SCRIPTDIR/lib/timing.sh
source scripts/lib/timing.sh
trap stop_servers EXIT

items=${1:-50000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
step() { printf '==> %s\n' "$*"; }

step "building (release)"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example bench_local
bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
driver="$CARGO_TARGET_DIR/release/examples/bench_local"

ensure_dynamodb_local
work=$(mktemp -d /tmp/dynamo-cdc-bench-snap.XXXXXX)
port=$(free_port)
step "DynamoDB Local on 127.0.0.1:$port"
start_dynamodb_local "$port" "$work/dynamodb-local.log"
endpoint="http://127.0.0.1:$port"

step "loading $items items"
"$driver" --endpoint "$endpoint" --table bench_snap create
"$driver" --endpoint "$endpoint" --table bench_snap load --items "$items"

for segments in ${SEGMENTS:-1 4 8}; do
    name="seg$segments"
    cat > "$work/$name.toml" <<TOML
state_dir = "$work/$name-state"
[aws]
region = "us-east-1"
endpoint_url = "$endpoint"
[[tables]]
name = "bench_snap"
snapshot_segments = $segments
[[sinks]]
type = "sqlite"
path = "$work/$name.db"
TOML
    step "dynamo-cdc snapshot, $segments segment(s)"
    /usr/bin/time -v "$bin" snapshot --config "$work/$name.toml" 2> "$work/$name.log" \
        || { tail -20 "$work/$name.log"; exit 1; }
    read -r seconds cpu rss < <(time_v_stats "$work/$name.log")
    rows=$(sqlite3 "$work/$name.db" 'SELECT count(*) FROM bench_snap_live')
    python3 -c 'import sys; g, r, s, c, m = sys.argv[1:]; r = int(r); s = float(s); c = float(c); print(f"    {g} segment(s): {r} items in {s:.2f} s = {r/s:,.0f} items/s; CPU {c:.2f} s ({c/r*1e6:.1f} CPU-s per million items); peak RSS {m} MiB")' \
        "$segments" "$rows" "$seconds" "$cpu" "$rss"
done
echo "work dir: $work"
