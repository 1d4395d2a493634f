# shellcheck shell=bash
# Reading `/usr/bin/time -v` output in the benchmark scripts.

# time_v_stats LOG: prints "WALL_SECONDS CPU_SECONDS PEAK_RSS_MIB" from the
# `/usr/bin/time -v` report at the end of LOG.
time_v_stats() {
    local log=${1:?usage: time_v_stats LOG}
    python3 - "$log" <<'PY'
import sys
fields = {}
for line in open(sys.argv[1], errors="replace"):
    if ":" in line:
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
print(f"{seconds:.3f} {cpu:.3f} {rss:.1f}")
PY
}
