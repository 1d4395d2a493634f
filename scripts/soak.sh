#!/usr/bin/env bash
# The kill loop, run by hand (CI runs a 5-kill version inside scripts/test.sh):
#
#   scripts/soak.sh [KILLS] [CHANGES]        (default: 50 kills, 100000 changes)
#
# SIGKILLs the engine at random instants while a workload of CHANGES runs,
# into SQLite, PostgreSQL and ClickHouse at once (plus JSON Lines to count
# duplicates), then checks that every replica equals a Scan and that no
# change of the stream is missing. It runs tests/it/soak.rs through
# scripts/test.sh (which installs and starts the servers) and prints the
# report line: kills, changes, lost (must be 0), duplicates, total time.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kills=${1:-50}
changes=${2:-100000}
report=$(mktemp)
trap 'rm -f "$report"' EXIT

export DYNAMO_CDC_SOAK_KILLS="$kills"
export DYNAMO_CDC_SOAK_CHANGES="$changes"
export DYNAMO_CDC_SOAK_REPORT="$report"
"$repo/scripts/test.sh" --test it soak:: --no-capture
echo
cat "$report"
