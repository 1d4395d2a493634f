#!/usr/bin/env bash
# Build and query one store's index: ./run.sh <store> <rows> [lookups]
# Env: DATA (default /var/tmp/dimension-stores-data), CGROUP_MB (if set, the
# lookup process runs in a cgroup v1 memory cgroup limited to that many MB).
set -euo pipefail
store=$1 rows=$2 lookups=${3:-2000000}
DATA=${DATA:-/var/tmp/dimension-stores-data}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/dimension-stores-target}
cd "$(dirname "$0")"
nice -n 10 cargo build --release -q
bin=$CARGO_TARGET_DIR/release/dimension-stores
dir=$DATA/$store-$rows
mkdir -p "$DATA"
if [[ ${SKIP_BUILD:-} != 1 ]]; then
  nice -n 10 "$bin" build "$store" "$dir" "$rows"
fi
if [[ -n ${CGROUP_MB:-} ]]; then
  cg=/sys/fs/cgroup/memory/dimbench
  mkdir -p $cg
  echo $((CGROUP_MB * 1024 * 1024)) > $cg/memory.limit_in_bytes
  ( echo $BASHPID > $cg/cgroup.procs; exec nice -n 10 "$bin" lookup "$store" "$dir" "$rows" "$lookups" )
  echo "RESULT cgroup_limit_mb=$CGROUP_MB max_usage_mb=$(( $(cat $cg/memory.max_usage_in_bytes) / 1048576 )) failcnt=$(cat $cg/memory.failcnt) oom_kills=$(grep -c . <(grep oom_kill $cg/memory.oom_control | grep -v ' 0$') || true)"
  rmdir $cg
else
  nice -n 10 "$bin" lookup "$store" "$dir" "$rows" "$lookups"
fi
