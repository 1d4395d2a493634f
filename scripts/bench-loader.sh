#!/usr/bin/env bash
# Measures `dynamo-cdc load`: N synthetic changes (default 500,000) landed as
# gzipped JSON Lines objects of 10,000 changes in S3 (moto) with SQS notices,
# loaded into ClickHouse (18.16, state layout) without and with an enrichment
# join on a 1,000,000-row Parquet dimension table, by 1 or more loader
# processes side by side on the same queue (each with its own state
# directory). Reports changes/s (changes over the wall time from the first
# loader's start to the last one's exit), the loaders' CPU seconds together
# and each loader's peak RSS (/usr/bin/time -v).
#
#   [LOADERS="1 2 3"] [RUNS="plain enriched"] scripts/bench-loader.sh [CHANGES]
#
# LOADERS lists the loader counts to measure (default 1), RUNS the runs
# (default both); every (run, count) pair seeds the same data afresh.
# DYNAMO_CDC_BIN and BENCH_LOADER_SEED, when both set, name release builds
# of the engine and of examples/bench_loader_seed.rs to use instead of
# building them.
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

if [ -n "${DYNAMO_CDC_BIN:-}" ] && [ -n "${BENCH_LOADER_SEED:-}" ]; then
    bin=$DYNAMO_CDC_BIN seed=$BENCH_LOADER_SEED
    step "using $bin and $seed (release builds, not rebuilt)"
else
    step "building (release)"
    ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
    cargo build --release --locked --bin dynamo-cdc --example bench_loader_seed
    bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
    seed="$CARGO_TARGET_DIR/release/examples/bench_loader_seed"
fi

ensure_clickhouse
work=$(mktemp -d /tmp/dynamo-cdc-bench-load.XXXXXX)
ch_port=$(free_port)
start_clickhouse "$ch_port" "$work/clickhouse"
moto_port=$(free_port)
start_moto "$moto_port" "$work/moto.log"
moto="http://127.0.0.1:$moto_port"
step "ClickHouse on 127.0.0.1:$ch_port, moto on 127.0.0.1:$moto_port"

run() { # label, enrich (yes/no), loaders
    local label=$1 enrich=$2 loaders=$3
    local name="$label-$loaders" i
    step "$label, $loaders loader(s): seeding $changes changes"
    "$seed" --endpoint "$moto" --bucket "bench-$name" --queue "bench-$name" \
        --changes "$changes" --dimension "$work/customers.parquet" | tee "$work/$name.seed"
    local queue_url
    queue_url=$(sed -n 's/^queue_url=//p' "$work/$name.seed")
    for i in $(seq 1 "$loaders"); do
        cat > "$work/$name-$i.toml" <<TOML
state_dir = "$work/$name-$i-state"
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
database = "bench_${label}_$loaders"
create_table = true
[sinks.batch]
max_records = 20000
max_age = "500ms"
TOML
        if [ "$enrich" = yes ]; then
            cat >> "$work/$name-$i.toml" <<TOML
[enrich]
path = "$work/customers.parquet"
key = "id"
field = "customer"
columns = ["name", "segment"]
prefix = "customer_"
TOML
        fi
    done
    local load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    step "$label: $loaders x dynamo-cdc load --exit-when-idle (load average before: $load)"
    local start end pids=() failed=0 pid
    start=$(date +%s.%N)
    for i in $(seq 1 "$loaders"); do
        /usr/bin/time -v "$bin" load --config "$work/$name-$i.toml" --exit-when-idle \
            2> "$work/$name-$i.log" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    end=$(date +%s.%N)
    if [ "$failed" -ne 0 ]; then
        for i in $(seq 1 "$loaders"); do tail -n 20 "$work/$name-$i.log"; done
        exit 1
    fi
    local rows
    rows=$(curl -sS --data-binary "SELECT count() FROM bench_${label}_$loaders.bench_orders" "http://127.0.0.1:$ch_port/")
    python3 - "$changes" "$start" "$end" "$rows" "$label" "$loaders" "$load" "$work/$name" <<'PY' | tee -a "$work/summary"
import sys
n, start, end, rows, label, loaders, load, prefix = sys.argv[1:]
n, loaders = int(n), int(loaders)
seconds = float(end) - float(start)
from datetime import datetime
cpu, rss, begun, done = 0.0, [], [], []
for i in range(1, loaders + 1):
    fields = {}
    for line in open(f"{prefix}-{i}.log", errors="replace"):
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
        # The loading phase: the first object begun to the last one deleted
        # (startup and the dimension table's load come before it).
        if "loading an object" in line or "object loaded, message deleted" in line:
            at = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
            (begun if "loading an object" in line else done).append(at)
    cpu += float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss.append(int(fields["Maximum resident set size (kbytes)"]) / 1024)
phase = max(done) - min(begun)
print(f"{label}, {loaders} loader(s): {n} changes in {seconds:.2f} s = {n / seconds:,.0f} changes/s "
      f"(loading phase {phase:.2f} s = {n / phase:,.0f} changes/s); "
      f"CPU {cpu:.2f} s ({cpu / n * 1e6:.1f} CPU-s per million); "
      f"peak RSS {' / '.join(f'{r:.0f}' for r in rss)} MiB; {rows.strip()} rows in ClickHouse; "
      f"load average before {load}")
PY
}

for loaders in ${LOADERS:-1}; do
    for label in ${RUNS:-plain enriched}; do
        case $label in
        plain) run plain no "$loaders" ;;
        enriched) run enriched yes "$loaders" ;;
        *) echo "unknown run $label (plain, enriched)" >&2; exit 2 ;;
        esac
    done
done
step "summary"
cat "$work/summary"
echo "work dir: $work"
