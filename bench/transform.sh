#!/usr/bin/env bash
# The transform stage's cost: the same recorded stream records
# (examples/gen_records.rs) replayed into one sink (SINK, default jsonl)
# with no transforms, with filter patterns, with a projection, and with an
# enrichment join against a DIMENSION_ROWS-row CSV dimension (default
# 1,000,000; every record's key matches) held in memory or on disk. Reports
# records/s, CPU seconds per million records and peak RSS of the engine
# for each variant (via /usr/bin/time -v); run it twice and compare.
#
#   [SINK=jsonl|sqlite] [BENCH_DIR=/dev/shm] bench/transform.sh [RECORDS (default 200000)]
#
# BENCH_DIR=/dev/shm keeps disk writeback out of the numbers.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
records=${1:-200000}
sink=${SINK:-jsonl}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
ensure_build_deps
cargo build --release --locked --bin dynamo-cdc --example gen_records
bin="${BIN:-$CARGO_TARGET_DIR/release/dynamo-cdc}"  # BIN=path measures another build
work=$(mktemp -d "${BENCH_DIR:-/tmp}/dynamo-cdc-bench-transform.XXXXXX")
# shellcheck source=SCRIPTDIR/../scripts/lib/timing.sh
source scripts/lib/timing.sh
# shellcheck source=SCRIPTDIR/lib.sh
source bench/lib.sh
trap 'stop_servers; rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/examples/gen_records" --records "$records" --out "$work/records.jsonl"

# Each variant's lines for the `orders` table entry.
variant_options() {
    case $1 in
        none) ;;
        filter_op) echo "filters = ['{\"eventName\": [\"INSERT\", \"MODIFY\"]}']" ;;
        filter_image) echo "filters = ['{\"dynamodb\": {\"NewImage\": {\"status\": {\"S\": [\"paid\", \"shipped\"]}, \"amount\": {\"N\": [{\"numeric\": [\">\", 10]}]}}}}']" ;;
        projection) echo "transforms = [{ type = \"exclude\", attributes = [\"description\", \"blob\"] }, { type = \"set\", attribute = \"label\", template = \"{pk}/{status}\" }, { type = \"drop_old_image\" }]" ;;
        enrich_memory | enrich_disk) echo "enrich = [{ dimension = \"customers\", on = \"pk\", prefix = \"c_\" }]" ;;
    esac
}

# The [[dimensions]] entry of the enrichment variants.
dimension_section() {
    case $1 in
        enrich_memory) mode=memory ;;
        enrich_disk) mode=disk ;;
        *) return 0 ;;
    esac
    printf '\n[[dimensions]]\nname = "customers"\npath = "%s"\nkey = "pk"\ncolumns = ["name", "segment", "score"]\nmode = "%s"\nindex_dir = "%s"\n' \
        "$work/customers.csv" "$mode" "$work/indexes"
}
dimension_rows=${DIMENSION_ROWS:-1000000}
python3 - "$work/customers.csv" "$dimension_rows" <<'PY'
import random, sys
path, rows = sys.argv[1], int(sys.argv[2])
random.seed(7)
segments = ["retail", "wholesale", "partner", "internal", "trial"]
order = list(range(rows))
random.shuffle(order)
with open(path, "w") as out:
    out.write("pk,name,segment,score\n")
    for key in order:
        out.write(f"customer#{key:08},Customer {key},{segments[key % 5]},{key % 1000}.{key % 7}\n")
PY

for variant in ${VARIANTS:-none filter_op filter_image projection enrich_memory enrich_disk}; do
    rm -rf "$work/out-jsonl" "$work/replica.db" "$work/state-$sink"
    replay_setup "$sink" "$work"
    options=$(variant_options "$variant")
    python3 - "$work/$sink.toml" "$options" <<'PY'
import sys
path, options = sys.argv[1], sys.argv[2]
text = open(path).read().replace('name = "orders"\n', 'name = "orders"\n' + (options + "\n" if options else ""), 1)
open(path, "w").write(text)
PY
    dimension_section "$variant" >> "$work/$sink.toml"
    /usr/bin/time -v "$bin" replay --config "$work/$sink.toml" --table orders \
        --keys pk:S,sk:N "$work/records.jsonl" 2> "$work/$variant.log" \
        || { tail -20 "$work/$variant.log"; exit 1; }
    read -r seconds cpu rss < <(time_v_stats "$work/$variant.log")
    filtered=$(grep -o "filtered=[0-9]*" "$work/$variant.log" | tail -1 | cut -d= -f2 || true)
    grep -o 'dimension index built.*' "$work/$variant.log" | sed 's/^/             /' || true
    python3 -c 'import sys; v, k, n, s, c, m, f = sys.argv[1:]; n = int(n); s = float(s); c = float(c); print(f"{v:>12} -> {k}: {n} records in {s:.2f} s = {n/s:,.0f} records/s; CPU {c:.2f} s ({c/n*1e6:.1f} CPU-s per million); peak RSS {m} MiB; filtered {f or 0}")' \
        "$variant" "$sink" "$records" "$seconds" "$cpu" "$rss" "$filtered"
done
