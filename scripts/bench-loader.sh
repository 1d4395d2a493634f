#!/usr/bin/env bash
# Measures `dynamo-cdc load`: N synthetic changes (default 500,000) landed as
# gzipped JSON Lines objects of 10,000 changes in S3 (moto) with SQS notices,
# loaded into ClickHouse (18.16, state layout) without and with an enrichment
# join on a 1,000,000-row Parquet dimension table. Reports changes/s, CPU
# seconds and peak RSS of the loader (/usr/bin/time -v).
#
#   scripts/bench-loader.sh [CHANGES]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT

changes=${1:-500000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
step() { printf '==> %s\n' "$*"; }

step "building (release)"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example bench_loader_seed
bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
seed="$CARGO_TARGET_DIR/release/examples/bench_loader_seed"

ensure_clickhouse
work=$(mktemp -d /tmp/dynamo-cdc-bench-load.XXXXXX)
ch_port=$(free_port)
start_clickhouse "$ch_port" "$work/clickhouse"
moto_port=$(free_port)
start_moto "$moto_port" "$work/moto.log"
moto="http://127.0.0.1:$moto_port"
step "ClickHouse on 127.0.0.1:$ch_port, moto on 127.0.0.1:$moto_port"

run() { # label, enrich (yes/no)
    local label=$1 enrich=$2
    step "$label: seeding $changes changes"
    "$seed" --endpoint "$moto" --bucket "bench-$label" --queue "bench-$label" \
        --changes "$changes" --dimension "$work/customers.parquet" | tee "$work/$label.seed"
    local queue_url
    queue_url=$(sed -n 's/^queue_url=//p' "$work/$label.seed")
    cat > "$work/$label.toml" <<TOML
state_dir = "$work/$label-state"
[aws]
region = "us-east-1"
endpoint_url = "$moto"
[queue]
url = "$queue_url"
wait_time = "1s"
[[tables]]
name = "bench_orders"
keys = [{ name = "pk", type = "S" }, { name = "sk", type = "N" }]
[[sinks]]
type = "clickhouse"
url = "http://127.0.0.1:$ch_port"
database = "bench_$label"
create_table = true
[sinks.batch]
max_records = 20000
max_age = "500ms"
TOML
    if [ "$enrich" = yes ]; then
        cat >> "$work/$label.toml" <<TOML
[enrich]
path = "$work/customers.parquet"
key = "id"
field = "customer"
columns = ["name", "segment"]
prefix = "customer_"
TOML
    fi
    step "$label: dynamo-cdc load --exit-when-idle"
    /usr/bin/time -v "$bin" load --config "$work/$label.toml" --exit-when-idle 2> "$work/$label.log" \
        || { tail -n 20 "$work/$label.log"; exit 1; }
    local wall user sys rss rows
    wall=$(grep 'Elapsed (wall clock)' "$work/$label.log" | awk '{print $NF}')
    user=$(grep 'User time' "$work/$label.log" | awk '{print $NF}')
    sys=$(grep 'System time' "$work/$label.log" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$label.log" | awk '{print $NF}')
    rows=$(curl -sS --data-binary "SELECT count() FROM bench_$label.bench_orders" "http://127.0.0.1:$ch_port/")
    python3 - "$changes" "$wall" "$user" "$sys" "$rss" "$rows" "$label" <<'PY'
import sys
n, wall, user, sys_t, rss, rows, label = sys.argv[1:]
seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
cpu = float(user) + float(sys_t)
print(f"{label}: {int(n)} changes in {seconds:.2f} s = {int(n)/seconds:,.0f} changes/s; "
      f"CPU {cpu:.2f} s ({cpu/int(n)*1e6:.1f} CPU-s per million); peak RSS {int(rss)/1024:.1f} MiB; {rows.strip()} rows in ClickHouse")
PY
}

run plain no
run enriched yes
echo "work dir: $work"
