#!/usr/bin/env bash
# Keeps a shared cargo target directory from filling its disk.
#
#   prune_target_dir DIR [MIN_FREE_GIB]
#
# Every change of features or flags leaves a new copy of each test binary
# behind (hundreds of MB each), and a target directory reused by many clones
# only grows. This keeps the newest copies of the project's own executables
# (cargo relinks any it later misses) and, while the disk still has less than
# MIN_FREE_GIB (default 25) free, drops incremental caches and then the
# release profile; under 10 GiB it drops the debug profile too (a full
# rebuild beats a link that dies for space). Dependencies' compiled
# libraries are otherwise kept.

# Free space, in GiB, of the filesystem holding $1.
target_free_gib() {
    local kib
    kib=$(df --output=avail -k "$1" 2>/dev/null | tail -1 | tr -d ' ')
    echo $(( ${kib:-0} / 1024 / 1024 ))
}

# Removes all but the newest $3 files in directory $1 named "$2-<16 hex>".
keep_newest_artifacts() {
    local dir=$1 name=$2 keep=$3 file
    # shellcheck disable=SC2012 # names are cargo's own: no spaces or newlines
    [ -d "$dir" ] || return 0
    { ls -t "$dir" 2>/dev/null || true; } \
        | { grep -E "^${name}-[0-9a-f]{16}$" || true; } \
        | tail -n +"$((keep + 1))" \
        | while read -r file; do
            rm -f "$dir/$file" "$dir/$file.d"
        done
}

prune_target_dir() {
    local dir=$1 min_free=${2:-25} repo test_file profile name
    [ -d "$dir" ] || return 0
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    for profile in debug release; do
        [ -d "$dir/$profile/deps" ] || continue
        # The library's and the binary's unit-test executables and the binary itself.
        keep_newest_artifacts "$dir/$profile/deps" dynamo_cdc 3
        # Test targets are tests/NAME.rs or tests/NAME/main.rs (tests/it).
        for test_file in "$repo"/tests/*.rs "$repo"/tests/*/main.rs "$repo"/examples/*.rs; do
            [ -e "$test_file" ] || continue
            name=$(basename "$test_file" .rs)
            [ "$name" = main ] && name=$(basename "$(dirname "$test_file")")
            keep_newest_artifacts "$dir/$profile/deps" "$name" 1
            keep_newest_artifacts "$dir/$profile/examples" "$name" 1
        done
    done
    if [ "$(target_free_gib "$dir")" -lt "$min_free" ]; then
        echo "target directory: under ${min_free} GiB free, removing incremental caches"
        rm -rf "$dir"/debug/incremental "$dir"/release/incremental
    fi
    if [ "$(target_free_gib "$dir")" -lt "$min_free" ]; then
        echo "target directory: still under ${min_free} GiB free, removing the release profile"
        rm -rf "$dir"/release
    fi
    if [ "$(target_free_gib "$dir")" -lt 10 ]; then
        echo "target directory: still under 10 GiB free, removing the debug profile (a full rebuild follows)"
        rm -rf "$dir"/debug
    fi
    echo "target directory $dir: $(du -sh "$dir" 2>/dev/null | cut -f1) used, $(target_free_gib "$dir") GiB free"
}
