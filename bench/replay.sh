#!/usr/bin/env bash
# Replay throughput without a stand-in: recorded stream records
# (examples/gen_records.rs) through `dynamo-cdc replay` into each sink of
# SINKS (default "jsonl sqlite"; also "postgres", "clickhouse",
# "elasticsearch" (osmem-server) and "kafka" (tansu), whose servers this
# script starts). Reports records/s, CPU seconds per million
# records and peak RSS of the engine (via /usr/bin/time -v).
#
#   [SINKS="jsonl sqlite postgres clickhouse"] bench/replay.sh [RECORDS (default 200000)] [MIN_BYTES (200)] [MAX_BYTES (600)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
records=${1:-200000}
min=${2:-200}
max=${3:-600}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example gen_records
bin="${BIN:-$CARGO_TARGET_DIR/release/dynamo-cdc}"  # BIN=path measures another build
work=$(mktemp -d /tmp/dynamo-cdc-bench-replay.XXXXXX)
# shellcheck source=SCRIPTDIR/../scripts/lib/timing.sh
source scripts/lib/timing.sh
# shellcheck source=SCRIPTDIR/lib.sh
source bench/lib.sh
trap 'stop_servers; rm -rf "$work"' EXIT
sinks=${SINKS:-jsonl sqlite}
"$CARGO_TARGET_DIR/release/examples/gen_records" --records "$records" \
    --min-bytes "$min" --max-bytes "$max" --out "$work/records.jsonl"

for sink in $sinks; do
    replay_setup "$sink" "$work"
    /usr/bin/time -v "$bin" replay --config "$work/$sink.toml" --table orders \
        --keys pk:S,sk:N "$work/records.jsonl" 2> "$work/$sink.log" \
        || { tail -20 "$work/$sink.log"; exit 1; }
    read -r seconds cpu rss < <(time_v_stats "$work/$sink.log")
    python3 -c 'import sys; k, n, s, c, m = sys.argv[1:]; n = int(n); s = float(s); c = float(c); print(f"replay -> {k}: {n} records in {s:.2f} s = {n/s:,.0f} records/s; CPU {c:.2f} s ({c/n*1e6:.1f} CPU-s per million); peak RSS {m} MiB")' \
        "$sink" "$records" "$seconds" "$cpu" "$rss"
done
