#!/usr/bin/env bash
# Measures the clickhouse sink against Debian's ClickHouse server: a synthetic
# stream of N changes (default 1,000,000) written in batches as the engine's
# sink driver would, in state mode, state mode with two mapped columns, and
# changelog mode. Reports changes/s, insert latency percentiles, CPU seconds
# and peak RSS (from /usr/bin/time -v; CPU includes generating the events).
#
#   scripts/bench-clickhouse.sh [CHANGES] [BATCH]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT

changes=${1:-1000000}
batch=${2:-10000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
step() { printf '==> %s\n' "$*"; }

step "building (release)"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --example bench_clickhouse
driver="$CARGO_TARGET_DIR/release/examples/bench_clickhouse"

ensure_clickhouse
work=$(mktemp -d /tmp/dynamo-cdc-bench-ch.XXXXXX)
port=$(free_port)
start_clickhouse "$port" "$work/clickhouse"
step "ClickHouse $(curl -s "http://127.0.0.1:$port/?query=SELECT%20version()") on 127.0.0.1:$port"

run() { # label, extra args...
    local label=$1
    shift
    step "$label: $changes changes, batches of $batch"
    /usr/bin/time -v "$driver" --url "http://127.0.0.1:$port" --changes "$changes" --batch "$batch" "$@" \
        2> "$work/$label.time" | head -n 1
    local user sys rss
    user=$(grep 'User time' "$work/$label.time" | awk '{print $NF}')
    sys=$(grep 'System time' "$work/$label.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$label.time" | awk '{print $NF}')
    python3 -c "import sys; u,s,r,n=map(float,sys.argv[1:]); print(f'    CPU {u+s:.2f} s = {(u+s)/n*1e6:.2f} CPU-s per million changes; peak RSS {r/1024:.1f} MiB')" \
        "$user" "$sys" "$rss" "$changes"
}

run state --mode state
run state-mapped --mode state --mapped
run changelog --mode changelog
# JSONEachRow versus RowBinary on the server side: the rows the state run
# wrote are exported in both formats, gzipped as the sink sends them, and
# inserted into empty copies of the table.
step "formats: server-side insert time of the same rows, JSONEachRow vs RowBinary (gzipped)"
ch() { curl -sS --fail-with-body --data-binary @- "http://127.0.0.1:$port/$1"; }
db=$(echo "SELECT database FROM system.tables WHERE name = 'bench_orders' LIMIT 1" | ch "")
for format in JSONEachRow RowBinary; do
    echo "SELECT * FROM \`$db\`.bench_orders FORMAT $format" | ch "" | gzip -1 > "$work/rows.$format.gz"
    echo "CREATE TABLE \`$db\`.copy_$format AS \`$db\`.bench_orders" | ch "" >/dev/null
    seconds=$(curl -sS --fail-with-body -o /dev/null -w '%{time_total}' -H 'Content-Encoding: gzip' \
        --data-binary @"$work/rows.$format.gz" \
        "http://127.0.0.1:$port/?query=INSERT%20INTO%20%60$db%60.copy_$format%20FORMAT%20$format")
    rows=$(echo "SELECT count() FROM \`$db\`.copy_$format" | ch "")
    printf '    %-11s %s rows, %s bytes gzipped, inserted in %s s\n' "$format" "$rows" \
        "$(stat -c %s "$work/rows.$format.gz")" "$seconds"
done
echo "work dir: $work"
