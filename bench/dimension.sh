#!/usr/bin/env bash
# Dimension indexes (examples/dimension_bench.rs): build time, CPU, peak
# RSS and one-core lookups/s of the in-memory and the disk (LMDB) index.
#
#   [SMALL_ROWS=2000000] [LARGE_ROWS=50000000] [LOOKUPS=2000000]
#   [COLD_LOOKUPS=200000] [CGROUP_MB=256] [KEEP=1]
#   [BENCH_DIR=/var/tmp/dimension-bench] bench/dimension.sh [small|large|all]
#
# small: SMALL_ROWS rows in memory mode (build, then lookups) and in auto
#        mode (default budget of 256 MiB).
# large: LARGE_ROWS rows in disk mode: build (time, CPU, peak RSS, index
#        size), lookups cold (files dropped from the page cache) and warm
#        (files read once first), then the build and the lookups again
#        inside a cgroup v1 memory limit of CGROUP_MB (CGROUP_MB=0 skips
#        it), reporting the cgroup's peak usage, failcnt and OOM kills.
# The generated Parquet files and indexes are deleted at the end unless KEEP=1.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
what=${1:-all}
small_rows=${SMALL_ROWS:-2000000}
large_rows=${LARGE_ROWS:-50000000}
lookups=${LOOKUPS:-2000000}
cold_lookups=${COLD_LOOKUPS:-200000}
cgroup_mb=${CGROUP_MB:-256}
dir=${BENCH_DIR:-/var/tmp/dimension-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
nice -n 10 cargo build --release --locked --example dimension_bench
bin=$CARGO_TARGET_DIR/release/examples/dimension_bench
mkdir -p "$dir"
cgroup=/sys/fs/cgroup/memory/dcdc-bench
# The allocator options the engine sets at start (src/main.rs).
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-0}
export MIMALLOC_ARENA_EAGER_COMMIT=${MIMALLOC_ARENA_EAGER_COMMIT:-0}

cleanup() {
    [[ -d $cgroup ]] && rmdir "$cgroup" 2>/dev/null || true
    if [[ ${KEEP:-} != 1 ]]; then
        rm -rf "$dir"/*.parquet "$dir"/index-*
    fi
}
trap cleanup EXIT

run() {  # run LABEL ARGS...: the example under nice and /usr/bin/time -v
    local label=$1
    shift
    echo "== $label: dimension_bench $*"
    /usr/bin/time -v nice -n 10 "$bin" "$@" 2> "$dir/$label.time"
    grep -E "Maximum resident|Elapsed|User time|System time" "$dir/$label.time" | sed 's/^\s*/   /'
}

# in_cgroup LABEL ARGS...: the same, inside a fresh cgroup v1 memory cgroup
# limited to CGROUP_MB, then the cgroup's figures.
in_cgroup() {
    local label=$1 status=0
    shift
    if [[ ! -d /sys/fs/cgroup/memory ]] || ! mkdir "$cgroup" 2>/dev/null; then
        echo "== $label: no cgroup v1 memory controller to run in (skipped)"
        return
    fi
    echo $((cgroup_mb << 20)) > "$cgroup/memory.limit_in_bytes"
    echo "== $label: dimension_bench $* (cgroup memory.limit_in_bytes=$((cgroup_mb << 20)))"
    ( echo "$BASHPID" > "$cgroup/cgroup.procs"
      exec /usr/bin/time -v nice -n 10 "$bin" "$@" 2> "$dir/$label.time" ) || status=$?
    grep -E "Maximum resident|Elapsed|User time|System time" "$dir/$label.time" | sed 's/^\s*/   /'
    echo "RESULT cgroup label=$label exit=$status limit_mb=$cgroup_mb" \
        "max_usage_mb=$(( $(cat "$cgroup/memory.max_usage_in_bytes") >> 20 ))" \
        "failcnt=$(cat "$cgroup/memory.failcnt")" \
        "oom_kill=$(awk '$1 == "oom_kill" {print $2}' "$cgroup/memory.oom_control")"
    grep -E "^(total_)?(rss|cache|mapped_file) " "$cgroup/memory.stat" | awk '{printf "   %s=%.1f MiB\n", $1, $2 / 1048576}'
    rmdir "$cgroup"
}

evict() {  # evict FILE...: drop files from the page cache
    python3 - "$@" <<'PY'
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}

echo "machine: $(nproc) cores, $(free -m | awk '/^Mem:/ {print $2}') MiB RAM; load: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $what == small || $what == all ]]; then
    file=$dir/customers-$small_rows.parquet
    [[ -f $file ]] || run generate-small generate --rows "$small_rows" --out "$file"
    rm -rf "$dir/index-small"
    run build-small-memory build --file "$file" --mode memory --index-dir "$dir/index-small"
    run build-small-auto build --file "$file" --mode auto --index-dir "$dir/index-small"
    run lookup-small-memory lookup --file "$file" --mode memory --index-dir "$dir/index-small" \
        --lookups "$lookups" --warm-passes 2
fi

if [[ $what == large || $what == all ]]; then
    file=$dir/customers-$large_rows.parquet
    [[ -f $file ]] || run generate-large generate --rows "$large_rows" --out "$file"
    rm -rf "$dir/index-large"
    evict "$file"
    run build-large-disk build --file "$file" --mode disk --index-dir "$dir/index-large"
    du -sh "$dir/index-large"
    run lookup-large-disk lookup --file "$file" --index-dir "$dir/index-large" \
        --lookups "$lookups" --cold --cold-lookups "$cold_lookups" --prewarm --warm-passes 2
    if [[ $cgroup_mb != 0 ]]; then
        # Pages already cached are charged to the cgroup that read them
        # first: drop them so the limited runs pay for their own.
        evict "$file" "$dir"/index-large/*/*
        in_cgroup lookup-large-disk-cgroup lookup --file "$file" --index-dir "$dir/index-large" \
            --lookups "$lookups" --cold --cold-lookups "$cold_lookups" --warm-passes 1
        rm -rf "$dir/index-large-cgroup"
        evict "$file"
        in_cgroup build-large-disk-cgroup build --file "$file" --mode disk --index-dir "$dir/index-large-cgroup"
        rm -rf "$dir/index-large-cgroup"
    fi
fi
