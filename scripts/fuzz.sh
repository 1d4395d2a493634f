#!/usr/bin/env bash
# Fuzzes the decoders and the configuration loader with cargo-fuzz (run by
# hand, not in CI; see docs/RELIABILITY.md, "Fuzzing").
#
#   scripts/fuzz.sh [RUNS] [TARGET...]
#
# RUNS: executions per target (default 10000000). TARGET: any of the targets
# in fuzz/fuzz_targets/ (default: all). Targets run one after another, one
# process each, at the lowest CPU priority. Installs the nightly toolchain
# and cargo-fuzz when missing, seeds fuzz/corpus/<target>/ from the real
# stream fixtures (../shared/fixtures/dynamodb-streams-real/ when present),
# the test fixtures, the README's, the book's and deploy/'s TOML and fuzz/seeds/, then
# prints a table of executions, crashes and seconds per target. Crashing
# inputs land in fuzz/artifacts/<target>/, logs in fuzz/logs/. Seeding needs
# python3 (fuzz/seed.py).
#
# FUZZ_MAX_SECONDS (default 2400) caps each target's run time; a target
# stopped by it is marked "(time cap)" with the executions it reached.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

runs=10000000
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    runs=$1
    shift
fi
all_targets=(decode_record record_decoder parse_page decode_image json_cursor event_line config kinesis)
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi
max_seconds=${FUZZ_MAX_SECONDS:-2400}
fuzz_dir="$repo/fuzz"
# The fuzz crate builds apart from the main crate's shared target directory.
target_dir="$fuzz_dir/target"
# No sanitizer: the crate has no unsafe code, and panics are what is looked
# for; debug assertions and overflow checks stay on (cargo-fuzz's default).
build_flags=(--sanitizer none --codegen-units 16 --target-dir "$target_dir")

if ! rustup toolchain list | grep '^nightly' >/dev/null; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Largest input per target, in bytes.
max_len() {
    case $1 in
        parse_page) echo 65536 ;;
        record_decoder) echo 32768 ;;
        json_cursor | config) echo 8192 ;;
        *) echo 16384 ;;
    esac
}

dictionary() {
    case $1 in
        config) echo "$fuzz_dir/dicts/toml.dict" ;;
        *) echo "$fuzz_dir/dicts/json.dict" ;;
    esac
}

echo "==> seeding fuzz/corpus/"
sources=(tests/fixtures tests/real_fixtures README.md deploy)
# The book's pages (their TOML and JSON examples), one file each: seed.py lists directories one level deep.
mapfile -t book_pages < <(find docs/src -name '*.md' | sort)
sources+=("${book_pages[@]}")
shared="$repo/../shared/fixtures/dynamodb-streams-real"
if [[ -d $shared ]]; then
    sources+=("$shared")
else
    echo "note: $shared not found; seeding from the repository alone" >&2
fi
python3 "$fuzz_dir/seed.py" "$fuzz_dir/corpus" "${sources[@]}"
for target in "${targets[@]}"; do
    mkdir -p "$fuzz_dir/corpus/$target"
    if [[ -d $fuzz_dir/seeds/$target ]]; then
        cp "$fuzz_dir/seeds/$target"/* "$fuzz_dir/corpus/$target/"
    fi
done

echo "==> building the fuzz targets"
nice -n 19 cargo +nightly fuzz build "${build_flags[@]}"

mkdir -p "$fuzz_dir/logs"
rows=()
failed=0
for target in "${targets[@]}"; do
    log="$fuzz_dir/logs/$target.log"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    echo "==> $target: $runs runs (log: fuzz/logs/$target.log)"
    start=$(date +%s)
    status=0
    nice -n 19 cargo +nightly fuzz run "${build_flags[@]}" "$target" -- \
        -runs="$runs" -max_len="$(max_len "$target")" -dict="$(dictionary "$target")" \
        -timeout=10 -rss_limit_mb=4096 -max_total_time="$max_seconds" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    seconds=$(($(date +%s) - start))
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [[ -z $executions ]]; then
        executions=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    fi
    executions=${executions:-0}
    note=""
    if [[ $status -ne 0 ]]; then
        failed=1
        if [[ $crashes -eq 0 ]]; then
            crashes="?"
            note=" (exit $status: see the log)"
        fi
    elif [[ $executions -lt $runs ]]; then
        note=" (time cap)"
    fi
    rows+=("$(printf '%-16s %14s %8s %8s%s' "$target" "$executions" "$crashes" "$seconds" "$note")")
done

echo
printf '%-16s %14s %8s %8s\n' target executions crashes seconds
printf '%s\n' "${rows[@]}"
exit "$failed"
