#!/usr/bin/env bash
# The engine against a Lambda-style Python consumer on the same recorded
# stream and the same sink server, in one run, without DynamoDB Local in the
# way: N records from examples/gen_records.rs, replicated into each sink of
# SINKS (default "clickhouse postgres") by
#   1. dynamo-cdc replay (release), and
#   2. bench/baseline_replay.py (TypeDeserializer + clickhouse-driver /
#      psycopg 3, one insert or transaction per Lambda event of 1,000 records).
# Reports records/s, CPU seconds per million records and peak RSS of each
# client process, and the engine/baseline ratios.
#
#   [SINKS="clickhouse postgres"] bench/baseline_replay.sh [RECORDS (default 200000)]
#   DYNAMO_CDC_BIN=path bench/baseline_replay.sh ...   # this engine binary, no build
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
records=${1:-200000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
if [ -n "${DYNAMO_CDC_BIN:-}" ]; then
    bin=$DYNAMO_CDC_BIN
    [ -x "$CARGO_TARGET_DIR/release/examples/gen_records" ] \
        || cargo build --release --locked --example gen_records
else
    ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
    cargo build --release --locked --bin dynamo-cdc --example gen_records
    bin="$CARGO_TARGET_DIR/release/dynamo-cdc"
fi
# shellcheck source=SCRIPTDIR/../scripts/lib/timing.sh
source scripts/lib/timing.sh
# shellcheck source=SCRIPTDIR/lib.sh
source bench/lib.sh
work=$(mktemp -d /tmp/dynamo-cdc-bench-baseline-replay.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
python=$(ensure_python_venv)
"$python" -c 'import clickhouse_driver, psycopg' 2>/dev/null \
    || "$python" -m pip install -q --disable-pip-version-check clickhouse-driver 'psycopg[binary]' >&2
"$CARGO_TARGET_DIR/release/examples/gen_records" --records "$records" \
    --min-bytes 200 --max-bytes 600 --out "$work/records.jsonl"

report() { # label seconds cpu rss
    python3 -c 'import sys; k, n, s, c, m = sys.argv[1:]; n = int(n); s = float(s); c = float(c); print(f"{k}: {n/s:,.0f} records/s; {c/n*1e6:.1f} CPU-s per million; peak RSS {m} MiB")' \
        "$1" "$records" "$2" "$3" "$4"
}

for sink in ${SINKS:-clickhouse postgres}; do
    case $sink in
        clickhouse | postgres) replay_setup "$sink" "$work" ;;
        *) echo "unknown sink $sink (clickhouse, postgres)" >&2; exit 2 ;;
    esac
    /usr/bin/time -v "$bin" replay --config "$work/$sink.toml" --table orders \
        --keys pk:S,sk:N "$work/records.jsonl" 2> "$work/engine-$sink.log" \
        || { tail -20 "$work/engine-$sink.log"; exit 1; }
    /usr/bin/time -v "$python" bench/baseline_replay.py --input "$work/records.jsonl" \
        --sink "$sink" --url "$BASELINE_URL" > "$work/baseline-$sink.out" 2> "$work/baseline-$sink.log" \
        || { tail -20 "$work/baseline-$sink.log"; exit 1; }
    read -r e_s e_cpu e_rss < <(time_v_stats "$work/engine-$sink.log")
    read -r b_s b_cpu b_rss < <(time_v_stats "$work/baseline-$sink.log")
    report "engine   -> $sink" "$e_s" "$e_cpu" "$e_rss"
    report "baseline -> $sink" "$b_s" "$b_cpu" "$b_rss"
    python3 -c 'import sys; es, ec, bs, bc = map(float, sys.argv[1:]); print(f"engine/baseline -> '"$sink"': {bs/es:.1f}x the throughput, {bc/ec:.1f}x less CPU per record")' \
        "$e_s" "$e_cpu" "$b_s" "$b_cpu"
    stop_servers
done
