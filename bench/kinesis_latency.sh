#!/usr/bin/env bash
# Latency at a steady write rate through a Kinesis stream: kinesalite ->
# engine (`dynamo-cdc run`, Kinesis source) -> ClickHouse (state mode, seq as
# a UInt64 column). A writer (bench/kinesis_latency.py write, boto3) puts
# change records in the Kinesis streaming destination format at RATE/s for
# WARMUP (default 5) + SECONDS seconds; a poller asks ClickHouse every 20 ms
# which seqs are visible. Percentiles are over the records after the warm-up
# (before the first records the engine polls the idle shards at growing
# intervals, up to 2 s); the warm-up's are printed on their own.
# Prints the achieved rate, p50/p90/p99/max from each record's arrival in the
# stream (the writer's clock at the PutRecords answer) to its row's first
# sight in ClickHouse, and the CPU of every process over the run (engine,
# kinesalite, ClickHouse, DynamoDB Local, writer, poller, the whole machine)
# with the engine's CPU-s per million and peak RSS.
#
#   bench/kinesis_latency.sh [RATE (default 10000)] [SECONDS (default 60)] [SHARDS (default 4)]
#   DYNAMO_CDC_BIN=/tmp/lat-bin/dynamo-cdc bench/kinesis_latency.sh ...   # no build: this binary
#   IN_FLIGHT=8 POLL_MS=20 bench/kinesis_latency.sh ...   # PutRecords calls in flight, poll period
#   MAX_AGE=100ms bench/kinesis_latency.sh ...   # the sink's batch max_age (default: the engine's)
#   WARMUP=5 PER_SECOND=1 bench/kinesis_latency.sh ...   # warm-up seconds; a latency line per second
#   KEEP=1 LOG_LEVEL=info bench/kinesis_latency.sh ...   # keep the work dir (logs, arrival/sight times)
#   CLICKHOUSE=server bench/kinesis_latency.sh ...   # clickhouse-server on PATH instead of chdb
#   WRITE_ONLY=1 bench/kinesis_latency.sh ...    # the writer alone: kinesalite's cost of the writes
#
# ClickHouse is chdb (ClickHouse 26, in-process) behind bench/chdb_http.py,
# a Python HTTP front, by default: Debian's clickhouse-server (18.16, the one
# scripts/lib/servers.sh installs) has no UInt256, and the Kinesis source's
# versions (micros * 10^20 + hash) need it (ClickHouse 21.7 or later); the
# sink refuses to write them to a UInt64 `_version`. CLICKHOUSE=server is
# for a machine whose clickhouse-server is 21.7 or later.
#
# kinesalite, DynamoDB Local (the source describes the table for its key
# schema), ClickHouse, the engine, the writer and the poller share the
# machine; the CPU lines say who used it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
rate=${1:-10000}
seconds=${2:-60}
shards=${3:-4}
warmup=${WARMUP:-5}
total=$((rate * (warmup + seconds)))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
if [ -n "${DYNAMO_CDC_BIN:-}" ]; then
    bin=$DYNAMO_CDC_BIN
else
    ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
    cargo build --release --locked --bin dynamo-cdc
    bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
fi
work=$(mktemp -d /tmp/dynamo-cdc-bench-kinesis-latency.XXXXXX)
engine_pid=
poller_pid=
cleanup() {
    local pid
    for pid in "$poller_pid" "$engine_pid"; do
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    stop_servers
    if [ "${KEEP:-0}" = 1 ]; then
        echo "work dir: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

py=$(ensure_python_venv)
ensure_kinesalite
ensure_dynamodb_local
ddb_port=$(free_port)
start_dynamodb_local "$ddb_port" "$work/dynamodb.log"
ddb_pid=${DCDC_SERVER_PIDS[-1]}
kin_port=$(free_port)
start_kinesalite "$kin_port" "$work/kinesalite.log"
kin_pid=$DCDC_KINESALITE_PID
ch_port=$(free_port)
if [ "${CLICKHOUSE:-chdb}" = server ]; then
    ensure_clickhouse
    start_clickhouse "$ch_port" "$work/clickhouse"
    ch_pid=${DCDC_SERVER_PIDS[-1]}
else
    ensure_chdb >/dev/null
    "$py" bench/chdb_http.py "$ch_port" "$work/chdb" > "$work/chdb.log" 2>&1 &
    ch_pid=$!
    DCDC_SERVER_PIDS+=("$ch_pid")
    deadline=$((SECONDS + 60))
    until grep -qs '^listening' "$work/chdb.log" && dcdc_wait_http "$ch_port" 5 "$ch_pid"; do
        if ! kill -0 "$ch_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "chdb_http.py did not start; its log:" >&2
            tail -n 30 "$work/chdb.log" >&2
            exit 1
        fi
        sleep 0.2
    done
fi

"$py" - "$ddb_port" "$kin_port" "$shards" <<'PY'
import sys, time, boto3
ddb_port, kin_port, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])
kw = dict(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{ddb_port}", **kw)
ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
kin = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{kin_port}", **kw)
kin.create_stream(StreamName="orders-cdc", ShardCount=shards)
while kin.describe_stream_summary(StreamName="orders-cdc")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
PY

batch=
[ -n "${MAX_AGE:-}" ] && batch="[sinks.batch]
max_age = \"$MAX_AGE\""
cat > "$work/pipeline.toml" <<TOML
state_dir = "$work/state"
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:$ddb_port"
kinesis_endpoint_url = "http://127.0.0.1:$kin_port"
[[tables]]
name = "orders"
kinesis_stream = "orders-cdc"
[[sinks]]
type = "clickhouse"
url = "http://127.0.0.1:$ch_port"
compress = false
create_table = true
[[sinks.columns]]
name = "seq"
type = "UInt64"
$batch
TOML
write_only=${WRITE_ONLY:-0}
ch_query() {
    curl -sS --data-binary "$1" "http://127.0.0.1:$ch_port/"
}
if [ "$write_only" != 1 ]; then
    "$bin" --log-level "${LOG_LEVEL:-warn}" run --config "$work/pipeline.toml" 2> "$work/engine.log" &
    engine_pid=$!
    deadline=$((SECONDS + 60))
    until [ "$(ch_query 'EXISTS TABLE orders' 2>/dev/null)" = "1" ]; do
        if ! kill -0 "$engine_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "the engine did not create the ClickHouse table; its log:" >&2
            tail -n 30 "$work/engine.log" >&2
            exit 1
        fi
        sleep 0.2
    done
fi

ticks=$(getconf CLK_TCK)
proc_cpu() { # PID: user + system clock ticks so far
    awk '{print $14 + $15}' "/proc/$1/stat"
}
proc_wait() { # PID: nanoseconds its threads have waited, runnable, for a CPU so far
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{sum += $2} END {printf "%.0f\n", sum}'
}
machine_cpu() { # busy and total clock ticks of all CPUs so far
    awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}
names=(kinesalite clickhouse dynamodb-local)
pids=("$kin_pid" "$ch_pid" "$ddb_pid")
if [ "$write_only" != 1 ]; then
    names=(engine "${names[@]}")
    pids=("$engine_pid" "${pids[@]}")
fi
before=()
waited0=()
for pid in "${pids[@]}"; do
    before+=("$(proc_cpu "$pid")")
    waited0+=("$(proc_wait "$pid")")
done
read -r busy0 all0 < <(machine_cpu)
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
started=$(date +%s.%N)

if [ "$write_only" != 1 ]; then
    "$py" bench/kinesis_latency.py poll "http://127.0.0.1:$ch_port" orders "$total" "$work/seen.bin" \
        "$work/writer.done" > "$work/poller.txt" &
    poller_pid=$!
fi
"$py" bench/kinesis_latency.py write "http://127.0.0.1:$kin_port" orders-cdc orders "$rate" "$((warmup + seconds))" \
    "$work/arrivals.bin" "$work/writer.done"
if [ "$write_only" != 1 ]; then
    wait "$poller_pid"
    poller_pid=
    cat "$work/poller.txt"
fi

finished=$(date +%s.%N)
read -r busy1 all1 < <(machine_cpu)
load1=$(cut -d ' ' -f 1-3 /proc/loadavg)
after=()
waited1=()
for pid in "${pids[@]}"; do
    after+=("$(proc_cpu "$pid")")
    waited1+=("$(proc_wait "$pid")")
done
wall=$(awk -v a="$started" -v b="$finished" 'BEGIN {print b - a}')
if [ "$write_only" != 1 ]; then
    rss_kb=$(awk '/^VmHWM:/{print $2}' "/proc/$engine_pid/status")
    rows=$(ch_query 'SELECT count() FROM orders')
    "$py" bench/kinesis_latency.py report "$work/arrivals.bin" "$work/seen.bin" "$((rate * warmup))"
    echo "window: ${wall%.*} s from the first write to the last row seen; $rows rows in ClickHouse"
else
    echo "window: ${wall%.*} s of writes, nothing reading"
fi
# "waited" is the time its threads were runnable but not running (another
# process had the CPU): the machine's contention, as this process saw it.
for i in "${!names[@]}"; do
    awk -v name="${names[$i]}" -v t="$(( after[i] - before[i] ))" -v hz="$ticks" -v wall="$wall" -v n="$total" \
        -v w="$(( waited1[i] - waited0[i] ))" \
        'BEGIN {s = t / hz; printf "  %-15s CPU %6.1f s (%3.0f %% of a core), %5.1f CPU-s per million changes; waited for a CPU %.1f s\n",
                name, s, s / wall * 100, s / n * 1e6, w / 1e9}'
done
[ "$write_only" = 1 ] || echo "  engine peak RSS $((rss_kb / 1024)) MiB"
awk -v b=$((busy1 - busy0)) -v a=$((all1 - all0)) -v hz="$ticks" -v wall="$wall" \
    'BEGIN {printf "  machine         CPU %6.1f s busy of %.1f s (%d cores)\n", b / hz, a / hz, a / hz / wall + 0.5}'
echo "  load average before: $load0; after: $load1"
if [ -f "$work/engine.log" ] && grep -q -E ' (WARN|ERROR) |^Error' "$work/engine.log"; then
    echo "engine log (warnings and errors):"
    grep -E ' (WARN|ERROR) |^Error' "$work/engine.log" | tail -n 10
fi
