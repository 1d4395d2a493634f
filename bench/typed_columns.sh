#!/usr/bin/env bash
# `columns = "auto"` against the item column only: engine CPU per change of
# `dynamo-cdc replay` into ClickHouse and PostgreSQL, the two configs run
# in turn by farm-bench (same records, same server); then one fresh run
# each whose records gain an attribute halfway (a column added under load)
# that turns decimal at three quarters (a column widened under load), with
# how long each change held its batch, from the engine's log.
#
#   [SINKS="clickhouse postgres"] bench/typed_columns.sh [RECORDS (default 200000)] [RUNS (default 5)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
records=${1:-200000}
runs=${2:-5}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dynamo-cdc-target}"
# shellcheck source=SCRIPTDIR/../scripts/lib/servers.sh
source scripts/lib/servers.sh
ensure_build_deps # rdkafka builds librdkafka (C toolchain, OpenSSL and zlib headers)
cargo build --release --locked --bin dynamo-cdc --example gen_records
bin="${BIN:-$CARGO_TARGET_DIR/release/dynamo-cdc}"
work=$(mktemp -d /tmp/dynamo-cdc-bench-typed.XXXXXX)
# shellcheck source=SCRIPTDIR/lib.sh
source bench/lib.sh
trap 'stop_servers; rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/examples/gen_records" --records "$records" \
    --min-bytes 200 --max-bytes 600 --late-from $((records / 2)) \
    --late-decimal-from $((records * 3 / 4)) --out "$work/records.jsonl"

# Each timed run replays into a database (ClickHouse) or schema
# (PostgreSQL) of its own, so every run writes every change: `@RUN@` in a
# config becomes a new name per run.
cat > "$work/run.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
run=r$(date +%s%N)
sed "s/@RUN@/$run/" "$1" > "$1.$run"
exec "$BIN" replay --config "$1.$run" --table orders --keys pk:S,sk:N "$RECORDS"
SH
chmod +x "$work/run.sh"
export BIN="$bin" RECORDS="$work/records.jsonl"

# with_setting CONFIG OUT [LINE…]: CONFIG's sink with more settings.
with_setting() {
    local config=$1 out=$2
    shift 2
    { cat "$config"; printf '%s\n' "$@"; } > "$out"
}

for sink in ${SINKS:-clickhouse postgres}; do
    replay_setup "$sink" "$work"
    case $sink in
        clickhouse) place='database = "@RUN@"' ;;
        *) place='schema = "@RUN@"' ;;
    esac
    with_setting "$work/$sink.toml" "$work/$sink-item.toml" "$place"
    with_setting "$work/$sink.toml" "$work/$sink-auto.toml" "$place" 'columns = "auto"'
    echo "==> $sink: columns = \"auto\" (A) against the item column only (B), $records records, $runs runs each"
    farm-bench --timeout 1800 -n "$runs" --vs "$work/run.sh $work/$sink-item.toml" -- "$work/run.sh" "$work/$sink-auto.toml"
    echo "==> $sink: a fresh table; \`late\` appears at record $((records / 2)) and turns decimal at $((records * 3 / 4))"
    "$work/run.sh" "$work/$sink-auto.toml" 2> "$work/$sink-fresh.log"
    grep 'typed column' "$work/$sink-fresh.log" | grep -E 'column=late|attribute=late' \
        | sed -E 's/^.*(typed column [a-z]+).*(to=[^ ]+).*(took_ms=[0-9]+).*$/    late: \1 \2 \3/'
    grep -c 'typed column added' "$work/$sink-fresh.log" | sed 's/^/    columns added in all: /'
done
