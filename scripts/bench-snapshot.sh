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
trap stop_servers EXIT

items=${1:-50000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
step() { printf '==> %s\n' "$*"; }

step "building (release)"
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
    wall=$(grep 'Elapsed (wall clock)' "$work/$name.log" | awk '{print $NF}')
    user=$(grep 'User time' "$work/$name.log" | awk '{print $NF}')
    sys=$(grep 'System time' "$work/$name.log" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$name.log" | awk '{print $NF}')
    rows=$(sqlite3 "$work/$name.db" 'SELECT count(*) FROM bench_snap_live')
    python3 - "$segments" "$rows" "$wall" "$user" "$sys" "$rss" <<'PY'
import sys
segments, rows, wall, user, sys_t, rss = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cpu = float(user) + float(sys_t)
rows = int(rows)
print(f"    {segments} segment(s): {rows} items in {seconds:.2f} s = {rows/seconds:,.0f} items/s; "
      f"CPU {cpu:.2f} s ({cpu/rows*1e6:.1f} CPU-s per million items); peak RSS {int(rss)/1024:.1f} MiB")
PY
done
echo "work dir: $work"
