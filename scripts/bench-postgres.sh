#!/usr/bin/env bash
# Measures the postgres sink against PostgreSQL (Debian's, as a plain process
# on 127.0.0.1): N synthetic changes (default 500,000) in batches of 5,000,
# each one transaction, written with each method (multi-row versioned upserts;
# binary COPY into a staging table + one merge), with and without the
# exactly-once checkpoint. Reports changes/s, batch latency, CPU and peak RSS.
#
#   scripts/bench-postgres.sh [CHANGES]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source scripts/lib/servers.sh
trap stop_servers EXIT

changes=${1:-500000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
step() { printf '==> %s\n' "$*"; }

step "building (release)"
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --example bench_postgres
driver="$CARGO_TARGET_DIR/release/examples/bench_postgres"
work=$(mktemp -d /tmp/dynamo-cdc-bench-pg.XXXXXX)
port=$(free_port)
start_postgres "$port" "$work/postgres"
url="host=127.0.0.1 port=$port user=postgres dbname=postgres"
step "PostgreSQL on 127.0.0.1:$port (fsync off, as in the tests)"

run() { # label, extra args...
    local label=$1
    shift
    step "$label"
    /usr/bin/time -v "$driver" --url "$url" --changes "$changes" "$@" 2> "$work/$label.time" | sed -n 1p
    local user sys rss
    user=$(grep 'User time' "$work/$label.time" | awk '{print $NF}')
    sys=$(grep 'System time' "$work/$label.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$label.time" | awk '{print $NF}')
    python3 -c "import sys; u,s,r,n=map(float,sys.argv[1:]); print(f'    CPU {u+s:.2f} s = {(u+s)/n*1e6:.2f} CPU-s per million changes; peak RSS {r/1024:.1f} MiB')" \
        "$user" "$sys" "$rss" "$changes"
}

run multi-row --method insert
run multi-row-exactly-once --method insert --exactly-once
run copy-merge --method copy
run copy-merge-exactly-once --method copy --exactly-once
echo "work dir: $work"
