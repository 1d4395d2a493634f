#!/usr/bin/env bash
# Decode-only throughput against the JSON parse ceiling (one thread):
# records recorded by examples/gen_records.rs, small (~1.2 KB) and large
# (~3.8 KB), measured by examples/bench_decode.rs.
#
#   bench/decode.sh [RECORDS (default 200000)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
records=${1:-200000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
cargo build --release --locked --example gen_records --example bench_decode
bin="$CARGO_TARGET_DIR/release/examples"
work=$(mktemp -d /tmp/dynamo-cdc-bench-decode.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$bin/gen_records" --records "$records" --min-bytes 200 --max-bytes 600 --out "$work/small.jsonl"
"$bin/bench_decode" --input "$work/small.jsonl"
"$bin/gen_records" --records "$((records / 2))" --out "$work/large.jsonl"
"$bin/bench_decode" --input "$work/large.jsonl"
# The same records as DynamoDB writes them to a Kinesis stream, through the
# Kinesis decoder.
"$bin/bench_decode" --input "$work/small.jsonl" --engine-only --kinesis
"$bin/bench_decode" --input "$work/large.jsonl" --engine-only --kinesis
